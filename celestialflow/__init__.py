"""celestialflow: a graph workflow engine.

A :class:`TaskManager` runs one function over a stream of tasks (serial, thread,
process, async or Dask execution) with retries, dedup, result caches, progress
and logging; TaskManagers are the stages of a :class:`TaskGraph` that streams
each stage's results to its successors while all stages run.
"""

from .dot import GraphvizNotFoundError
from .errors import (
    CelestialFlowError,
    ConfigurationError,
    GraphError,
    NotPicklableError,
    StageNotFoundError,
    UnknownSuccessorError,
)
from .failures import failed_tasks, failures_by_stage, load_failures
from .graph import TaskGraph
from .hooks import Hook, ProgressHook
from .manager import TaskManager
from .stages import TaskRouter, TaskSplitter
from .structures import TaskChain, TaskComplete, TaskCross, TaskGrid, TaskLoop, TaskWheel

__all__ = [
    "CelestialFlowError",
    "ConfigurationError",
    "GraphError",
    "GraphvizNotFoundError",
    "Hook",
    "NotPicklableError",
    "ProgressHook",
    "StageNotFoundError",
    "TaskChain",
    "TaskComplete",
    "TaskCross",
    "TaskGraph",
    "TaskGrid",
    "TaskLoop",
    "TaskManager",
    "TaskRouter",
    "TaskSplitter",
    "TaskWheel",
    "UnknownSuccessorError",
    "failed_tasks",
    "failures_by_stage",
    "load_failures",
]
__version__ = "0.1.0"
