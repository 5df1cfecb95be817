"""Process mode: worker processes calling ``func`` on pickled chunks; and a stage in its own process.

A pool given by the caller is used as is (and not rebuilt); our own is a
:class:`~celestialflow.backends.pool.ProcessPool`, rebuilt when a worker dies.
A :class:`~celestialflow.backends.gate.PriorityGate` in front of a shared pool
orders the stages' chunks and runs a suspect chunk alone.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from typing import Any

from .gate import PriorityGate
from .pool import ProcessPool
from .wire import PickledBackend, call_chunk_in_process, install_stage, run_fused_in_stage


class ProcessBackend(PickledBackend):
    """A process pool of ``workers`` processes calling ``func`` on chunks of arguments."""

    name = "process"
    target = 0.02
    max_chunk = 4096

    def __init__(
        self,
        func: Callable,
        workers: int,
        mp_context: str | None = None,
        pool: Executor | ProcessPool | PriorityGate | None = None,
        priority: int = 0,
    ) -> None:
        if isinstance(pool, (ProcessPool, PriorityGate)):
            workers = min(workers, pool.workers)
        elif pool is None:
            workers = min(workers, os.cpu_count() or 1)
        super().__init__(workers)
        self._func = func
        self._ctx = mp_context
        self._shared = pool
        self._pool: ProcessPool | PriorityGate | Executor | None = None
        self.priority = priority

    def open(self) -> None:
        self._pool = self._shared or ProcessPool(self.workers, self._ctx)

    def submit(self, payload: Sequence[Any], alone: bool = False) -> Future:
        pool = self._pool
        assert pool is not None
        blob = pickle.dumps(payload, pickle.HIGHEST_PROTOCOL)
        if isinstance(pool, PriorityGate):
            return pool.submit(call_chunk_in_process, self._func, blob, priority=self.priority, alone=alone)
        # our own pool, or a ProcessPool of the caller's: the runner sends a chunk alone only
        # with nothing else of this stage in flight
        return pool.submit(call_chunk_in_process, self._func, blob)

    def recover(self, lost: Any) -> None:
        if isinstance(self._pool, (ProcessPool, PriorityGate)):
            self._pool.recover(lost)

    def close(self, cancel: bool = False) -> None:
        if isinstance(self._pool, ProcessPool) and self._pool is not self._shared:
            self._pool.close(cancel)
        self._pool = None


class StageProcessBackend(PickledBackend):
    """One dedicated process that runs a whole stage's per-task pipeline (fused form)."""

    name = "stage-process"
    fused = True
    max_chunk = 2048

    def __init__(self, manager_blob: bytes, mp_context: str | None = None) -> None:
        super().__init__(1)
        self._blob = manager_blob
        self._ctx = mp_context
        self._pool: ProcessPool | None = None

    def open(self) -> None:
        self._pool = ProcessPool(1, self._ctx, initializer=install_stage, initargs=(self._blob,))

    def submit(self, payload: Sequence[Any], alone: bool = False) -> Future:
        assert self._pool is not None
        return self._pool.submit(run_fused_in_stage, pickle.dumps(payload, pickle.HIGHEST_PROTOCOL))

    def recover(self, lost: Any) -> None:
        if self._pool is not None:
            self._pool.recover(lost)

    def close(self, cancel: bool = False) -> None:
        if self._pool is not None:
            self._pool.close(cancel)
            self._pool = None
