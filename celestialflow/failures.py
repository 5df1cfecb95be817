"""Failed tasks as JSON Lines: written during a graph run, loaded back to feed a new run.

One line per failure: ``stage``, ``task`` (JSON when the task can be encoded,
else null), ``task_repr``, ``error_type``, ``message``, ``time`` (Unix seconds).
The file is created at the first failure only, under a name unique to the run.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class FailureLog:
    """Thread-safe appender of failure records."""

    def __init__(self, directory: Path, graph_name: str) -> None:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in graph_name)[:60]
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.path = Path(directory) / f"{safe}-failures-{stamp}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._lock = threading.Lock()
        self._fh: Any = None
        self.count = 0

    def record(self, stage: str, task: Any, exc: BaseException) -> None:
        try:
            encoded = json.loads(json.dumps(task))
        except (TypeError, ValueError):
            encoded = None
        line = json.dumps(
            {
                "stage": stage,
                "task": encoded,
                "task_repr": repr(task)[:1000],
                "error_type": type(exc).__name__,
                "message": str(exc)[:2000],
                "time": time.time(),
            }
        )
        with self._lock:
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run
            self._fh.write(line + "\n")
            self.count += 1

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def load_failures(path: str | Path, stage: str | None = None, error_type: str | None = None) -> list[dict[str, Any]]:
    """Failure records of a JSON Lines file, optionally only one stage's or one error type's."""
    return list(_iter_failures(Path(path), stage, error_type))


def failed_tasks(path: str | Path, stage: str | None = None, error_type: str | None = None) -> list[Any]:
    """The tasks that failed (JSON-decoded; lists where the original was a tuple), ready for a new run."""
    return [r["task"] for r in _iter_failures(Path(path), stage, error_type) if r["task"] is not None]


def _iter_failures(path: Path, stage: str | None, error_type: str | None) -> Iterator[dict[str, Any]]:
    if not path.exists():
        raise FileNotFoundError(f"no failure log at {path}")
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not a failure record: {exc}") from None
            if stage is not None and rec.get("stage") != stage:
                continue
            if error_type is not None and rec.get("error_type") != error_type:
                continue
            yield rec
