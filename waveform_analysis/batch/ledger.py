"""The state of one batch call: its options, and the ledger of runs (status, timing, errors).

:class:`Ledger` is a celestialflow :class:`~celestialflow.Hook` on every stage of
the batch: the first stage reports when a run is handed to the workers
(``on_submit``), the last one its result (``on_results``), any stage retries and
failures. The gate in front of the workers asks :meth:`Ledger.rejection` before
queued work starts, which is where a stop or a cancellation turns runs that have
not started into ``skipped`` and runs between stages into ``cancelled``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from celestialflow import Hook, TaskManager
from celestialflow.errors import annotate, traceback_text

from ..core.cancellation import CancellationToken
from ..core.context import Context
from .workers import STRATEGIES, MappedResult

ON_ERROR = ("continue", "stop", "raise")
EXECUTORS = ("thread", "process", "dask")


@dataclass(frozen=True)
class BatchOptions:
    """The options every batch method shares, named as in the user guide."""

    max_workers: int | None = None
    context_factory: Callable[[], Context] | None = None
    executor_type: str = "thread"
    storage_dir_strategy: str = "shared"
    clean_temp_cache: bool = True
    show_progress: bool = True
    on_error: str = "continue"
    progress_tracker: Any = None
    cancellation_token: Any = None
    jupyter_mode: bool | None = None
    progress_update_interval: float = 0.5
    poll_interval: float = 0.1
    retries: int = 0
    retry_on: tuple[type, ...] | None = None
    dask_client: Any = None

    @classmethod
    def pick(cls, arguments: dict[str, Any]) -> BatchOptions:
        """The options among a method's arguments, checked before any work starts."""
        opts = cls(**{f.name: arguments[f.name] for f in fields(cls) if f.name in arguments})
        opts.check()
        return opts

    def check(self) -> None:
        if self.executor_type not in EXECUTORS:
            raise ValueError(f"unknown executor_type {self.executor_type!r}; choose one of {', '.join(EXECUTORS)}")
        if self.storage_dir_strategy not in STRATEGIES:
            raise ValueError(
                f"unknown storage_dir_strategy {self.storage_dir_strategy!r}; choose one of {', '.join(STRATEGIES)}"
            )
        if self.on_error not in ON_ERROR:
            raise ValueError(f"unknown on_error {self.on_error!r}; choose one of {', '.join(ON_ERROR)}")
        if self.dask_client is not None:
            if not (isinstance(self.dask_client, str) or hasattr(self.dask_client, "submit")):
                raise ValueError(
                    f"dask_client must be a distributed.Client or a scheduler address string, got "
                    f"{type(self.dask_client).__name__}"
                )
            object.__setattr__(self, "executor_type", "dask")  # a client given means: run there
        if not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"retries must be an int >= 0, got {self.retries!r}")
        if self.retry_on is not None:
            types = self.retry_on if isinstance(self.retry_on, tuple) else (self.retry_on,)
            if not all(isinstance(t, type) and issubclass(t, BaseException) for t in types):
                raise ValueError(f"retry_on must be exception classes, got {self.retry_on!r}")

    def retry_types(self) -> tuple[type[BaseException], ...]:
        if self.retry_on is None:
            return (Exception,)
        return tuple(self.retry_on) if isinstance(self.retry_on, tuple) else (self.retry_on,)


class RunSkipped(Exception):
    """A run was not started because the batch stopped (``on_error``) or was cancelled."""


class RunCancelled(Exception):
    """A started run did not finish its stages because the batch was cancelled."""


class Ledger(Hook):
    """Book-keeping of one batch call: statuses, timings, attempts, errors, results."""

    def __init__(self, run_ids: list[str], on_error: str, token: Any, stages: list[str]) -> None:
        """``token``: the caller's cancellation token (anything with ``cancelled`` and
        ``cancel()``), or None for one of the batch's own: the batch's one cancel state,
        which Ctrl-C sets too (:meth:`cancel`). ``stages``: the batch's stage names in
        order; a run starts in the first and its result comes from the last."""
        self.run_ids = run_ids
        self.on_error = on_error
        self.token = token if token is not None else CancellationToken()
        self.first_stage, self.final_stage = stages[0], stages[-1]
        self.stop = threading.Event()  # on_error stop/raise: no new run starts, started ones finish
        self.lock = threading.Lock()
        self.results: dict[str, Any] = {}
        self.errors: dict[str, dict[str, Any]] = {}
        self.status: dict[str, str] = {}
        self.started: dict[str, float] = {}
        self.elapsed: dict[str, float] = {}
        self.attempts: dict[str, int] = {}
        self.first_exception: BaseException | None = None
        self.done = self.ok = self.failed = 0

    def cancelled(self) -> bool:
        return bool(self.token.cancelled)

    def cancel(self) -> None:
        """Ctrl-C (or SIGTERM): as ``token.cancel()``, which the caller's token also sees."""
        self.token.cancel()

    def rejection(self, stage_index: int) -> BaseException | None:
        """The gate's ``reject``: why queued work of ``stage_index`` must not start now (None: it may)."""
        if self.cancelled():
            return RunSkipped("batch cancelled") if stage_index == 0 else RunCancelled("batch cancelled")
        if stage_index == 0 and self.stop.is_set():
            return RunSkipped("batch stopped after an error")
        return None

    def finish(self, run_id: str, status: str, value: Any = None) -> None:
        with self.lock:
            if run_id in self.status:
                return
            self.status[run_id] = status
            if run_id in self.started and status != "skipped":
                self.elapsed[run_id] = time.perf_counter() - self.started[run_id]
            if status == "success":
                self.results[run_id] = value
                self.ok += 1
            elif status == "failed":
                self.failed += 1
            self.done += 1

    def counts(self) -> tuple[int, int, int]:
        """Runs done (in any state), succeeded, failed."""
        return self.done, self.ok, self.failed

    def on_submit(self, manager: TaskManager, *, tasks: list[Any], **_: Any) -> None:
        """A run handed to the first stage's workers has started (a retry keeps its start)."""
        if manager.name != self.first_stage:
            return
        now = time.perf_counter()
        with self.lock:
            for run_id in tasks:
                self.started.setdefault(run_id, now)

    def on_results(self, manager: TaskManager, *, tasks: list[Any], results: list[Any], **_: Any) -> None:
        """The last stage's results are the runs' results: book them (a memory-mapped one is loaded)."""
        if manager.name != self.final_stage:
            return
        for run_id, result in zip(tasks, results):
            if isinstance(result, MappedResult):
                try:
                    result = result.load()
                except Exception as exc:  # noqa: BLE001 - the run failed after all
                    annotate(exc, wa_plugin=manager.name)
                    self.on_failure(manager, run_id, exc)
                    continue
            self.finish(run_id, "success", result)

    def on_retry(self, manager: TaskManager, task: Any, exc: BaseException, attempt: int) -> None:
        with self.lock:
            self.attempts[task] = self.attempts.get(task, 1) + 1

    def on_failure(self, manager: TaskManager, task: Any, exc: BaseException) -> None:
        if isinstance(exc, RunSkipped):
            self.finish(task, "skipped")
            return
        if isinstance(exc, RunCancelled):
            self.finish(task, "cancelled")
            return
        with self.lock:
            self.errors[task] = {
                "type": type(exc).__name__,
                "message": str(exc),
                "traceback": traceback_text(exc),
                "plugin": getattr(exc, "wa_plugin", manager.name),
                "stage": manager.name,
            }
            if self.first_exception is None:
                self.first_exception = exc
        self.finish(task, "failed")
        if self.on_error in ("stop", "raise"):
            self.stop.set()

    def outcome(self) -> dict[str, Any]:
        meta = {}
        for run in self.run_ids:
            status = self.status.get(run, "cancelled" if run in self.started else "skipped")
            meta[run] = {
                "status": status,
                "elapsed": self.elapsed.get(run, 0.0),
                "attempts": 0 if status == "skipped" else self.attempts.get(run, 1),
            }
        from ..core.html import BatchResult

        return BatchResult({
            "results": {r: self.results[r] for r in self.run_ids if r in self.results},
            "errors": {r: self.errors[r] for r in self.run_ids if r in self.errors},
            "meta": meta,
            "ordered_run_ids": list(self.run_ids),
        })
