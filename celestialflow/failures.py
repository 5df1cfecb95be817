"""Failed tasks as JSON Lines: written during a graph run, loaded back to feed a new run.

One strict-JSON line per failure: ``stage``; ``task`` in the type-tagged
encoding of :mod:`celestialflow.taskcodec` (so tuples, int keys, sets, bytes
and NaN come back as they were) with ``task_encoding`` naming it; ``task_repr``;
``error_type`` (the class name), ``error_qualname`` (``module.QualName``),
``message``, ``traceback`` (text, cut to :data:`TRACEBACK_MAX` characters) and
``time`` (Unix seconds). A task the encoding cannot hold is written with
``task: null`` and a ``task_note`` saying why; a task that *is* None has no
note. The file is created at the first failure only, under a name unique to
the run. Files written before the encoding existed (plain JSON ``task``) still load.
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

from loguru import logger

from .errors import traceback_text
from .taskcodec import ENCODING, TaskEncodingError, decode, encode

#: Longest traceback text kept per record; the start and the end (the raising frame) are kept.
TRACEBACK_MAX = 8000
REPR_MAX = 1000
MESSAGE_MAX = 2000


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
        """Append one failure of ``task`` at ``stage``; never raises for an odd task or exception."""
        line = json.dumps(failure_record(stage, task, exc), allow_nan=False)
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


def failure_record(stage: str, task: Any, exc: BaseException) -> dict[str, Any]:
    """The JSON-ready record of one failure (see the module docstring for its fields)."""
    rec: dict[str, Any] = {"stage": stage, "task_encoding": ENCODING}
    try:
        rec["task"] = encode(task)
    except TaskEncodingError as err:
        rec["task"] = None
        rec["task_note"] = f"not stored: {err}"
    except Exception as err:  # noqa: BLE001 - e.g. a dict key whose __repr__ raises
        rec["task"] = None
        rec["task_note"] = f"not stored: encoding it raised {type(err).__name__}: {err}"[:REPR_MAX]
    exc_type = type(exc)
    # an exception that came back from a worker process as a stand-in keeps its own names
    qualname = getattr(exc, "qualname", None) if hasattr(exc, "remote_traceback") else None
    rec.update(
        task_repr=_safe_text(repr, task, REPR_MAX),
        error_type=exc_type.__name__,
        error_qualname=qualname or f"{exc_type.__module__}.{exc_type.__qualname__}",
        message=_safe_text(str, exc, MESSAGE_MAX),
        traceback=_traceback_text(exc),
        time=time.time(),
    )
    return rec


def _safe_text(fn: Any, value: Any, limit: int) -> str:
    try:
        text = fn(value)
    except Exception as err:  # a broken __repr__/__str__ must not lose the record
        text = f"<{type(value).__name__}: {fn.__name__}() raised {type(err).__name__}>"
    return text[:limit]


def _traceback_text(exc: BaseException) -> str:
    text = traceback_text(exc)
    if len(text) <= TRACEBACK_MAX:
        return text
    head, tail = TRACEBACK_MAX // 4, TRACEBACK_MAX - TRACEBACK_MAX // 4
    return f"{text[:head]}\n... [{len(text) - head - tail} characters cut] ...\n{text[-tail:]}"


def load_failures(path: str | Path, stage: str | None = None, error_type: str | None = None) -> list[dict[str, Any]]:
    """Failure records of a JSON Lines file, optionally only one stage's or one error type's.

    ``error_type`` matches the class name or the qualified name. Each record's
    ``task`` is decoded back to the task as it was (None when it could not be
    stored: then ``task_note`` says why).
    """
    return [_decoded(rec, path, lineno) for lineno, rec in _iter_failures(Path(path), stage, error_type)]


def failed_tasks(path: str | Path, stage: str | None = None, error_type: str | None = None) -> list[Any]:
    """The tasks that failed, as they were (tuples stay tuples, None tasks included), ready for a new run.

    Tasks the file could not store are left out, with a warning saying how many.
    """
    tasks, skipped = [], 0
    for rec in load_failures(path, stage, error_type):
        if _stored(rec):
            tasks.append(rec["task"])
        else:
            skipped += 1
    _warn_skipped(path, skipped)
    return tasks


def failures_by_stage(path: str | Path) -> dict[str, list[Any]]:
    """``{stage: [failed tasks, in file order]}``: the feeds of a run that retries the failures.

    Tasks the file could not store are left out, with a warning saying how many.
    """
    out: dict[str, list[Any]] = {}
    skipped = 0
    for rec in load_failures(path):
        if _stored(rec):
            out.setdefault(rec.get("stage"), []).append(rec["task"])
        else:
            skipped += 1
    _warn_skipped(path, skipped)
    return out


def _stored(rec: dict[str, Any]) -> bool:
    return "task_note" not in rec


def _warn_skipped(path: str | Path, skipped: int) -> None:
    if skipped:
        logger.warning(
            "{}: {} failed task(s) could not be stored in the failure file and are left out "
            "(see task_note and task_repr in load_failures)",
            path,
            skipped,
        )


def _decoded(rec: dict[str, Any], path: str | Path, lineno: int) -> dict[str, Any]:
    if rec.get("task_encoding") == ENCODING:
        if "task_note" in rec:
            return rec
        try:
            rec["task"] = decode(rec.get("task"))
        except (ValueError, TypeError, RecursionError) as exc:
            raise ValueError(f"{path}:{lineno}: task cannot be decoded: {exc}") from None
        return rec
    # written before the encoding: plain JSON, where null meant None or "could not be stored"
    if rec.get("task") is None and rec.get("task_repr") != "None":
        rec["task_note"] = "not stored (file written without the tagged encoding)"
    return rec


def _iter_failures(path: Path, stage: str | None, error_type: str | None) -> Iterator[tuple[int, dict[str, Any]]]:
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
            if type(rec) is not dict:
                raise ValueError(f"{path}:{lineno}: not a failure record: a JSON {type(rec).__name__}")
            if stage is not None and rec.get("stage") != stage:
                continue
            if error_type is not None and error_type not in (rec.get("error_type"), rec.get("error_qualname")):
                continue
            yield lineno, rec
