"""Per-run log files through loguru, without touching the host program's sinks.

Each run of a manager may add one file sink of its own (a name unique per manager
and run, under ``logs/`` by default or ``$CELESTIALFLOW_LOG_DIR``), filtered to
its own records, and removes exactly that sink afterwards.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

from loguru import logger

LEVELS = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "SUCCESS": 25, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


def default_log_dir() -> Path:
    return Path(os.environ.get("CELESTIALFLOW_LOG_DIR", "logs"))


def level_no(level: str | int) -> int:
    if isinstance(level, int):
        return level
    try:
        return LEVELS[level.upper()]
    except KeyError:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}") from None


def truncate(value: Any, limit: int) -> str:
    """``repr(value)`` cut to ``limit`` characters (the seed's ``max_info``)."""
    text = repr(value)
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


class RunLog:
    """Context manager owning one run's logger (and file sink, when enabled)."""

    def __init__(self, name: str, log_dir: Path | None, level: str | int, to_file: bool) -> None:
        self.name = name
        self.level = level_no(level)
        self.to_file = to_file
        self.log_dir = Path(log_dir) if log_dir is not None else default_log_dir()
        self.token = uuid.uuid4().hex
        self.path: Path | None = None
        self._sink: int | None = None
        self.log = logger.bind(cf_run=self.token, cf_stage=name)

    def __enter__(self) -> RunLog:
        if self.to_file:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.name)[:60]
            self.path = self.log_dir / f"{safe}-{stamp}-{os.getpid()}-{self.token[:8]}.log"
            token = self.token
            self._sink = logger.add(
                self.path,
                level=self.level,
                filter=lambda record: record["extra"].get("cf_run") == token,
                enqueue=False,
            )
        return self

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= self.level

    def __exit__(self, *exc: object) -> None:
        if self._sink is not None:
            logger.remove(self._sink)
            self._sink = None
