"""PriorityGate: workers shared by the stages of a graph, deeper stages first, at most ``capacity`` at once.

Stages that share one pool and hand it work as soon as they have some run it
first-come first-served: in a chain, every item is parsed before any is
finished. The gate keeps the queue itself and passes the pool one item at a
time when a slot is free, choosing the highest ``priority`` waiting (a stage's
depth in its graph), so items are finished before new ones start: results come
early and little half-done work piles up. Work still queued when the gate shuts
down never reaches the pool, and ``reject(priority)`` may refuse queued work at
the moment it would start (a batch that was cancelled or stopped).

An item submitted ``alone`` is passed on once nothing else runs and holds
everything else back until it ends: that is how a task suspected of killing its
worker is run, so the blame for a dead worker is certain even when stages share
the pool. This is the only place "run alone" is implemented; a stage's private
pool gets the same from the runner, which isolates with nothing in flight.

The inner pool may be a thread pool, a :class:`~celestialflow.backends.pool.ProcessPool`
(rebuilt by :meth:`PriorityGate.recover` after a worker died) or a
``distributed.Client`` (extra keyword arguments such as ``pure=False`` reach its
``submit``).
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from .pool import PoolBrokenError, ProcessPool, generation_of

_ALONE = 1 << 30  # an item to run alone goes before every priority


class GateFuture(Future):
    """The future of one item passed through a :class:`PriorityGate`."""

    def __init__(self, priority: int, alone: bool) -> None:
        super().__init__()
        self.priority = priority
        self.alone = alone
        self.generation: int | None = None  # the ProcessPool generation it ran on, once known


class PriorityGate(Executor):
    """Wraps ``inner``; see the module docstring. ``owns_inner``: :meth:`shutdown` also shuts ``inner``."""

    def __init__(
        self,
        inner: Any,
        capacity: int,
        reject: Callable[[int], BaseException | None] | None = None,
        *,
        owns_inner: bool = True,
    ) -> None:
        self.inner = inner
        self.capacity = max(1, capacity)
        #: processes behind the gate (a stage never needs more chunks than this in flight, twice)
        self.workers = inner.workers if isinstance(inner, ProcessPool) else self.capacity
        self.reject = reject
        self.owns_inner = owns_inner
        self._heap: list[tuple[int, int, Callable, tuple, dict, GateFuture]] = []
        self._seq = itertools.count()
        self._running = 0
        self._alone = False  # an item submitted alone is running
        self._lock = threading.Lock()

    def submit(self, fn: Callable, /, *args: Any, priority: int = 0, alone: bool = False, **kwargs: Any) -> GateFuture:
        fut = GateFuture(priority, alone)
        with self._lock:
            key = -_ALONE if alone else -priority
            heapq.heappush(self._heap, (key, next(self._seq), fn, args, kwargs, fut))
        self._pump()
        return fut

    def recover(self, lost: Any) -> None:
        """Rebuild the inner ProcessPool after a worker died (once per break)."""
        if isinstance(self.inner, ProcessPool):
            self.inner.recover_generation(lost.generation if isinstance(lost, GateFuture) else generation_of(lost))

    def _slot_freed(self, fut: GateFuture) -> None:
        with self._lock:
            self._running -= 1
            if fut.alone:
                self._alone = False

    def _pump(self) -> None:
        while True:
            with self._lock:
                if self._alone or self._running >= self.capacity or not self._heap:
                    return
                if self._heap[0][-1].alone:
                    if self._running:
                        return  # wait until nothing else runs
                    self._alone = True
                _, _, fn, args, kwargs, fut = heapq.heappop(self._heap)
                self._running += 1
            exc = self.reject(fut.priority) if self.reject is not None and not fut.alone else None
            if exc is not None or not fut.set_running_or_notify_cancel():
                self._slot_freed(fut)
                if exc is not None:
                    fut.set_exception(exc)
                continue
            try:
                try:
                    inner = self.inner.submit(fn, *args, **kwargs)
                except PoolBrokenError:  # found broken and rebuilt at once: the item never ran
                    inner = self.inner.submit(fn, *args, **kwargs)
            except BaseException as err:  # pool shut down or broken: that item fails, the gate goes on
                self._slot_freed(fut)
                fut.generation = generation_of(err)
                fut.set_exception(err)
                continue
            inner.add_done_callback(lambda f, fut=fut: self._done(f, fut))

    def _done(self, inner: Any, fut: GateFuture) -> None:
        self._slot_freed(fut)
        fut.generation = generation_of(inner)
        try:
            exc = inner.exception()
        except BaseException as err:  # noqa: BLE001 - a cancelled Dask future raises here
            exc = err
        if exc is not None:
            fut.set_exception(exc)
            self._pump()
            return
        # the next item goes out before this result is fetched: from Dask that is a
        # round trip through the scheduler, which the worker would otherwise wait for
        self._pump()
        try:
            result = inner.result()
        except BaseException as err:  # noqa: BLE001 - the fetch itself failed (worker lost)
            fut.set_exception(err)
        else:
            fut.set_result(result)

    def drop_queued(self) -> None:
        """Cancel what waits in the gate; what runs goes on."""
        with self._lock:
            left, self._heap = self._heap, []
        for *_, fut in left:
            fut.cancel()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.drop_queued()
        if self.owns_inner:
            self.inner.shutdown(wait=wait, cancel_futures=cancel_futures)


def workers_kind(workers: Any) -> str | None:
    """``"thread"``, ``"process"`` or ``"dask"``: the kind of ``workers`` (an executor, a
    ``distributed.Client``, or a :class:`PriorityGate` in front of one); None: cannot tell."""
    inner = workers.inner if isinstance(workers, PriorityGate) else workers
    if isinstance(inner, ThreadPoolExecutor):
        return "thread"
    if isinstance(inner, (ProcessPool, ProcessPoolExecutor)):
        return "process"
    if type(inner).__module__.split(".")[0] == "distributed":
        return "dask"
    return None
