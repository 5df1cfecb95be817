"""Thread mode: a pool of threads calling ``func`` on chunks of arguments."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

from .base import Backend
from .chunk import call_chunk
from .gate import PriorityGate


class ThreadBackend(Backend):
    """A thread pool of ``workers`` threads calling ``func``; a cancel stops chunks between tasks.

    ``pool``: an executor (or a :class:`PriorityGate`) shared with other stages and
    left open; ``priority``: this stage's place in a shared gate's queue."""

    name = "thread"

    def __init__(
        self,
        func: Callable,
        workers: int,
        thread_name: str = "celestialflow",
        pool: Executor | None = None,
        priority: int = 0,
    ) -> None:
        super().__init__(workers)
        self._func = func
        self._prefix = thread_name
        self._shared = pool
        self._pool: Executor | None = None
        self._cancel = threading.Event()
        self.priority = priority

    @property
    def max_inflight(self) -> int:
        return self.workers  # one chunk per thread: a queued chunk would only wait

    def open(self) -> None:
        self._pool = self._shared or ThreadPoolExecutor(self.workers, thread_name_prefix=self._prefix)

    def submit(self, payload: Sequence[Any], alone: bool = False) -> Future:
        pool = self._pool
        assert pool is not None
        if isinstance(pool, PriorityGate):
            return pool.submit(call_chunk, self._func, payload, self._cancel, priority=self.priority)
        return pool.submit(call_chunk, self._func, payload, self._cancel)

    def close(self, cancel: bool = False) -> None:
        if cancel:
            self._cancel.set()  # running chunks end after their current task
        if self._pool is not None and self._pool is not self._shared:
            self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
        self._pool = None
