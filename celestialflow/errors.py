"""Typed errors of celestialflow; each message names the stage, task or option at fault.

:func:`annotate` and :func:`traceback_text` are the one way an exception gets its
context (a note, facts such as the failing plugin) and its traceback kept as text,
which survives pickling to another process where the traceback object does not.
"""

from __future__ import annotations

import traceback
from typing import Any


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


def annotate(exc: BaseException, note: str | None = None, **facts: Any) -> BaseException:
    """Keep ``exc``'s traceback as text and add context to it; returns ``exc``.

    Call it in an ``except`` block. The traceback text is taken again at each call,
    as the exception travels outwards and its traceback grows (one that came from
    another process keeps that process's text). Facts (``exc.<name> = value``) and
    the note are the innermost call's: an outer frame never overwrites the place
    where the error started. Everything set pickles with the exception."""
    first = not hasattr(exc, "cf_traceback")
    exc.cf_traceback = getattr(exc, "remote_traceback", "") or _format(exc)  # type: ignore[attr-defined]
    for name, value in facts.items():
        if not hasattr(exc, name):
            setattr(exc, name, value)
    if first and note is not None:
        exc.add_note(note)
    return exc


def traceback_text(exc: BaseException, limit: int | None = None) -> str:
    """``exc``'s traceback as text: the one kept where it was raised (in a worker process,
    by :func:`annotate`) if any, else formatted now; the last ``limit`` characters. Never raises."""
    text = getattr(exc, "remote_traceback", "") or getattr(exc, "cf_traceback", "") or _format(exc)
    return text if limit is None else text[-limit:]


def _without_columns(te: traceback.TracebackException, seen: set[int] | None = None) -> None:
    """Drop the column positions of every frame of ``te`` and of the exceptions chained to it.

    Python 3.11+ places a frame's carets by parsing its source line with :mod:`ast`, and
    3.11's AST conversion keeps its recursion depth in state shared by all threads: numba
    parsing a kernel's source (it does while compiling) at the same moment makes one of
    the two fail with ``SystemError: AST constructor recursion depth mismatch``. Without
    columns no line is parsed, so formatting needs no lock shared with numba (a worker
    forked while another thread held such a lock inherited it held, and waited for ever
    when it formatted its first error)."""
    seen = set() if seen is None else seen
    if id(te) in seen:
        return
    seen.add(id(te))
    for frame in te.stack:
        frame.colno = frame.end_colno = None
    for other in (te.__cause__, te.__context__, *(getattr(te, "exceptions", None) or ())):
        if other is not None:
            _without_columns(other, seen)


def _format(exc: BaseException) -> str:
    try:
        te = traceback.TracebackException(type(exc), exc, exc.__traceback__, compact=True)
        _without_columns(te)
        return "".join(te.format())
    except Exception as err:  # noqa: BLE001 - formatting user exceptions can fail in odd ways
        return f"<traceback could not be formatted: {type(err).__name__}>"
