"""Re-exports of :mod:`celestialflow.backends` and the engine errors, for code written against this module.

The back-ends live in :mod:`celestialflow.backends` (one module per mode);
``WorkerLostError`` is exported by :mod:`celestialflow` itself.
"""

from .backends import (
    BACKENDS,
    EXECUTION_MODES,
    INTERRUPTS,
    AsyncBackend,
    Backend,
    DaskBackend,
    Outcome,
    PriorityGate,
    ProcessBackend,
    ProcessPool,
    RemoteError,
    SerialBackend,
    StageProcessBackend,
    ThreadBackend,
    call_chunk,
    encode_outcome,
    local_cluster,
    remote_error_for,
    run_fused,
)
from .errors import PoolClosedError, ResultNotPicklableError, WorkerLostError

__all__ = [
    "BACKENDS",
    "EXECUTION_MODES",
    "INTERRUPTS",
    "AsyncBackend",
    "Backend",
    "DaskBackend",
    "Outcome",
    "PoolClosedError",
    "PriorityGate",
    "ProcessBackend",
    "ProcessPool",
    "RemoteError",
    "ResultNotPicklableError",
    "SerialBackend",
    "StageProcessBackend",
    "ThreadBackend",
    "WorkerLostError",
    "call_chunk",
    "encode_outcome",
    "local_cluster",
    "remote_error_for",
    "run_fused",
]
