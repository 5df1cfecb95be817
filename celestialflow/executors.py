"""Execution back-ends: the only thing that differs between execution modes.

A back-end runs *chunks* of work and hands back a future per chunk; the single
scheduling loop in :mod:`celestialflow.runner` does everything else (dedup,
retries, caches, forwarding, recovery from lost workers). Like dask's local
scheduler, serial, thread, process, async and Dask execution are each a few
lines supplying ``submit``.

Two kinds of chunk exist. In the *fused* form (serial mode, and a stage that runs
in its own process) the worker gets raw tasks and runs ``get_args -> func ->
process_result`` itself. In the *call* form (thread, process, async, dask) the
scheduling thread runs the hooks and the worker only calls ``func(*args)``; so
user hooks never run concurrently and never need to be picklable.

Every chunk ends as an :data:`Outcome`. Worker processes send it back as bytes
they pickled themselves: what cannot be pickled (a generator result, an
exception that does not survive a round trip) is replaced there, per task, by
something that always unpickles, so one bad task never breaks the pool.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .calling import invoke
from .errors import ConfigurationError

#: A chunk's outcome: results of the tasks that ran (None where one failed), the
#: failures by index, how many tasks ran (fewer than given when the chunk was
#: cancelled or interrupted), the seconds the worker spent, and the
#: KeyboardInterrupt/SystemExit that stopped it (or None).
Outcome = tuple[list[Any], dict[int, BaseException], int, float, BaseException | None]

EXECUTION_MODES = ("serial", "thread", "process", "async", "dask")

#: Which exceptions a task may raise that stop the run instead of failing the task.
INTERRUPTS = (KeyboardInterrupt, SystemExit)


def call_chunk(func: Callable, args_list: Sequence[Any], cancel: threading.Event | None = None) -> Outcome:
    """Call ``func`` once per argument tuple (or kwargs mapping), keeping failures per index.

    The loop of :func:`run_fused` with the call written out: a ``partial(invoke,
    func)`` there costs a Python call per task (measured: 1.4-1.7 M trivial tasks/s
    on 2 threads fell to 1.0-1.4 M)."""
    results: list[Any] = []
    errors: dict[int, BaseException] = {}
    append = results.append
    t0 = time.perf_counter()
    stop: BaseException | None = None
    for i, args in enumerate(args_list):
        if cancel is not None and cancel.is_set():
            break
        try:
            append(func(*args) if type(args) is tuple else invoke(func, args))
        except Exception as exc:  # one task's failure is that task's, not the chunk's
            errors[i] = exc
            append(None)
        except INTERRUPTS as exc:
            stop = exc
            break
    return results, errors, len(results), time.perf_counter() - t0, stop


def run_fused(call: Callable[[Any], Any], tasks: Sequence[Any], cancel: threading.Event | None = None) -> Outcome:
    """Run ``call(task)`` over a chunk (in the fused form ``call`` is the whole per-task pipeline).

    Stops before the next task once ``cancel`` is set, and at a KeyboardInterrupt
    or SystemExit raised by a task (returned, not raised, so the caller decides)."""
    results: list[Any] = []
    errors: dict[int, BaseException] = {}
    append = results.append
    t0 = time.perf_counter()
    stop: BaseException | None = None
    for i, task in enumerate(tasks):
        if cancel is not None and cancel.is_set():
            break
        try:
            append(call(task))
        except Exception as exc:  # one task's failure is that task's, not the chunk's
            errors[i] = exc
            append(None)
        except INTERRUPTS as exc:
            stop = exc
            break
    return results, errors, len(results), time.perf_counter() - t0, stop


# -- errors that cross a process boundary ------------------------------------------
class RemoteError(Exception):
    """Stands in for an exception from a worker process that could not be sent back as is.

    Its class is a subclass named like the original (``type(err).__name__`` is the
    original's name), and it keeps the qualified type name and the traceback text."""

    type_name = "RemoteError"
    qualname = "RemoteError"
    remote_traceback = ""

    def __reduce__(self):  # rebuilt by name on the other side: always unpickles
        return _remote_error, (self.type_name, self.qualname, str(self), self.remote_traceback)


_REMOTE_CLASSES: dict[str, type[RemoteError]] = {}


def _remote_error(type_name: str, qualname: str, message: str, tb: str) -> RemoteError:
    cls = _REMOTE_CLASSES.get(type_name)
    if cls is None:
        cls = type(type_name if type_name.isidentifier() else "RemoteError", (RemoteError,), {})
        _REMOTE_CLASSES[type_name] = cls
    err = cls(message)
    err.type_name, err.qualname, err.remote_traceback = type_name, qualname, tb
    return err


def remote_error_for(exc: BaseException) -> RemoteError:
    """A :class:`RemoteError` carrying ``exc``'s type name, message and traceback."""
    t = type(exc)
    tb = "".join(traceback.format_exception(t, exc, exc.__traceback__))[-8000:]
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the failure
        message = f"<{t.__name__} with unprintable message>"
    return _remote_error(t.__name__, f"{t.__module__}.{t.__qualname__}", message, tb)


class WorkerLostError(Exception):
    """The worker process running a task died (killed, ``os._exit``, a crash in C code)."""


class ResultNotPicklableError(TypeError):
    """A task's result cannot be sent back from its worker process."""


def _round_trips(obj: Any) -> bool:
    try:
        pickle.loads(pickle.dumps(obj, pickle.HIGHEST_PROTOCOL))
        return True
    except Exception:  # noqa: BLE001 - any failure means "does not round-trip"
        return False


def encode_outcome(outcome: Outcome) -> bytes:
    """Pickle ``outcome`` in the worker, replacing per task whatever would not survive."""
    results, errors, ran, elapsed, stop = outcome
    for i, exc in list(errors.items()):  # the failure path only: errors are rare
        if not _round_trips(exc):
            errors[i] = remote_error_for(exc)
    if stop is not None and not _round_trips(stop):
        stop = KeyboardInterrupt(str(stop)) if isinstance(stop, KeyboardInterrupt) else SystemExit(str(stop))
    try:
        return pickle.dumps((results, errors, ran, elapsed, stop), pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - find the results that cannot travel, fail only those
        pass
    for i, value in enumerate(results):
        if i in errors:
            continue
        try:
            pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001
            results[i] = None
            errors[i] = ResultNotPicklableError(
                f"the result ({type(value).__name__}) cannot be pickled back from the worker process: {exc}"
            )
    return pickle.dumps((results, errors, ran, elapsed, stop), pickle.HIGHEST_PROTOCOL)


def _call_chunk_in_process(func: Callable, blob: bytes) -> bytes:
    """Worker side of the call form: arguments arrive pickled, the outcome leaves pickled."""
    return encode_outcome(call_chunk(func, pickle.loads(blob)))


# The manager a dedicated stage process serves (set once by the pool initializer).
_STAGE_CALL: Callable[[Any], Any] | None = None


def _install_stage(manager_blob: bytes) -> None:
    global _STAGE_CALL
    manager = pickle.loads(manager_blob)
    _STAGE_CALL = manager._compose_call()


def _run_fused_in_stage(blob: bytes) -> bytes:
    assert _STAGE_CALL is not None
    return encode_outcome(run_fused(_STAGE_CALL, pickle.loads(blob)))


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


class PoolClosedError(RuntimeError):
    """Work was submitted to a pool that is shutting down."""


class ProcessPool:
    """A ``ProcessPoolExecutor`` that is rebuilt when one of its workers dies.

    Each future is tagged with the pool's generation; ``recover(generation)``
    replaces the pool once per break, however many lost chunks report it, and
    fails every future of that generation still pending. (The executor marks a
    broken pool without the lock ``submit`` holds, so a chunk submitted at that
    moment would otherwise never finish.) A chunk submitted ``alone`` waits until
    nothing else is in flight and holds new work back until it ends: that is how
    a task suspected of killing its worker is run, so the blame is certain even
    when stages share the pool."""

    def __init__(self, workers: int, mp_context: str | None = None, initializer: Any = None, initargs: tuple = ()) -> None:
        self.workers = workers
        self._ctx = mp_context
        self._init = (initializer, initargs)
        self._cv = threading.Condition()
        self.generation = 0
        self._pending: dict[int, set[Future]] = {}  # our futures not yet finished, by generation
        self._alone_waiting = 0
        self._alone: Future | None = None  # the future submitted alone, while it runs
        self._closed = False
        self._pool = self._new()

    @property
    def _inflight(self) -> int:
        return sum(len(futs) for futs in self._pending.values())

    def _new(self) -> ProcessPoolExecutor:
        initializer, initargs = self._init
        return ProcessPoolExecutor(
            self.workers, mp_context=_mp_context(self._ctx), initializer=initializer, initargs=initargs
        )

    def submit(self, fn: Callable, *args: Any, alone: bool = False) -> Future:
        with self._cv:
            if alone:
                self._alone_waiting += 1
                try:
                    while not self._closed and (self._alone is not None or self._inflight):
                        self._cv.wait(0.1)
                finally:
                    self._alone_waiting -= 1
            else:
                while not self._closed and (self._alone is not None or self._alone_waiting):
                    self._cv.wait(0.1)
            if self._closed:
                raise PoolClosedError("the process pool is shutting down")
            pool, gen = self._pool, self.generation
            try:
                inner = _submit_spawning_safely(pool, fn, *args)
            except BrokenProcessPool as exc:  # nothing counted; recovered below, outside the lock
                exc.cf_generation = gen  # type: ignore[attr-defined]
                broken: BrokenProcessPool | None = exc
            else:
                broken = None
            if broken is None:
                outer: Future = Future()
                outer.cf_generation = gen  # type: ignore[attr-defined]
                self._pending.setdefault(gen, set()).add(outer)
                if alone:
                    self._alone = outer
        if broken is not None:
            self.recover(gen)
            raise broken
        inner.add_done_callback(lambda f: self._relay(f, outer, gen))
        return outer

    def _release(self, outer: Future, gen: int) -> bool:
        """Forget ``outer``; False if it was already failed by a recovery."""
        with self._cv:
            futs = self._pending.get(gen)
            if futs is None or outer not in futs:
                return False
            futs.discard(outer)
            if not futs:
                del self._pending[gen]
            if self._alone is outer:
                self._alone = None
            self._cv.notify_all()
            return True

    def _relay(self, inner: Future, outer: Future, gen: int) -> None:
        if not self._release(outer, gen):
            return
        if inner.cancelled():
            outer.set_exception(PoolClosedError("the chunk was cancelled with its pool"))
            return
        exc = inner.exception()
        if isinstance(exc, BrokenProcessPool):
            # the pool recovers by itself, at once: a runner that would do it may be
            # waiting in ``submit`` for the very chunks this recovery fails
            self.recover(gen)
        if exc is not None:
            outer.set_exception(exc)
        else:
            outer.set_result(inner.result())

    def recover(self, generation: int | None) -> None:
        """Fail what is still pending of ``generation`` (None: the current one) and, if that
        is the pool in use, replace it."""
        with self._cv:
            gen = self.generation if generation is None else generation
            stranded = self._pending.pop(gen, set())
            if self._alone in stranded:
                self._alone = None
            old = None
            if gen == self.generation and not self._closed:
                old = self._pool
                self._pool = self._new()
                self.generation += 1
            self._cv.notify_all()
        for fut in stranded:
            fut.set_exception(BrokenProcessPool("the process pool broke while this chunk was pending"))
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)

    def close(self, cancel: bool = False) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        _close_process_pool(self._pool, cancel)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """``Executor.shutdown`` spelling of :meth:`close`."""
        self.close(cancel=cancel_futures or not wait)


# -- back-ends ------------------------------------------------------------------------------
class Backend:
    """How chunks are executed. ``fused`` says which chunk form ``submit`` expects."""

    name = "base"
    fused = False
    #: seconds of work a chunk aims at (chunks of trivial tasks grow up to ``max_chunk``);
    #: None: chunks just double per finished chunk up to ``max_chunk``
    target: float | None = 0.01
    max_chunk = 256
    first_chunk = 1

    def __init__(self, workers: int) -> None:
        self.workers = max(1, int(workers))

    def open(self) -> None:
        """Acquire resources (pools, loops); called once before the first submit."""

    def submit(self, payload: Sequence[Any], alone: bool = False) -> Future:
        """Run ``payload`` as one chunk; ``alone``: with nothing else in flight on the workers."""
        raise NotImplementedError

    def outcome(self, fut: Future) -> tuple[Outcome, int]:
        """The finished chunk's outcome and the bytes it took to send back (0 in-process)."""
        return fut.result(), 0

    def is_lost(self, exc: BaseException) -> bool:
        """Whether a chunk failed because its worker died (its tasks may be run again)."""
        return False

    def recover(self, fut: Any) -> None:
        """Make the back-end usable again after a lost worker (rebuild a broken pool).

        ``fut`` is the lost chunk's future, or the exception its submit raised."""

    def close(self, cancel: bool = False) -> None:
        """Release resources; with ``cancel`` drop work that has not started."""


class SerialBackend(Backend):
    """Runs each chunk at once in the calling thread."""

    name = "serial"
    fused = True
    max_chunk = 2048
    first_chunk = 16

    def __init__(self, call: Callable[[Any], Any]) -> None:
        super().__init__(1)
        self._call = call

    def submit(self, payload: Sequence[Any], alone: bool = False) -> Future:
        fut: Future = Future()
        fut.set_result(run_fused(self._call, payload))
        return fut


class ThreadBackend(Backend):
    """A thread pool of ``workers`` threads calling ``func``; a cancel stops chunks between tasks."""

    name = "thread"

    def __init__(
        self, func: Callable, workers: int, thread_name: str = "celestialflow", pool: Executor | None = None
    ) -> None:
        super().__init__(workers)
        self._func = func
        self._prefix = thread_name
        self._shared = pool
        self._pool: Executor | None = None
        self._cancel = threading.Event()

    def open(self) -> None:
        self._pool = self._shared or ThreadPoolExecutor(self.workers, thread_name_prefix=self._prefix)

    def submit(self, payload: Sequence[Any], alone: bool = False) -> Future:
        assert self._pool is not None
        return self._pool.submit(call_chunk, self._func, payload, self._cancel)

    def close(self, cancel: bool = False) -> None:
        if cancel:
            self._cancel.set()  # running chunks end after their current task
        if self._pool is not None and self._pool is not self._shared:
            self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
        self._pool = None


class _PickledBackend(Backend):
    """Shared by back-ends whose chunks travel pickled: bytes in, bytes out."""

    def is_lost(self, exc: BaseException) -> bool:
        return isinstance(exc, BrokenProcessPool)

    def outcome(self, fut: Future) -> tuple[Outcome, int]:
        blob = fut.result()
        if type(blob) is not bytes:  # a user's pool that returned the outcome itself
            return blob, 0
        return pickle.loads(blob), len(blob)


class ProcessBackend(_PickledBackend):
    """A process pool of ``workers`` processes calling ``func`` on chunks of arguments.

    A pool given by the caller is used as is (and not rebuilt); our own is a
    :class:`ProcessPool`, rebuilt when a worker dies."""

    name = "process"
    target = 0.02
    max_chunk = 4096

    def __init__(
        self,
        func: Callable,
        workers: int,
        mp_context: str | None = None,
        pool: Executor | ProcessPool | None = None,
    ) -> None:
        if isinstance(pool, ProcessPool):
            workers = min(workers, pool.workers)
        elif pool is None:
            workers = min(workers, os.cpu_count() or 1)
        super().__init__(workers)
        self._func = func
        self._ctx = mp_context
        self._shared = pool
        self._pool: ProcessPool | Executor | None = None

    def open(self) -> None:
        self._pool = self._shared or ProcessPool(self.workers, self._ctx)

    def submit(self, payload: Sequence[Any], alone: bool = False) -> Future:
        assert self._pool is not None
        blob = pickle.dumps(payload, pickle.HIGHEST_PROTOCOL)
        if isinstance(self._pool, ProcessPool) or getattr(self._pool, "accepts_alone", False):
            return self._pool.submit(_call_chunk_in_process, self._func, blob, alone=alone)
        return self._pool.submit(_call_chunk_in_process, self._func, blob)

    def recover(self, fut: Any) -> None:
        pool = self._pool
        if isinstance(pool, ProcessPool):
            pool.recover(getattr(fut, "cf_generation", None))
        elif pool is not None and hasattr(pool, "recover"):
            pool.recover(fut)

    def close(self, cancel: bool = False) -> None:
        if isinstance(self._pool, ProcessPool) and self._pool is not self._shared:
            self._pool.close(cancel)
        self._pool = None


class StageProcessBackend(_PickledBackend):
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
        self._pool = ProcessPool(1, self._ctx, initializer=_install_stage, initargs=(self._blob,))

    def submit(self, payload: Sequence[Any], alone: bool = False) -> Future:
        assert self._pool is not None
        blob = pickle.dumps(payload, pickle.HIGHEST_PROTOCOL)
        return self._pool.submit(_run_fused_in_stage, blob, alone=alone)

    def recover(self, fut: Any) -> None:
        if self._pool is not None:
            self._pool.recover(getattr(fut, "cf_generation", None))

    def close(self, cancel: bool = False) -> None:
        if self._pool is not None:
            self._pool.close(cancel)
            self._pool = None


class AsyncBackend(Backend):
    """Coroutines on an event loop, at most ``workers`` awaited at once.

    Without ``loop`` the back-end runs a loop of its own in a thread; with one (the
    caller's, for ``start_async``) the coroutines run there and the loop is left open.
    A chunk's tasks are awaited together, so a chunk takes about as long as its
    slowest task: chunks are not sized by duration (``target`` None), only by what
    is available."""

    name = "async"
    target = None
    first_chunk = 256

    def __init__(self, func: Callable, workers: int, loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(workers)
        self._func = func
        self._given = loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sem: asyncio.Semaphore | None = None
        self._futures: set[Any] = set()

    def open(self) -> None:
        if self._given is not None:
            self._loop = self._given
            return
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            ready.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=serve, name="celestialflow-async", daemon=True)
        self._thread.start()
        ready.wait()

    async def _one(self, args: Any) -> Any:
        if self._sem is None:  # created on the loop it serves
            self._sem = asyncio.Semaphore(self.workers)
        async with self._sem:
            return await invoke(self._func, args)

    async def _chunk(self, args_list: Sequence[Any]) -> Outcome:
        t0 = time.perf_counter()
        outs = await asyncio.gather(*(self._one(a) for a in args_list), return_exceptions=True)
        results: list[Any] = []
        errors: dict[int, BaseException] = {}
        stop: BaseException | None = None
        for i, out in enumerate(outs):
            if isinstance(out, Exception):
                errors[i] = out
                results.append(None)
            elif isinstance(out, INTERRUPTS):
                stop = out
                errors[i] = out
                results.append(None)
            elif isinstance(out, BaseException):  # CancelledError: the run is being cancelled
                raise out
            else:
                results.append(out)
        if stop is not None:  # tasks after an interrupt count as not run, like in the other modes
            first = next(i for i, o in enumerate(outs) if o is stop)
            results, errors = results[:first], {i: e for i, e in errors.items() if i < first}
        return results, errors, len(results), time.perf_counter() - t0, stop

    def submit(self, payload: Sequence[Any], alone: bool = False) -> Future:
        assert self._loop is not None
        fut = asyncio.run_coroutine_threadsafe(self._chunk(payload), self._loop)
        self._futures.add(fut)
        fut.add_done_callback(self._futures.discard)
        return fut

    def close(self, cancel: bool = False) -> None:
        loop = self._loop
        if loop is None:
            return
        if cancel:
            for fut in list(self._futures):
                fut.cancel()
        if self._thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join()
            loop.close()
        self._loop = self._thread = None


class DaskBackend(_PickledBackend):
    """Chunks submitted to a ``dask.distributed`` cluster.

    Uses the given client, or a scheduler address, or starts a ``LocalCluster`` of
    ``workers`` single-threaded processes whose dashboard binds to localhost
    (closed again afterwards)."""

    name = "dask"
    target = 0.05
    max_chunk = 4096

    def __init__(self, func: Callable, workers: int, client: Any = None, address: str | None = None) -> None:
        super().__init__(workers)
        self._func = func
        self._client = client
        self._address = address
        self._owned: list[Any] = []
        self._futures: set[Any] = set()

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
                    dashboard_address="127.0.0.1:0",
                )
                self._client = Client(cluster)
                self._owned = [self._client, cluster]
        self.workers = max(1, sum(self._client.nthreads().values()))

    def submit(self, payload: Sequence[Any], alone: bool = False) -> Future:
        fut: Future = Future()
        blob = pickle.dumps(payload, pickle.HIGHEST_PROTOCOL)
        dfut = self._client.submit(_call_chunk_in_process, self._func, blob, pure=False)
        self._futures.add(dfut)

        def relay(df: Any) -> None:
            self._futures.discard(df)
            try:
                fut.set_result(df.result())
            except BaseException as exc:  # noqa: BLE001 - the chunk's failure is relayed as is
                fut.set_exception(exc)

        dfut.add_done_callback(relay)
        return fut

    def is_lost(self, exc: BaseException) -> bool:
        return type(exc).__name__ in ("KilledWorker", "CommClosedError")

    def close(self, cancel: bool = False) -> None:
        if cancel:
            for df in list(self._futures):
                df.cancel()
        for obj in self._owned:
            obj.close()
        if self._owned:
            self._client = None
        self._owned = []
