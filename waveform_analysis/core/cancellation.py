"""A thread-safe cancellation flag shared between a caller and running work."""

from __future__ import annotations

import threading
from collections.abc import Callable

from loguru import logger

from ..errors import CancelledError

__all__ = ["CancellationToken", "CancelledError"]


class CancellationToken:
    """Set once with :meth:`cancel`; workers poll :attr:`cancelled` or call :meth:`raise_if_cancelled`.

    Callbacks registered with :meth:`on_cancel` run once, in the thread that
    cancels (immediately if the token is already cancelled).
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], object]] = []
        self.reason: str | None = None

    @property
    def cancelled(self) -> bool:
        """Whether ``cancel()`` has been called (and not ``reset()`` since)."""
        return self._event.is_set()

    def is_cancelled(self) -> bool:
        """The same as the ``cancelled`` property, as a method."""
        return self._event.is_set()

    def cancel(self, reason: str | None = None) -> None:
        """Ask every holder of the token to stop; the ``on_cancel`` callbacks run in this thread (a second call does nothing)."""
        with self._lock:
            if self._event.is_set():
                return
            self.reason = reason
            self._event.set()
            callbacks = list(self._callbacks)
        for cb in callbacks:
            _call(cb)

    def raise_if_cancelled(self) -> None:
        """Raise ``CancelledError`` (with the reason, if one was given) when cancelled."""
        if self._event.is_set():
            msg = "operation cancelled"
            if self.reason:
                msg += f": {self.reason}"
            raise CancelledError(msg)

    def reset(self) -> None:
        """Clear the flag so the token can be used again (callbacks stay registered)."""
        with self._lock:
            self._event.clear()
            self.reason = None

    def on_cancel(self, callback: Callable[[], object]) -> Callable[[], object]:
        """Call ``callback()`` on cancellation; returns it (usable as a decorator)."""
        with self._lock:
            self._callbacks.append(callback)
            already = self._event.is_set()
        if already:
            _call(callback)
        return callback

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or ``timeout`` seconds passed; whether it is cancelled."""
        return self._event.wait(timeout)

    def __bool__(self) -> bool:  # a token is always truthy; use .cancelled for the state
        return True

    def __repr__(self) -> str:
        return f"<CancellationToken cancelled={self.cancelled}>"


def _call(cb: Callable[[], object]) -> None:
    try:
        cb()
    except Exception as exc:  # a broken callback must not stop the others
        logger.warning(f"cancellation callback {cb!r} failed: {exc!r}")
