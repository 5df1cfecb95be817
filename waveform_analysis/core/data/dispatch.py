"""A gate in front of the batch's worker pool: later stages first, at most ``capacity`` at once.

All stages of a batch share one pool. Handing it work as soon as each stage has
some would run the pool first-come first-served: every run parsed before any is
finished. The gate keeps the queue itself and passes the pool one item at a
time when a worker is free, choosing the *latest* stage waiting, so runs are
finished before new ones start (results early, little half-done work). Work
still queued when the batch stops or is cancelled never reaches the pool.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any


class StageGate(Executor):
    """Wraps ``inner``; ``reject(stage_index)`` returns an exception for work that must not start."""

    def __init__(self, inner: Executor, capacity: int, reject: Callable[[int], BaseException | None]) -> None:
        self.inner = inner
        self.capacity = max(1, capacity)
        self.reject = reject
        self._heap: list[tuple[int, int, Any, tuple, dict, Future]] = []
        self._seq = itertools.count()
        self._running = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        stage = getattr(args[0], "stage_index", 0) if args else 0
        fut: Future = Future()
        with self._lock:
            heapq.heappush(self._heap, (-stage, next(self._seq), fn, args, kwargs, fut))
        self._pump()
        return fut

    def _pump(self) -> None:
        while True:
            with self._lock:
                if self._running >= self.capacity or not self._heap:
                    return
                neg_stage, _, fn, args, kwargs, fut = heapq.heappop(self._heap)
                self._running += 1
            exc = self.reject(-neg_stage)
            if exc is not None or not fut.set_running_or_notify_cancel():
                with self._lock:
                    self._running -= 1
                if exc is not None:
                    fut.set_exception(exc)
                continue
            try:
                inner = self.inner.submit(fn, *args, **kwargs)
            except BaseException as err:  # pool shut down or broken: that item fails, the gate goes on
                with self._lock:
                    self._running -= 1
                fut.set_exception(err)
                continue
            inner.add_done_callback(lambda f, fut=fut: self._done(f, fut))

    def _done(self, inner: Future, fut: Future) -> None:
        with self._lock:
            self._running -= 1
        exc = inner.exception()
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(inner.result())
        self._pump()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            left, self._heap = self._heap, []
        for *_, fut in left:
            fut.cancel()
        self.inner.shutdown(wait=wait, cancel_futures=cancel_futures)
