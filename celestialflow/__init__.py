"""celestialflow: a graph workflow engine.

A :class:`TaskManager` runs one function over a stream of tasks (serial, thread,
process, async or Dask execution) with retries, dedup, result caches, progress
and logging; TaskManagers are the stages of a :class:`TaskGraph` that streams
each stage's results to its successors while all stages run.

Where things are: ``manager.py`` (a stage's configuration) and ``runstate.py``
(one run of it), ``runner.py`` (the one scheduling loop), ``hooks.py``,
``graph.py`` (topology) and ``graphrun.py`` (one run of a graph, its status
snapshot), ``events.py`` (what an observer subscribes to), ``backends/`` (one
module per execution mode, plus the chunk loops, the wire format, the
self-healing process pool and the priority gate), ``errors.py`` (every engine
error).
"""

from .errors import (
    CelestialFlowError,
    ConfigurationError,
    GraphError,
    GraphvizNotFoundError,
    NotPicklableError,
    StageNotFoundError,
    UnknownSuccessorError,
    WorkerLostError,
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
    "WorkerLostError",
    "failed_tasks",
    "failures_by_stage",
    "load_failures",
]
__version__ = "0.1.0"
