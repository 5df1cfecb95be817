"""Execution back-ends: the only thing that differs between execution modes.

A back-end runs *chunks* of work and hands back a future per chunk; the single
scheduling loop in :mod:`celestialflow.runner` does everything else (dedup,
retries, caches, forwarding). Like dask's local scheduler, serial, thread,
process, async and Dask execution are each a few lines supplying ``submit``.

Two kinds of chunk exist. In the *fused* form (serial mode, and a stage that runs
in its own process) the worker gets raw tasks and runs ``get_args -> func ->
process_result`` itself. In the *call* form (thread, process, async, dask) the
scheduling thread runs the hooks and the worker only calls ``func(*args)``; so
user hooks never run concurrently and never need to be picklable.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from .errors import ConfigurationError

#: A chunk's outcome: one result per input (None where it failed) and the failures by index.
ChunkResult = tuple[list[Any], dict[int, BaseException]]

EXECUTION_MODES = ("serial", "thread", "process", "async", "dask")


def call_chunk(func: Callable, args_list: Sequence[Any]) -> ChunkResult:
    """Call ``func`` once per argument tuple (or kwargs dict), keeping failures per index."""
    results: list[Any] = []
    errors: dict[int, BaseException] = {}
    append = results.append
    for i, args in enumerate(args_list):
        try:
            append(func(**args) if type(args) is dict else func(*args))
        except Exception as exc:  # one task's failure is that task's, not the chunk's
            errors[i] = exc
            append(None)
    return results, errors


def run_fused(call: Callable[[Any], Any], tasks: Sequence[Any]) -> ChunkResult:
    """Run the whole per-task pipeline ``call(task)`` over a chunk (fused form)."""
    results: list[Any] = []
    errors: dict[int, BaseException] = {}
    append = results.append
    for i, task in enumerate(tasks):
        try:
            append(call(task))
        except Exception as exc:
            errors[i] = exc
            append(None)
    return results, errors


class RemoteError(Exception):
    """Stands in for an exception raised in a worker process that could not be pickled back."""


def _picklable_outcome(outcome: ChunkResult) -> ChunkResult:
    results, errors = outcome
    for i, exc in list(errors.items()):
        try:
            pickle.dumps(exc)
        except Exception:
            errors[i] = RemoteError(f"{type(exc).__name__}: {exc}")
    return results, errors


def _call_chunk_in_process(func: Callable, args_list: Sequence[Any]) -> ChunkResult:
    return _picklable_outcome(call_chunk(func, args_list))


# The manager a dedicated stage process serves (set once by the pool initializer).
_STAGE_CALL: Callable[[Any], Any] | None = None


def _install_stage(manager_blob: bytes) -> None:
    global _STAGE_CALL
    manager = pickle.loads(manager_blob)
    _STAGE_CALL = manager._compose_call()


def _run_fused_in_stage(tasks: Sequence[Any]) -> ChunkResult:
    assert _STAGE_CALL is not None
    return _picklable_outcome(run_fused(_STAGE_CALL, tasks))


class Backend:
    """How chunks are executed. ``fused`` says which chunk form ``submit`` expects."""

    name = "base"
    fused = False

    def __init__(self, workers: int) -> None:
        self.workers = max(1, int(workers))

    def open(self) -> None:
        """Acquire resources (pools, loops); called once before the first submit."""

    def submit(self, payload: Sequence[Any]) -> Future:
        raise NotImplementedError

    def close(self, cancel: bool = False) -> None:
        """Release resources; with ``cancel`` drop work that has not started."""


class SerialBackend(Backend):
    """Runs each chunk at once in the calling thread."""

    name = "serial"
    fused = True

    def __init__(self, call: Callable[[Any], Any]) -> None:
        super().__init__(1)
        self._call = call

    def submit(self, payload: Sequence[Any]) -> Future:
        fut: Future = Future()
        fut.set_result(run_fused(self._call, payload))
        return fut


class ThreadBackend(Backend):
    """A thread pool of ``workers`` threads calling ``func``."""

    name = "thread"

    def __init__(
        self, func: Callable, workers: int, thread_name: str = "celestialflow", pool: Executor | None = None
    ) -> None:
        super().__init__(workers)
        self._func = func
        self._prefix = thread_name
        self._shared = pool
        self._pool: Executor | None = None

    def open(self) -> None:
        self._pool = self._shared or ThreadPoolExecutor(self.workers, thread_name_prefix=self._prefix)

    def submit(self, payload: Sequence[Any]) -> Future:
        assert self._pool is not None
        return self._pool.submit(call_chunk, self._func, payload)

    def close(self, cancel: bool = False) -> None:
        if self._pool is not None and self._pool is not self._shared:
            self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
        self._pool = None


def _mp_context(name: str | None):
    return multiprocessing.get_context(name) if name else None


def _close_process_pool(pool: ProcessPoolExecutor, cancel: bool) -> None:
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


class ProcessBackend(Backend):
    """A process pool of ``workers`` processes calling ``func`` on chunks of arguments."""

    name = "process"

    def __init__(
        self, func: Callable, workers: int, mp_context: str | None = None, pool: Executor | None = None
    ) -> None:
        super().__init__(workers if pool is not None else min(workers, os.cpu_count() or 1))
        self._func = func
        self._ctx = mp_context
        self._shared = pool
        self._pool: Executor | None = None

    def open(self) -> None:
        self._pool = self._shared or ProcessPoolExecutor(self.workers, mp_context=_mp_context(self._ctx))

    def submit(self, payload: Sequence[Any]) -> Future:
        assert self._pool is not None
        return self._pool.submit(_call_chunk_in_process, self._func, payload)

    def close(self, cancel: bool = False) -> None:
        if self._pool is not None and self._pool is not self._shared:
            _close_process_pool(self._pool, cancel)  # type: ignore[arg-type]
        self._pool = None


class StageProcessBackend(Backend):
    """One dedicated process that runs a whole stage's per-task pipeline (fused form)."""

    name = "stage-process"
    fused = True

    def __init__(self, manager_blob: bytes, mp_context: str | None = None) -> None:
        super().__init__(1)
        self._blob = manager_blob
        self._ctx = mp_context
        self._pool: ProcessPoolExecutor | None = None

    def open(self) -> None:
        self._pool = ProcessPoolExecutor(
            1, mp_context=_mp_context(self._ctx), initializer=_install_stage, initargs=(self._blob,)
        )

    def submit(self, payload: Sequence[Any]) -> Future:
        assert self._pool is not None
        return self._pool.submit(_run_fused_in_stage, payload)

    def close(self, cancel: bool = False) -> None:
        if self._pool is not None:
            _close_process_pool(self._pool, cancel)
            self._pool = None


class AsyncBackend(Backend):
    """An event loop in its own thread; at most ``workers`` coroutines awaited at once."""

    name = "async"

    def __init__(self, func: Callable, workers: int) -> None:
        super().__init__(workers)
        self._func = func
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sem: asyncio.Semaphore | None = None

    def open(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            self._sem = asyncio.Semaphore(self.workers)
            ready.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=serve, name="celestialflow-async", daemon=True)
        self._thread.start()
        ready.wait()

    async def _one(self, args: Any) -> Any:
        assert self._sem is not None
        async with self._sem:
            return await (self._func(**args) if type(args) is dict else self._func(*args))

    async def _chunk(self, args_list: Sequence[Any]) -> ChunkResult:
        outs = await asyncio.gather(*(self._one(a) for a in args_list), return_exceptions=True)
        results: list[Any] = []
        errors: dict[int, BaseException] = {}
        for i, out in enumerate(outs):
            if isinstance(out, Exception):
                errors[i] = out
                results.append(None)
            elif isinstance(out, BaseException):  # CancelledError, KeyboardInterrupt
                raise out
            else:
                results.append(out)
        return results, errors

    def submit(self, payload: Sequence[Any]) -> Future:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(self._chunk(payload), self._loop)

    def close(self, cancel: bool = False) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if cancel:
            for task in asyncio.all_tasks(loop):
                loop.call_soon_threadsafe(task.cancel)
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        self._loop = self._thread = None


class DaskBackend(Backend):
    """Chunks submitted to a ``dask.distributed`` cluster.

    Uses the given client, or a scheduler address, or starts a ``LocalCluster`` of
    ``workers`` single-threaded processes (closed again afterwards).
    """

    name = "dask"

    def __init__(self, func: Callable, workers: int, client: Any = None, address: str | None = None) -> None:
        super().__init__(workers)
        self._func = func
        self._client = client
        self._address = address
        self._owned: list[Any] = []

    def open(self) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigurationError(
                "execution_mode='dask' needs dask.distributed: pip install 'celestialflow[dask]'"
            ) from exc
        if self._client is None:
            if self._address:
                self._client = Client(self._address)
                self._owned = [self._client]
            else:
                cluster = LocalCluster(
                    n_workers=min(self.workers, os.cpu_count() or 1),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",
                )
                self._client = Client(cluster)
                self._owned = [self._client, cluster]
        self.workers = max(1, sum(self._client.nthreads().values()))

    def submit(self, payload: Sequence[Any]) -> Future:
        fut: Future = Future()
        dfut = self._client.submit(_call_chunk_in_process, self._func, list(payload), pure=False)

        def relay(df: Any) -> None:
            try:
                fut.set_result(df.result())
            except BaseException as exc:  # noqa: BLE001 - the chunk's failure is relayed as is
                fut.set_exception(exc)

        dfut.add_done_callback(relay)
        return fut

    def close(self, cancel: bool = False) -> None:
        for obj in self._owned:
            obj.close()
        if self._owned:
            self._client = None
        self._owned = []
