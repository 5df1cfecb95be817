"""Loads the numeric kernels when imported; sets up the workers of a batch's own Dask cluster.

A forkserver imports it as a preload (it runs nothing but imports before it
forks), so forked workers inherit the kernels. The batch's own Dask cluster
names it as its workers' preload: each worker imports it as it starts (cheap
when it inherited the kernels) and Dask calls :func:`dask_setup`. Nothing else
imports it.
"""

from __future__ import annotations

from typing import Any

from .pools import load_kernels
from .signals import dask_worker_signals

load_kernels()


def dask_setup(worker: Any) -> None:
    """Dask's hook, in the worker's main thread as it starts: Ctrl-C is left to the batch
    process, SIGTERM takes its default action (:func:`.signals.dask_worker_signals`)."""
    dask_worker_signals()
