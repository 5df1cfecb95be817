"""ProcessPool: a process pool that is rebuilt when one of its workers dies.

Each chunk's future is a :class:`PoolFuture` carrying the pool *generation* it
was submitted to. ``recover(lost)`` replaces the pool once per break, however
many lost chunks report it, and fails every future of that generation still
pending (the executor marks a broken pool without the lock ``submit`` holds, so a
chunk submitted at that moment would otherwise never finish). Running a chunk
*alone* is not this module's job: a private pool gets that from the runner,
which isolates with nothing else in flight, and a pool shared by stages sits
behind a :class:`~celestialflow.backends.gate.PriorityGate`.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ..errors import PoolClosedError


class PoolFuture(Future):
    """The future of one chunk of a :class:`ProcessPool`, with the generation it ran on."""

    def __init__(self, generation: int | None = None) -> None:
        super().__init__()
        self.generation = generation


class PoolBrokenError(BrokenProcessPool):
    """``submit`` found the pool broken; ``generation`` is the broken one (already replaced)."""

    def __init__(self, message: str, generation: int) -> None:
        super().__init__(message)
        self.generation = generation


def generation_of(lost: Any) -> int | None:
    """The pool generation a lost chunk (its future, or its submit's exception) belongs to."""
    if isinstance(lost, (PoolFuture, PoolBrokenError)):
        return lost.generation
    return None


def mp_context(name: str | None):
    """The multiprocessing context of start method ``name`` (None: the default)."""
    return multiprocessing.get_context(name) if name else None


def close_process_pool(pool: ProcessPoolExecutor, cancel: bool) -> None:
    """Shut ``pool`` down; on cancel, stop its workers instead of waiting for their chunks."""
    if not cancel:
        pool.shutdown(wait=True)
        return
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14+
    if terminate is not None:
        terminate()
    else:  # no public way before 3.14: terminate the worker processes the pool keeps
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


# Worker processes are forked by the first submit of a pool. Two pools forking at
# once from two threads would each leak the other's half-made pipes into their
# child: the write end of a worker's sentinel then stays open in a process of the
# other pool, its death is never seen, and its chunks wait for ever. One fork at
# a time, then.
_SPAWN_LOCK = threading.Lock()


def _submit_spawning_safely(pool: ProcessPoolExecutor, fn: Callable, *args: Any) -> Future:
    if getattr(pool, "_processes", None):  # workers exist: this submit forks nothing
        return pool.submit(fn, *args)
    with _SPAWN_LOCK:
        return pool.submit(fn, *args)


class ProcessPool:
    """A ``ProcessPoolExecutor`` that is rebuilt when one of its workers dies; see the module docstring."""

    def __init__(
        self, workers: int, mp_context: str | None = None, initializer: Any = None, initargs: tuple = ()
    ) -> None:
        self.workers = workers
        self._ctx = mp_context
        self._init = (initializer, initargs)
        self._lock = threading.Lock()
        self.generation = 0
        self._pending: dict[int, set[PoolFuture]] = {}  # our futures not yet finished, by generation
        self._closed = False
        self._pool = self._new()

    def _new(self) -> ProcessPoolExecutor:
        initializer, initargs = self._init
        return ProcessPoolExecutor(
            self.workers, mp_context=mp_context(self._ctx), initializer=initializer, initargs=initargs
        )

    def submit(self, fn: Callable, *args: Any) -> PoolFuture:
        with self._lock:
            if self._closed:
                raise PoolClosedError("the process pool is shutting down")
            pool, gen = self._pool, self.generation
            try:
                inner = _submit_spawning_safely(pool, fn, *args)
            except BrokenProcessPool as exc:  # nothing counted; recovered below, outside the lock
                broken: BrokenProcessPool | None = exc
            else:
                broken = None
                outer = PoolFuture(gen)
                self._pending.setdefault(gen, set()).add(outer)
        if broken is not None:
            self._recover(gen)
            raise PoolBrokenError(str(broken), gen) from broken
        inner.add_done_callback(lambda f: self._relay(f, outer, gen))
        return outer

    def _release(self, outer: PoolFuture, gen: int) -> bool:
        """Forget ``outer``; False if it was already failed by a recovery."""
        with self._lock:
            futs = self._pending.get(gen)
            if futs is None or outer not in futs:
                return False
            futs.discard(outer)
            if not futs:
                del self._pending[gen]
            return True

    def _relay(self, inner: Future, outer: PoolFuture, gen: int) -> None:
        if not self._release(outer, gen):
            return
        if inner.cancelled():
            outer.set_exception(PoolClosedError("the chunk was cancelled with its pool"))
            return
        exc = inner.exception()
        if isinstance(exc, BrokenProcessPool):
            # the pool recovers by itself, at once: a runner that would do it may be
            # waiting for the very chunks this recovery fails
            self._recover(gen)
        if exc is not None:
            outer.set_exception(exc)
        else:
            outer.set_result(inner.result())

    def recover(self, lost: Any = None) -> None:
        """After a lost chunk (its future or its submit's exception; None: the current
        generation): fail what is still pending of its generation and, if that is the
        pool in use, replace it."""
        self.recover_generation(generation_of(lost))

    def recover_generation(self, gen: int | None) -> None:
        """:meth:`recover` given the lost chunk's generation (None: the current one)."""
        self._recover(self.generation if gen is None else gen)

    def _recover(self, gen: int) -> None:
        with self._lock:
            stranded = self._pending.pop(gen, set())
            old = None
            if gen == self.generation and not self._closed:
                old = self._pool
                self._pool = self._new()
                self.generation += 1
        for fut in stranded:
            fut.set_exception(BrokenProcessPool("the process pool broke while this chunk was pending"))
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)

    def close(self, cancel: bool = False) -> None:
        with self._lock:
            self._closed = True
        close_process_pool(self._pool, cancel)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """``Executor.shutdown`` spelling of :meth:`close`."""
        self.close(cancel=cancel_futures or not wait)
