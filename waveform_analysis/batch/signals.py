"""SIGTERM during a batch: stopped like Ctrl-C, then the process exits as SIGTERM asks.

Python's default for SIGTERM kills the process on the spot: worker processes are
orphaned and a cache write can be cut half way. While a batch runs in the main
thread, :func:`sigterm_as_interrupt` turns SIGTERM into :class:`BatchTerminated`
(a ``KeyboardInterrupt``), so the batch stops the way it does on Ctrl-C: nothing
new starts, the stages in flight finish, pools and clusters are closed. Then the
previous handler is put back and the signal acted on: with the default handler,
``SystemExit(143)`` (128 + SIGTERM, the status a shell reports for it), after
``finally`` blocks up the stack have run; with a handler of the caller's, that
handler is called. An ignored SIGTERM stays ignored; in other threads (where
Python cannot install handlers) nothing changes.

:func:`worker_signals` and :func:`dask_worker_signals` set up the batch's own
worker processes: Ctrl-C is left to the batch process, SIGTERM takes its default
action. (:mod:`celestialflow.termination` is another idea: when a graph's stage
may finish.)
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["BatchTerminated", "dask_worker_signals", "sigterm_as_interrupt", "worker_signals"]


class BatchTerminated(KeyboardInterrupt):
    """SIGTERM arrived while a batch ran; it stops the batch as Ctrl-C does."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise BatchTerminated(f"signal {signum} (SIGTERM) during a batch")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM raises :class:`BatchTerminated`; afterwards it is acted on."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_IGN or previous is None:  # ignored on purpose, or set outside Python
        yield
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    except BatchTerminated:
        signal.signal(signal.SIGTERM, previous)
        if callable(previous):
            previous(signal.SIGTERM, None)
            raise  # the caller's handler returned: the batch still stopped early
        raise SystemExit(128 + signal.SIGTERM) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def worker_signals() -> None:
    """In a pool worker: ignore SIGINT, take SIGTERM's default action.

    Ctrl-C in a terminal signals the whole process group; the batch process
    then lets the runs in flight finish and closes the pool itself. Forked
    workers would otherwise inherit the batch's SIGTERM handler too."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def dask_worker_signals() -> bool:
    """In a Dask worker of the batch's own cluster: :func:`worker_signals`.

    Ctrl-C in a terminal signals the whole process group, Dask's worker
    processes included; a worker that died of it lost the result it held,
    which the batch then waited for. And a worker forked from the batch
    process inherits its SIGTERM handler: SIGTERM to the group then raised the
    batch's own exception inside the worker's event loop, which left the
    worker neither working nor dead and the batch waiting for it for ever.
    Runs in the worker's main thread, as the worker starts (the cluster's
    worker preload, :mod:`.preload`)."""
    try:
        worker_signals()
    except ValueError:  # not the main thread: keep the default
        return False
    return True
