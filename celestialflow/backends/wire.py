"""Crossing a process boundary: chunks leave pickled and their outcomes come back as bytes.

A worker pickles the outcome itself (:func:`encode_outcome`): what cannot be
pickled (a generator result, an exception that does not survive a round trip)
is replaced there, per task, by something that always unpickles, so one bad
task never breaks the pool. An exception that cannot travel becomes a
:class:`RemoteError`, a class made at run time and named like the original (as
dask's ``RemoteException``), keeping its qualified name and traceback text.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ..errors import ResultNotPicklableError, traceback_text
from .base import Backend
from .chunk import Outcome, call_chunk, run_fused


class RemoteError(Exception):
    """Stands in for an exception from a worker process that could not be sent back as is.

    Its class is a subclass named like the original (``type(err).__name__`` is the
    original's name), and it keeps the qualified type name and the traceback text."""

    type_name = "RemoteError"
    qualname = "RemoteError"
    remote_traceback = ""

    def __reduce__(self):  # rebuilt by name on the other side: always unpickles
        return _remote_error, (self.type_name, self.qualname, str(self), self.remote_traceback)


_REMOTE_CLASSES: dict[str, type[RemoteError]] = {}


def _remote_error(type_name: str, qualname: str, message: str, tb: str) -> RemoteError:
    cls = _REMOTE_CLASSES.get(type_name)
    if cls is None:
        cls = type(type_name if type_name.isidentifier() else "RemoteError", (RemoteError,), {})
        _REMOTE_CLASSES[type_name] = cls
    err = cls(message)
    err.type_name, err.qualname, err.remote_traceback = type_name, qualname, tb
    return err


def remote_error_for(exc: BaseException) -> RemoteError:
    """A :class:`RemoteError` carrying ``exc``'s type name, message and traceback."""
    t = type(exc)
    tb = traceback_text(exc, 8000)
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the failure
        message = f"<{t.__name__} with unprintable message>"
    return _remote_error(t.__name__, f"{t.__module__}.{t.__qualname__}", message, tb)


def _round_trips(obj: Any) -> bool:
    try:
        pickle.loads(pickle.dumps(obj, pickle.HIGHEST_PROTOCOL))
        return True
    except Exception:  # noqa: BLE001 - any failure means "does not round-trip"
        return False


def encode_outcome(outcome: Outcome) -> bytes:
    """Pickle ``outcome`` in the worker, replacing per task whatever would not survive."""
    results, errors, ran, elapsed, stop = outcome
    for i, exc in list(errors.items()):  # the failure path only: errors are rare
        if not _round_trips(exc):
            errors[i] = remote_error_for(exc)
    if stop is not None and not _round_trips(stop):
        stop = KeyboardInterrupt(str(stop)) if isinstance(stop, KeyboardInterrupt) else SystemExit(str(stop))
    try:
        return pickle.dumps((results, errors, ran, elapsed, stop), pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - find the results that cannot travel, fail only those
        pass
    for i, value in enumerate(results):
        if i in errors:
            continue
        try:
            pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001
            results[i] = None
            errors[i] = ResultNotPicklableError(
                f"the result ({type(value).__name__}) cannot be pickled back from the worker process: {exc}"
            )
    return pickle.dumps((results, errors, ran, elapsed, stop), pickle.HIGHEST_PROTOCOL)


def call_chunk_in_process(func: Callable, blob: bytes) -> bytes:
    """Worker side of the call form: arguments arrive pickled, the outcome leaves pickled."""
    return encode_outcome(call_chunk(func, pickle.loads(blob)))


# The manager a dedicated stage process serves (set once by the pool initializer).
_STAGE_CALL: Callable[[Any], Any] | None = None


def install_stage(manager_blob: bytes) -> None:
    global _STAGE_CALL
    manager = pickle.loads(manager_blob)
    _STAGE_CALL = manager.compose_call()


def run_fused_in_stage(blob: bytes) -> bytes:
    assert _STAGE_CALL is not None
    return encode_outcome(run_fused(_STAGE_CALL, pickle.loads(blob)))


class PickledBackend(Backend):
    """Shared by back-ends whose chunks travel pickled: bytes in, bytes out."""

    def is_lost(self, exc: BaseException) -> bool:
        return isinstance(exc, BrokenProcessPool)

    def outcome(self, fut: Future) -> tuple[Outcome, int]:
        blob = fut.result()
        if type(blob) is not bytes:  # a user's pool that returned the outcome itself
            return blob, 0
        return pickle.loads(blob), len(blob)
