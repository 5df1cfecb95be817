"""celestialflow: a graph workflow engine.

A :class:`TaskManager` runs one function over a stream of tasks (serial, thread,
process, async or Dask execution) with retries, dedup, result caches, progress
and logging; TaskManagers are the stages of a :class:`TaskGraph` that streams
each stage's results to its successors while all stages run.
"""

from .errors import (
    CelestialFlowError,
    ConfigurationError,
    GraphError,
    GraphInterrupted,
    NotPicklableError,
    StageNotFoundError,
    UnknownSuccessorError,
)
from .hooks import Hook, ProgressHook
from .manager import TaskManager

__all__ = [
    "CelestialFlowError",
    "ConfigurationError",
    "GraphError",
    "GraphInterrupted",
    "Hook",
    "NotPicklableError",
    "ProgressHook",
    "StageNotFoundError",
    "TaskManager",
    "UnknownSuccessorError",
]
__version__ = "0.1.0"
