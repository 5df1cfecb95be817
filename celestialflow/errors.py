"""Typed errors of celestialflow; each message names the stage, task or option at fault."""

from __future__ import annotations


class CelestialFlowError(Exception):
    """Base class of the errors the engine raises on purpose."""


class ConfigurationError(CelestialFlowError, ValueError):
    """An option given to a manager or graph is not valid."""


class NotPicklableError(CelestialFlowError, TypeError):
    """A function or task bound for a worker process cannot be pickled."""


class GraphError(CelestialFlowError, ValueError):
    """A graph is built wrongly: unknown or duplicate stage, bad structure."""


class StageNotFoundError(GraphError, KeyError):
    """A stage name or object is not part of the graph."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownSuccessorError(CelestialFlowError, KeyError):
    """A router sent a task to a stage that is not one of its successors."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""



class WorkerLostError(CelestialFlowError):
    """The worker process running a task died (killed, ``os._exit``, a crash in C code).

    Not retried by default; ``manager.add_retry_exceptions(WorkerLostError)`` retries it."""


class ResultNotPicklableError(CelestialFlowError, TypeError):
    """A task's result cannot be sent back from its worker process."""


class PoolClosedError(CelestialFlowError, RuntimeError):
    """Work was submitted to a pool (or gate) that is shutting down."""


class TaskEncodingError(CelestialFlowError, TypeError):
    """A task cannot be written to the failure file's type-tagged JSON (the message says why)."""


class GraphvizNotFoundError(CelestialFlowError, RuntimeError):
    """The Graphviz ``dot`` program is needed to render and is not installed."""
