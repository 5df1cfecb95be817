"""Thread mode: threads calling ``func`` on chunks of arguments.

With threads of its own (no ``pool`` given) the back-end's workers take their own
work: each of them runs the runner's scheduling loop, takes a chunk from the
stage's input, runs it inside ``submit`` and accounts for it, so a task's result
goes downstream from the thread that computed it, with no hand-over through a
scheduling thread (under a contended GIL each hand-over cost about 0.4 ms).
Workers start as chunks are taken, one more per chunk up to ``workers``, as a
``ThreadPoolExecutor`` starts its threads; they are threads kept from earlier
runs when there are any (:mod:`.parked`), handed their loop without waiting.
With a shared ``pool`` the one loop submits chunks to it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from functools import partial
from typing import Any

from .base import Backend
from .chunk import Finished, call_chunk, run_fused
from .gate import PriorityGate
from .parked import spawn


class ThreadBackend(Backend):
    """``workers`` threads calling ``func``; a cancel stops chunks between tasks.

    ``pool``: an executor (or a :class:`PriorityGate`) shared with other stages and
    left open, to which chunks are submitted; ``priority``: this stage's place in a
    shared gate's queue. Without one, the workers run the loop themselves (see the
    module docstring), and with ``call`` (the stage's per-task pipeline, safe to run
    in many threads at once) they take chunks of raw tasks (the fused form)."""

    name = "thread"

    def __init__(
        self,
        func: Callable,
        workers: int,
        thread_name: str = "celestialflow",
        pool: Executor | None = None,
        priority: int = 0,
        call: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(workers)
        self._func = func
        # the stage's whole per-task pipeline, safe in many threads: the fused form, without a pool
        self._call = call if pool is None else None
        self.fused = self._call is not None
        # a worker takes a chunk by itself for 10-50 us: tasks of a few microseconds are not
        # split one per idle worker (each would wake for almost nothing)
        self.min_share = 0.001 if pool is None else 0.0
        self._prefix = thread_name
        self._shared = pool
        self._pool: Executor | None = None
        self._cancel = threading.Event()
        self.priority = priority
        self._loop: Callable[[], None] | None = None
        self._started = 1  # the thread that drives counts as the first worker
        self._running = 0  # workers started and not yet ended
        self._ended = threading.Condition(threading.Lock())
        self._errors: list[BaseException] = []

    @property
    def max_inflight(self) -> int:
        return self.workers  # one chunk per thread: a queued chunk would only wait

    def open(self) -> None:
        if self._shared is not None:
            self._pool = self._shared

    def drive(self, loop: Callable[[], None]) -> None:
        """Without a shared pool: run ``loop`` here and in every worker started by ``submit``,
        wait for all of them, and raise the first exception any of them raised."""
        if self._shared is not None:
            loop()
            return
        self._loop = loop
        try:
            loop()
        finally:
            with self._ended:
                self._loop = None  # no worker starts from now on
                while self._running:
                    self._ended.wait()
        if self._errors:
            raise self._errors[0]

    def _work(self, loop: Callable[[], None]) -> None:
        try:
            loop()
        except BaseException as exc:  # noqa: BLE001 - raised again by drive, in the stage's thread
            self._errors.append(exc)
        finally:
            with self._ended:
                self._running -= 1
                self._ended.notify_all()

    def _more(self) -> None:
        """Start one more worker (they start as chunks are taken, up to ``workers``)."""
        with self._ended:
            loop = self._loop
            if loop is None or self._started >= self.workers:
                return
            self._started += 1
            self._running += 1
            name = f"{self._prefix}_{self._started}"
        try:
            spawn(partial(self._work, loop), name)
        except BaseException:
            with self._ended:
                self._running -= 1
                self._ended.notify_all()
            raise

    def submit(self, payload: Sequence[Any], alone: bool = False) -> Future | Finished:
        pool = self._pool
        if pool is None:  # this thread is a worker: it runs the chunk it took
            if self._started < self.workers:
                self._more()
            if self._call is not None:
                return Finished(run_fused(self._call, payload, self._cancel))
            return Finished(call_chunk(self._func, payload, self._cancel))
        if isinstance(pool, PriorityGate):
            return pool.submit(call_chunk, self._func, payload, self._cancel, priority=self.priority)
        return pool.submit(call_chunk, self._func, payload, self._cancel)

    def close(self, cancel: bool = False) -> None:
        if cancel:
            self._cancel.set()  # running chunks end after their current task
        self._pool = None
