"""Events of a graph run for an observer (a live view, a log): stage started, finished, tasks failed.

Subscribe on the graph, before or during a run; events come from the stage
threads, in order per stage::

    >>> from celestialflow import TaskChain, TaskManager
    >>> chain = TaskChain([TaskManager(lambda x: 1 // x, log_to_file=False)], record_failures=False)
    >>> events = []
    >>> unsubscribe = chain.events.subscribe(events.append)
    >>> chain.start([1, 0, 2])
    >>> [type(e).__name__ for e in events]
    ['StageStarted', 'TasksFailed', 'StageFinished', 'GraphFinished']

Failures are delivered once per chunk (a :class:`TasksFailed` lists the chunk's
final failures), never once per task, and nothing is built when nobody
subscribed. A subscriber is called in the stage's thread: it must be quick (put
the event on a queue or a list, as above) and an exception it raises is logged and
dropped, never allowed to stop the stage.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loguru import logger

from .errors import traceback_text
from .hooks import Hook
from .logs import truncate

if TYPE_CHECKING:
    from .manager import TaskManager

MAX_TRACEBACK = 20_000  # characters of a failure's traceback kept in its event
TRACEBACKS = 100  # failures per stage run whose traceback is formatted (the rest carry none)


@dataclass(frozen=True, slots=True)
class StageStarted:
    """Stage ``stage`` of graph ``graph`` began its run."""

    graph: str
    stage: str
    time: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class TaskFailure:
    """One task's final failure: the task's ``repr`` (cut to the stage's ``max_info``), the error
    and its formatted traceback (the last ``MAX_TRACEBACK`` characters; only for the first
    ``TRACEBACKS`` failures of a stage's run, so a flood of failures costs no formatting)."""

    task: str
    error_type: str
    message: str
    traceback: str = ""


@dataclass(frozen=True, slots=True)
class TasksFailed:
    """Tasks of one chunk of ``stage`` failed for good (retries spent or not retryable)."""

    graph: str
    stage: str
    failures: tuple[TaskFailure, ...]
    time: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class StageFinished:
    """Stage ``stage`` ended; ``state`` as in :meth:`TaskGraph.status` (done or failed), with its counts."""

    graph: str
    stage: str
    state: str
    counts: dict[str, int]
    elapsed: float
    time: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class GraphFinished:
    """The whole run of ``graph`` ended (``error``: the crash it raises, if any)."""

    graph: str
    elapsed: float
    error: str | None = None
    time: float = field(default_factory=time.time)


Event = StageStarted | TasksFailed | StageFinished | GraphFinished


class EventChannel:
    """Subscribers of one graph's events; :meth:`publish` calls each of them."""

    def __init__(self) -> None:
        self._subscribers: tuple[Callable[[Event], Any], ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, callback: Callable[[Event], Any]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event from now on; returns the function that stops it."""
        with self._lock:
            self._subscribers = (*self._subscribers, callback)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not callback)

        return unsubscribe

    def __bool__(self) -> bool:
        return bool(self._subscribers)

    def publish(self, event: Event) -> None:
        for callback in self._subscribers:  # a tuple: safe against subscribe/unsubscribe meanwhile
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - an observer must not stop the run
                logger.opt(exception=True).warning("an event subscriber failed on {}", type(event).__name__)


class FailureEvents(Hook):
    """Collects one stage's final failures and publishes them once per chunk (on progress) and at the end."""

    def __init__(self, channel: EventChannel, graph: str, stage: str, max_info: int) -> None:
        self.channel, self.graph, self.stage, self.max_info = channel, graph, stage, max_info
        self._buffer: list[TaskFailure] = []
        self._tracebacks_left = TRACEBACKS

    def on_failure(self, manager: TaskManager, task: Any, exc: BaseException) -> None:
        try:
            message = str(exc)
        except Exception:  # noqa: BLE001 - a broken __str__ must not hide the failure
            message = f"<{type(exc).__name__} with unprintable message>"
        tb = ""
        if self._tracebacks_left > 0:
            self._tracebacks_left -= 1
            tb = traceback_text(exc, MAX_TRACEBACK)
        self._buffer.append(TaskFailure(truncate(task, self.max_info), type(exc).__name__, message, tb))

    def on_progress(self, manager: TaskManager, n: int) -> None:
        if self._buffer:
            self._flush()

    def on_end(self, manager: TaskManager) -> None:
        if self._buffer:
            self._flush()

    def _flush(self) -> None:
        failures, self._buffer = tuple(self._buffer), []
        self.channel.publish(TasksFailed(self.graph, self.stage, failures))
