"""One run of a stage, apart from the stage: what the runner reads and what it writes.

A :class:`~celestialflow.manager.TaskManager` is configuration. Each ``start``
(or each run of it as a graph stage) builds a :class:`StagePolicy` once, the
frozen rules the scheduling loop follows, and a fresh :class:`RunState`, the
counts, dedup set, result and error dicts that run fills. The manager keeps the
last one as ``last_run`` and answers ``get_counts()``, ``get_success_dict()`` and
``get_error_dict()`` from it, so the runner never touches the manager itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .retry import Backoff

COUNT_KEYS = ("processed", "succeeded", "failed", "duplicated", "retried")


@dataclass(frozen=True, slots=True)
class StagePolicy:
    """The rules one run follows, read by the runner (built once per run).

    ``process_result`` is None when the stage leaves it at its default (the
    runner then skips the call); ``own_get_args``: ``get_args`` is the stage's own
    code, called one task at a time (the default one is safe to call from any
    thread); ``keep_success``/``keep_errors`` say whether the result and error
    dicts are filled."""

    name: str
    execution_mode: str
    get_args: Callable[[Any], Any]
    process_result: Callable[[Any, Any], Any] | None
    should_retry: Callable[[Any, BaseException, int], bool]
    backoff: Backoff
    dedup: bool = True
    keep_success: bool = False
    keep_errors: bool = False
    max_info: int = 50
    chunk_size: int | None = None
    own_get_args: bool = True


class RunState:
    """Counts, dedup set, results, errors, timing and log path of one run of a stage.

    The runner writes it under its stage lock (from one thread, or from each
    worker of a thread stage); other threads (a status snapshot) only read the
    counters, which are plain ints."""

    __slots__ = ("counts", "seen", "success", "errors", "started", "elapsed", "log_path", "debug_log", "ended")

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(COUNT_KEYS, 0)
        self.seen: set[Any] = set()
        self.success: dict[Any, Any] = {}
        self.errors: dict[Any, BaseException] = {}
        self.started: float | None = None  # perf_counter() at the start; None before
        self.elapsed = 0.0  # seconds, set when the run ends
        self.log_path: Path | None = None
        self.debug_log: Any = None  # a loguru logger when DEBUG records are wanted
        self.ended = False

    def start(self) -> None:
        self.started = time.perf_counter()

    def end(self) -> None:
        if self.started is not None:
            self.elapsed = time.perf_counter() - self.started
        self.ended = True

    def elapsed_now(self) -> float:
        """Seconds so far while running, the run's duration once it ended."""
        if self.ended or self.started is None:
            return self.elapsed
        return time.perf_counter() - self.started
