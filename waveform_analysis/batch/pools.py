"""The workers a batch runs on: the engine's priority gate over threads, processes or Dask, warmed up.

Every stage of a batch shares these workers; :class:`celestialflow.backends.PriorityGate`
serves later stages first and asks the batch's ledger before queued work starts.
Worker processes get the numeric kernels loaded before the first run
(:func:`load_kernels`: the readers' and the processing's warm-ups): forked ones inherit
them from this process, a Dask forkserver imports :mod:`.preload`, and the
workers of a cluster of the caller's load them at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from loguru import logger

from celestialflow.backends import PriorityGate, ProcessPool, local_cluster

from ..daq.warmup import warm_up_readers
from ..errors import ConfigError
from ..processing.warmup import warm_up
from .signals import worker_signals

__all__ = ["load_kernels", "make_pool", "warm_up_dask", "warm_up_processes"]


def make_pool(
    executor_type: str, workers: int, reject: Callable[[int], BaseException | None], dask_client: Any = None
) -> tuple[PriorityGate, Callable[[], None]]:
    """The workers every stage shares, behind the engine's gate: later stages first, queued runs
    kept here (so a cancelled batch's never reach the workers), ``reject`` asked before each starts."""
    if executor_type in ("thread", "process"):
        inner: Any = (
            ThreadPoolExecutor(workers, thread_name_prefix="wa-worker")
            if executor_type == "thread"
            # rebuilt when a worker dies (the runs lost with it run again); workers leave
            # Ctrl-C to this process, which lets the runs in flight finish
            else ProcessPool(workers, initializer=worker_signals)
        )
        gate = PriorityGate(inner, workers, reject)
        return gate, lambda: gate.shutdown(wait=True, cancel_futures=True)
    try:
        from distributed import Client
    except ImportError as exc:
        raise ConfigError("executor_type='dask' needs dask.distributed: pip install 'celestialflow[dask]'") from exc
    if dask_client is not None and not isinstance(dask_client, str):
        gate = PriorityGate(dask_client, _dask_threads(dask_client, workers), reject, owns_inner=False)
        return gate, gate.shutdown  # the caller's cluster: nothing started, nothing closed
    if isinstance(dask_client, str):
        client = Client(dask_client)
        gate = PriorityGate(client, _dask_threads(client, workers), reject, owns_inner=False)

        def close_client() -> None:
            gate.shutdown()
            client.close()

        return gate, close_client
    cluster = local_cluster(
        workers,
        preload=["numpy", "numba", "waveform_analysis.batch.preload"],
        before_fork=load_kernels,
        worker_setup=["waveform_analysis.batch.preload"],  # kernels and signals, as each worker starts
    )
    client = Client(cluster)
    logger.info("Dask LocalCluster of {} workers; dashboard {}", workers, client.dashboard_link)
    gate = PriorityGate(client, workers, reject, owns_inner=False)

    def close() -> None:
        gate.shutdown()
        client.close()
        cluster.close()

    return gate, close


def _dask_threads(client: Any, default: int) -> int:
    """How many tasks the cluster of ``client`` runs at once (``default`` if it cannot say)."""
    try:
        return max(1, sum(client.nthreads().values()))
    except Exception:  # noqa: BLE001 - an odd client still runs the batch
        return default


def _noop() -> int:
    return os.getpid()


def load_kernels() -> float:
    """Load the kernels of the readers and of the processing into this process; seconds taken.

    A failure is logged, not raised: only a warm-up, the batch itself reports
    errors; the readers' and the processing's are tried apart, so one failing
    leaves the other done. Forked workers inherit what it loaded."""
    taken = 0.0
    for warm in (warm_up_readers, warm_up):
        try:
            taken += warm()
        except Exception as exc:  # noqa: BLE001
            logger.warning("kernel warm-up ({}) failed, the runs will load those kernels themselves: {!r}",
                           warm.__name__, exc)
    return taken


def warm_up_dask(client: Any, own_cluster: bool = False) -> None:
    """Load the numeric kernels on every Dask worker at once, not in the first run of each.

    The workers of a cluster the batch started itself did that as they started
    (:mod:`.preload`, which also makes them ignore SIGINT and take SIGTERM's
    default action): nothing to do. A cluster of the caller's keeps its own
    signal handling."""
    if own_cluster:
        return
    try:
        client.run(load_kernels)
    except Exception as exc:  # noqa: BLE001 - a worker that cannot warm up still runs the batch
        logger.debug("warming up the Dask workers failed: {}", exc)


def warm_up_processes(pool: Any) -> None:
    """Start the workers now, with the numeric kernels already loaded here so they inherit them."""
    load_kernels()
    pool.submit(_noop).result()
