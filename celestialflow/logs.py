"""Per-run log files through loguru, without touching the host program's sinks.

Each run of a manager, or of a whole graph, may add one file sink of its own (a
name unique per run, under ``logs/`` by default or ``$CELESTIALFLOW_LOG_DIR``),
filtered to its own records, and removes exactly that sink afterwards. The stages
of a graph write to the graph's file. Only the newest ``keep`` of our log files
(default :data:`KEEP_LOGS`) are kept in a folder; older ones are deleted.
"""

from __future__ import annotations

import os
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from loguru import logger

KEEP_LOGS = 20
_OUR_LOG = re.compile(r"^.+-\d{8}-\d{6}-\d+-[0-9a-f]{8}\.log$")

LEVELS = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "SUCCESS": 25, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


def _cache_loguru_lib_dirs() -> None:
    """Make ``logger.add`` cheap enough to call once per run.

    Every ``logger.add`` builds an exception formatter that asks ``sysconfig`` for
    the library folders of every install scheme: 4-10 ms per call on our machine,
    more than a whole 20,000-input serial chain takes once it is removed. The answer
    depends only on ``sys.path``, so it is kept per ``sys.path``; with a loguru that
    no longer has this method nothing is changed."""
    try:
        from loguru import _better_exceptions
    except ImportError:  # pragma: no cover - a loguru laid out differently
        return
    formatter = getattr(_better_exceptions, "ExceptionFormatter", None)
    compute = getattr(formatter, "_get_lib_dirs", None)
    if compute is None or getattr(compute, "cf_cached", False):
        return
    known: dict[tuple[str, ...], list[str]] = {}

    def lib_dirs() -> list[str]:
        key = tuple(sys.path)
        dirs = known.get(key)
        if dirs is None:
            dirs = known[key] = compute()
        return list(dirs)

    lib_dirs.cf_cached = True  # type: ignore[attr-defined]
    formatter._get_lib_dirs = staticmethod(lib_dirs)


_cache_loguru_lib_dirs()


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


def prune_logs(log_dir: Path, keep: int | None) -> None:
    """Delete all but the newest ``keep`` log files we wrote in ``log_dir``."""
    if keep is None:
        return
    try:  # scandir: no Path object per file (this runs at the start of every run)
        with os.scandir(log_dir) as entries:
            ours = [(e.stat().st_mtime, e.path) for e in entries if _OUR_LOG.match(e.name)]
    except OSError:
        return
    if len(ours) <= keep:
        return
    ours.sort(reverse=True)
    for _, old in ours[keep:]:
        try:
            os.unlink(old)
        except OSError:
            pass


class RunLog:
    """Context manager owning one run's logger (and file sink, when enabled)."""

    def __init__(
        self, name: str, log_dir: Path | None, level: str | int, to_file: bool, keep: int | None = KEEP_LOGS
    ) -> None:
        self.name = name
        self.level = level_no(level)
        self.to_file = to_file
        self.keep = keep
        self.log_dir = Path(log_dir) if log_dir is not None else default_log_dir()
        self.token = uuid.uuid4().hex
        self.path: Path | None = None
        self._sink: int | None = None
        self._owner = True
        self.log = logger.bind(cf_run=self.token, cf_stage=name)

    def child(self, name: str, level: str | int) -> RunLog:
        """A view for one stage of a graph run: the run's file, the stage's own level."""
        view = RunLog.__new__(RunLog)
        view.__dict__.update(self.__dict__)
        view.name, view.level, view._owner, view._sink = name, level_no(level), False, None
        view.log = logger.bind(cf_run=self.token, cf_stage=name)
        return view

    def __enter__(self) -> RunLog:
        if self.to_file and self._owner:
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
            prune_logs(self.log_dir, self.keep)
        return self

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= self.level

    def __exit__(self, *exc: object) -> None:
        if self._sink is not None:
            logger.remove(self._sink)
            self._sink = None
