"""Dask mode: chunks submitted to a ``dask.distributed`` cluster, and the one place a LocalCluster is made.

:func:`local_cluster` chooses how worker processes start. On Linux, unless the
user chose a start method in the Dask config, workers are forked from this
process when no other thread runs here, after ``before_fork()`` has loaded what
they should inherit (a spawned worker imports numpy, numba and every kernel
again, about 2 s per batch). Otherwise they come from a forkserver that imports
``preload`` once: forking a process while another thread may hold a lock can
leave the child deadlocked, and a worker that never starts hangs the run (seen
with a second LocalCluster alive in the same process).
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from ..errors import ConfigurationError
from .gate import PriorityGate
from .wire import PickledBackend, call_chunk_in_process

_START_METHOD_KEY = "distributed.worker.multiprocessing-method"

#: Dask settings of the clusters :func:`local_cluster` starts. By default every process of
#: a cluster wakes up every 20 ms to time its event loop and every worker samples its own
#: stack every 10 ms for the dashboard's profile: an idle 2-worker cluster took 8-9 % of a
#: core, with these settings 1 %, which matters when the workers need every core. And no
#: ``pre-spawn-environ``: Dask writes it into ``os.environ`` of this process, so a
#: forkserver started later ran with ``MALLOC_TRIM_THRESHOLD_``, which fixes glibc's mmap
#: threshold: each large array of its workers was a fresh mapping, 4 x the page faults
#: and ~0.3 s more CPU per worker and batch than a forked process worker.
QUIET_CONFIG: dict[str, Any] = {
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.nanny.pre-spawn-environ": {},
}


#: Seconds between a starting nanny's looks at whether its worker is up. Dask's default
#: (``WorkerProcess._init_msg_interval``, private, 50 ms) left the start of a 2-worker
#: cluster 5-35 ms (mean ~25 ms) after its last worker had registered.
NANNY_POLL = 0.005


@contextmanager
def _quick_nanny_poll() -> Iterator[None]:
    """Nannies started inside poll their worker every :data:`NANNY_POLL` s; Dask's value comes
    back afterwards (a cluster of the caller's, or a worker restarted later, keeps Dask's)."""
    try:
        from distributed.nanny import WorkerProcess
    except ImportError:  # pragma: no cover - depends on the Dask version
        yield
        return
    old = WorkerProcess.__dict__.get("_init_msg_interval")
    if not isinstance(old, (int, float)) or old <= NANNY_POLL:  # a Dask without it, or faster already
        yield
        return
    WorkerProcess._init_msg_interval = NANNY_POLL
    try:
        yield
    finally:
        WorkerProcess._init_msg_interval = old


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "execution_mode='dask' needs dask.distributed: pip install 'celestialflow[dask]'"
        ) from exc
    return distributed


def start_method() -> str:
    """``"fork"`` when only this thread runs in the process (forking is safe), else ``"forkserver"``."""
    return "fork" if threading.active_count() == 1 else "forkserver"


def local_cluster(
    workers: int,
    *,
    preload: Sequence[str] = (),
    before_fork: Callable[[], Any] | None = None,
    worker_setup: Sequence[str] = (),
) -> Any:
    """A ``LocalCluster`` of ``workers`` single-threaded processes, dashboard on localhost only.

    See the module docstring for the start method; ``preload``: modules a
    forkserver imports before it forks workers; ``before_fork``: called here
    before workers are forked from this process; ``worker_setup``: modules each
    worker imports as it starts, before it takes work (Dask's worker preload: a
    ``dask_setup(worker)`` in one is called), so no round trip is spent on it
    later. The cluster runs with :data:`QUIET_CONFIG`."""
    distributed = _distributed()
    import dask

    kwargs: dict[str, Any] = dict(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
    )
    if worker_setup:
        kwargs["preload"] = list(worker_setup)
    if not sys.platform.startswith("linux") or dask.config.get(_START_METHOD_KEY, "spawn") != "spawn":
        with dask.config.set(QUIET_CONFIG), _quick_nanny_poll():
            return distributed.LocalCluster(**kwargs)
    method = start_method()
    if method == "fork" and before_fork is not None:
        before_fork()
    with dask.config.set({**QUIET_CONFIG, _START_METHOD_KEY: method}), _quick_nanny_poll():
        if method == "forkserver":
            from distributed.utils import get_mp_context

            # Dask sets its own preload list on its first call: ours replaces it
            get_mp_context().set_forkserver_preload(["distributed", *preload])
        return distributed.LocalCluster(**kwargs)


class DaskBackend(PickledBackend):
    """Chunks submitted to a ``dask.distributed`` cluster.

    Uses the given client (or a :class:`PriorityGate` in front of one, shared by
    the stages of a batch), or a scheduler address, or starts a
    :func:`local_cluster` of ``workers`` (closed again afterwards)."""

    name = "dask"
    target = 0.05
    max_chunk = 4096

    def __init__(
        self, func: Callable, workers: int, client: Any = None, address: str | None = None, priority: int = 0
    ) -> None:
        super().__init__(workers)
        self._func = func
        self._client = client
        self._address = address
        self._owned: list[Any] = []
        self._futures: set[Any] = set()
        self.priority = priority

    def open(self) -> None:
        if isinstance(self._client, PriorityGate):
            self.workers = self._client.capacity
            return
        distributed = _distributed()
        if self._client is None:
            if self._address:
                self._client = distributed.Client(self._address)
                self._owned = [self._client]
            else:
                cluster = local_cluster(min(self.workers, os.cpu_count() or 1))
                self._client = distributed.Client(cluster)
                self._owned = [self._client, cluster]
        self.workers = max(1, sum(self._client.nthreads().values()))

    def submit(self, payload: Sequence[Any], alone: bool = False) -> Future:
        fut: Future = Future()
        blob = pickle.dumps(payload, pickle.HIGHEST_PROTOCOL)
        client = self._client
        if isinstance(client, PriorityGate):
            dfut = client.submit(call_chunk_in_process, self._func, blob, pure=False, priority=self.priority)
        else:
            dfut = client.submit(call_chunk_in_process, self._func, blob, pure=False)
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
