"""What runs inside a batch worker (a pool thread or a pool process).

A :class:`WorkerSpec` says how a worker gets its own Context (the user's
``context_factory``, or a copy of the processor's Context) and which storage
strategy applies. Each worker builds that Context once and keeps it for the
batch (thread-local in threads, process-global in processes), so a Context is
never shared between two threads.

The stage functions are module-level so that process pools can pickle them; they
take and return run ids (the cache is the hand-over between stages), except the
last stage, which returns the data: a memory-mapped cache file travels as its
path, anything else as itself.

:func:`waveform_analysis.parallel.kernel_threads` caps the numeric kernels of
this process for the duration of a thread-mode batch.
"""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from celestialflow.errors import annotate

STRATEGIES = ("shared", "per_worker", "readonly")

_local = threading.local()

@dataclass
class WorkerSpec:
    """How a worker makes its Context; pickled into worker processes."""

    strategy: str
    factory: Callable[[], Any] | None = None
    context: Any = None  # a Context to copy (or to use as is, see ``use_directly``)
    use_directly: bool = False
    temp_root: str | None = None
    kernel_threads: int | None = 1  # cap set by each worker on its first run (None: leave it alone)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True)
class MappedResult:
    """A result that lives in a cache file: the receiving side maps the file itself."""

    path: str

    def load(self) -> np.ndarray:
        from ..core.storage import load_npy

        return load_npy(self.path)


def worker_context(spec: WorkerSpec) -> Any:
    """This worker's Context for the batch ``spec`` (built on first use)."""
    store = getattr(_local, "contexts", None)
    if store is None:
        store = _local.contexts = {}
    slot = (spec.id, os.getpid())  # a forked child never reuses its parent's entries
    ctx = store.get(slot)
    if ctx is not None:
        return ctx
    if spec.kernel_threads is not None:
        from ..parallel import limit_threads

        limit_threads(spec.kernel_threads)
    if spec.use_directly:
        ctx = spec.context
    else:
        base = spec.factory() if spec.factory is not None else spec.context.clone()
        if spec.strategy == "per_worker":
            os.makedirs(spec.temp_root or tempfile.gettempdir(), exist_ok=True)
            tmp = tempfile.mkdtemp(prefix="worker-", dir=spec.temp_root)
            ctx = base.clone(storage_dir=tmp)
        else:
            ctx = base
            if spec.strategy == "readonly":
                ctx.readonly = True
    store[slot] = ctx
    return ctx


def _deliver(data: Any) -> Any:
    filename = getattr(data, "filename", None)
    if isinstance(data, np.memmap) and filename and os.path.exists(filename):
        return MappedResult(str(filename))
    return data


def compute_stage(spec: WorkerSpec, data_name: str, final: bool, run_id: str) -> Any:
    """Make ``data_name`` of ``run_id`` available (in the cache); the last stage returns it."""
    ctx = worker_context(spec)
    try:
        data = ctx.get_data(run_id, data_name)
        out = _deliver(data) if final else run_id
    except Exception as exc:
        annotate(exc, wa_plugin=data_name)  # the traceback text travels back with it
        raise
    finally:
        ctx.release(run_id)  # the next stage maps the cached file again; memory stays flat
    return out


def call_user_func(spec: WorkerSpec, func: Callable[[Any, str], Any], run_id: str) -> Any:
    """``func(context, run_id)`` with this worker's Context."""
    ctx = worker_context(spec)
    try:
        return _deliver(func(ctx, run_id))
    except Exception as exc:
        annotate(exc, wa_plugin=getattr(func, "__name__", "func"))
        raise
    finally:
        ctx.release(run_id)
