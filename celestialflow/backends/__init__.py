"""Execution back-ends: the only thing that differs between execution modes.

A back-end runs *chunks* of work and hands back a future per chunk; the single
scheduling loop in :mod:`celestialflow.runner` does everything else (dedup,
retries, caches, forwarding, recovery from lost workers). Like dask's local
scheduler, each mode is a short module that supplies ``submit``:

* ``serial.py``, ``thread.py``, ``process.py`` (also a stage in its own
  process), ``coroutine.py`` (async), ``dask.py`` (and :func:`local_cluster`);
* ``base.py``: the :class:`Backend` interface (``max_inflight``, chunk sizing);
* ``chunk.py``: the chunk loops and their :data:`Outcome`;
* ``wire.py``: what crosses a process boundary (pickled chunks, outcomes, RemoteError);
* ``pool.py``: :class:`ProcessPool`, rebuilt when a worker dies;
* ``gate.py``: :class:`PriorityGate`, workers shared by stages, deeper stages first,
  a suspect chunk run alone.

Two kinds of chunk exist. In the *fused* form (serial mode, and a stage that runs
in its own process) the worker gets raw tasks and runs ``get_args -> func ->
process_result`` itself. In the *call* form (thread, process, async, dask) the
thread that accounts for the chunk runs the hooks, one at a time, and the worker
only calls ``func(*args)``; so user hooks never run concurrently and never need to
be picklable. Thread workers that run the loop themselves use the fused form when
the stage has no ``get_args`` or ``process_result`` of its own.
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any

from ..tasks import check_picklable
from .base import Backend
from .chunk import EXECUTION_MODES, INTERRUPTS, Outcome, call_chunk, run_fused
from .coroutine import AsyncBackend
from .dask import DaskBackend, local_cluster
from .gate import GateFuture, PriorityGate, workers_kind
from .pool import PoolFuture, ProcessPool
from .process import ProcessBackend, StageProcessBackend
from .serial import SerialBackend
from .thread import ThreadBackend
from .wire import RemoteError, encode_outcome, remote_error_for

if TYPE_CHECKING:
    from ..manager import TaskManager

#: The back-end class of each ``execution_mode``.
BACKENDS: dict[str, type[Backend]] = {
    "serial": SerialBackend,
    "thread": ThreadBackend,
    "process": ProcessBackend,
    "async": AsyncBackend,
    "dask": DaskBackend,
}

__all__ = [
    "BACKENDS",
    "EXECUTION_MODES",
    "INTERRUPTS",
    "AsyncBackend",
    "Backend",
    "DaskBackend",
    "GateFuture",
    "Outcome",
    "PoolFuture",
    "PriorityGate",
    "ProcessBackend",
    "ProcessPool",
    "RemoteError",
    "SerialBackend",
    "StageProcessBackend",
    "ThreadBackend",
    "call_chunk",
    "encode_outcome",
    "local_cluster",
    "make_backend",
    "remote_error_for",
    "run_fused",
    "shared_mismatch",
    "workers_kind",
]


def make_backend(stage: TaskManager, *, stage_mode: str = "thread", shared: Any = None, priority: int = 0) -> Backend:
    """The back-end for one run of ``stage``.

    ``stage_mode="process"``: the stage runs serially in a process of its own.
    ``shared``: workers a graph shares between its stages (a :class:`PriorityGate`,
    see ``TaskGraph(shared_workers=...)``), used when the stage has no ``pool`` (or
    Dask client) of its own;
    ``priority``: the stage's depth in its graph, its place in a shared gate's queue."""
    if stage_mode == "process":
        try:
            blob = pickle.dumps(stage)
        except Exception:
            check_picklable(stage, f"stage {stage.name!r} runs in its own process but it")  # says why
            raise
        return StageProcessBackend(blob, stage.mp_context)
    mode = "async" if stage.is_coroutine else stage.execution_mode
    if mode == "serial":
        return SerialBackend(stage.compose_call())
    if mode == "thread":
        return ThreadBackend(
            stage.func, stage.worker_limit, f"cf-{stage.name}"[:40], stage.pool or shared, priority,
            stage.parallel_call(),
        )
    if mode == "process":
        return ProcessBackend(stage.func, stage.worker_limit, stage.mp_context, stage.pool or shared, priority)
    if mode == "async":
        return AsyncBackend(stage.func, stage.worker_limit)
    client, address = stage.dask_client, stage.dask_address
    if isinstance(client, str):  # one name for both: a Client or a scheduler address
        client, address = None, client
    if client is None and address is None:
        client = shared
    return DaskBackend(stage.func, stage.worker_limit, client, address, priority)


def shared_mismatch(stage: TaskManager, stage_mode: str, shared: Any) -> str | None:
    """Why ``stage`` cannot run on a graph's ``shared`` workers (None: it can, or it does not
    use them: a serial or async stage, one in a process of its own, one with its own pool).

    A thread-mode chunk carries a threading.Event and must stay in this process; Dask
    takes ``pure=False``, which no other executor understands; so the kinds must match
    (an executor of unknown kind is trusted with thread and process stages, as ``pool=`` is)."""
    mode = "async" if stage.is_coroutine else stage.execution_mode
    if shared is None or stage_mode == "process" or mode not in ("thread", "process", "dask"):
        return None
    own = stage.pool if mode != "dask" else (stage.dask_client if stage.dask_client is not None else stage.dask_address)
    if own is not None:
        return None
    kind = workers_kind(shared)
    if kind == mode or (kind is None and mode != "dask"):
        return None
    return (
        f"stage {stage.name!r} (execution_mode={mode!r}) would run on the graph's shared_workers, "
        f"which are {kind or 'an executor of unknown kind'} workers; give the stage workers of its own "
        f"({'dask_client' if mode == 'dask' else 'pool'}=...) or share workers of its kind"
    )
