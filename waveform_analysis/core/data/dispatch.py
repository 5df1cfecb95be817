"""A gate in front of the batch's worker pool: later stages first, at most ``capacity`` at once.

All stages of a batch share one pool. Handing it work as soon as each stage has
some would run the pool first-come first-served: every run parsed before any is
finished. The gate keeps the queue itself and passes the pool one item at a
time when a worker is free, choosing the *latest* stage waiting, so runs are
finished before new ones start (results early, little half-done work). Work
still queued when the batch stops or is cancelled never reaches the pool.

A run suspected of killing its worker is submitted ``alone``: the gate passes it
on once nothing else is running and holds everything else back until it ends,
so the blame for a dead worker is certain. ``recover`` rebuilds the inner pool
(a :class:`celestialflow.executors.ProcessPool`) after such a death.

:class:`DaskGate` does the same in front of a Dask client.
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

    accepts_alone = True  # celestialflow's process back-end passes ``alone=`` through

    def __init__(self, inner: Any, capacity: int, reject: Callable[[int], BaseException | None]) -> None:
        self.inner = inner
        self.capacity = max(1, capacity)
        self.reject = reject
        self._heap: list[tuple[int, int, Any, tuple, dict, Future]] = []
        self._seq = itertools.count()
        self._running = 0
        self._alone = False  # an item submitted alone is running
        self._lock = threading.Lock()

    def submit(self, fn: Callable, /, *args: Any, alone: bool = False, **kwargs: Any) -> Future:
        stage = getattr(args[0], "stage_index", 0) if args else 0
        fut: Future = Future()
        fut.wa_alone = alone  # type: ignore[attr-defined]
        with self._lock:  # an item to run alone goes first
            key = -(1 << 30) if alone else -stage
            heapq.heappush(self._heap, (key, next(self._seq), fn, args, kwargs, fut))
        self._pump()
        return fut

    def recover(self, fut: Any) -> None:
        """Rebuild the inner pool after a worker died (once per break)."""
        recover = getattr(self.inner, "recover", None)
        if recover is not None:
            recover(getattr(fut, "cf_generation", None))

    def _pump(self) -> None:
        while True:
            with self._lock:
                if self._alone or self._running >= self.capacity or not self._heap:
                    return
                if self._heap[0][-1].wa_alone:  # type: ignore[attr-defined]
                    if self._running:
                        return  # wait until nothing else runs
                    self._alone = True
                neg_stage, _, fn, args, kwargs, fut = heapq.heappop(self._heap)
                self._running += 1
            exc = self.reject(max(-neg_stage, 0)) if not fut.wa_alone else None  # type: ignore[attr-defined]
            if exc is not None or not fut.set_running_or_notify_cancel():
                with self._lock:
                    self._running -= 1
                    if fut.wa_alone:  # type: ignore[attr-defined]
                        self._alone = False
                if exc is not None:
                    fut.set_exception(exc)
                continue
            try:
                inner = self.inner.submit(fn, *args, **kwargs)
            except BaseException as err:  # pool shut down or broken: that item fails, the gate goes on
                with self._lock:
                    self._running -= 1
                    if fut.wa_alone:  # type: ignore[attr-defined]
                        self._alone = False
                fut.cf_generation = getattr(err, "cf_generation", None)  # type: ignore[attr-defined]
                fut.set_exception(err)
                continue
            inner.add_done_callback(lambda f, fut=fut: self._done(f, fut))

    def _done(self, inner: Future, fut: Future) -> None:
        with self._lock:
            self._running -= 1
            if fut.wa_alone:  # type: ignore[attr-defined]
                self._alone = False
        fut.cf_generation = getattr(inner, "cf_generation", None)  # type: ignore[attr-defined]
        try:
            exc = inner.exception()
        except BaseException as err:  # noqa: BLE001 - a cancelled Dask future raises here
            exc = err
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


class DaskGate(StageGate):
    """A :class:`StageGate` in front of a ``distributed.Client``, handed to the stages as their client.

    Without it every stage hands its chunks to the Dask scheduler as soon as it
    has them, and work queued there still starts after a Ctrl-C. The gate keeps
    the queue here, so a cancelled batch's queued runs never reach the cluster.
    ``shutdown`` drops the queue only; the client and its cluster are closed by
    whoever opened them."""

    accepts_alone = False

    def nthreads(self) -> dict[str, int]:
        return self.inner.nthreads()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            left, self._heap = self._heap, []
        for *_, fut in left:
            fut.cancel()
