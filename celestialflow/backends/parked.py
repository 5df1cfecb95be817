"""Worker threads kept for a moment between runs, so a run does not start its threads anew.

``Thread.start`` blocks its caller until the new thread runs: 0.1 ms on an idle
machine, but a median of 3-4 ms (up to 22 ms) inside a 3-stage chain of 150
threads contending for the GIL, measured; and a thread-mode worker starts the
next worker with a chunk in hand, so every start delayed a chunk. A worker whose
stage ended parks here instead of exiting, and :func:`spawn` hands the next job
to a parked thread by releasing one lock, without waiting for it. Runs that
follow each other (a benchmark, a batch, a loop over files) start no threads;
the first run of a process starts them as before.

A parked thread exits after :data:`IDLE` seconds unused, so an idle process keeps
none. Each job runs in a fresh ``contextvars.Context`` under its own thread name,
as in a new thread; thread-local data (``threading.local``) of earlier jobs stays,
as in the threads of a ``ThreadPoolExecutor``. A forked child forgets the parked
threads (they do not exist there).
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable

#: seconds a parked thread waits for its next job before it exits
IDLE = 1.0


class Running:
    """A job handed to a thread: :meth:`join` waits for its end (the thread itself lives on)."""

    __slots__ = ("_done",)

    def __init__(self) -> None:
        self._done = threading.Lock()
        self._done.acquire()

    def is_alive(self) -> bool:
        """Whether the job is still running."""
        return self._done.locked()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the job's end (at most ``timeout`` seconds); True if it ended."""
        if self._done.acquire(timeout=-1 if timeout is None else timeout):
            self._done.release()
            return True
        return False


class _Slot:
    """One thread: the lock it parks on, and the job, its handle and its name handed to it."""

    __slots__ = ("go", "job", "running", "name")

    def __init__(self, job: Callable[[], None], running: Running, name: str) -> None:
        self.go = threading.Lock()
        self.go.acquire()
        self.job: Callable[[], None] | None = job
        self.running = running
        self.name = name


_lock = threading.Lock()
_parked: list[_Slot] = []  # last parked first: its stack and caches are the warmest


def spawn(job: Callable[[], None], name: str) -> Running:
    """Run ``job`` in a parked daemon thread named ``name``, or in a new one if none is parked."""
    running = Running()
    with _lock:
        slot = _parked.pop() if _parked else None
    if slot is None:
        threading.Thread(target=_serve, args=(_Slot(job, running, name),), name=name, daemon=True).start()
        return running
    slot.job, slot.running, slot.name = job, running, name
    slot.go.release()
    return running


def parked() -> int:
    """Threads parked now (for tests and status)."""
    return len(_parked)


def _serve(slot: _Slot) -> None:
    me = threading.current_thread()
    while True:
        job, slot.job = slot.job, None
        me.name = slot.name
        try:
            contextvars.Context().run(job)  # type: ignore[arg-type]
        finally:
            job = None  # nothing the job refers to (a run's results) stays alive while parked
            slot.running._done.release()
        with _lock:
            _parked.append(slot)
        if slot.go.acquire(timeout=IDLE):
            continue
        with _lock:
            if slot in _parked:  # nobody took it: exit
                _parked.remove(slot)
                return
        slot.go.acquire()  # taken while its wait ran out: the job is on its way


def _forget() -> None:
    global _lock
    _lock = threading.Lock()
    _parked.clear()


os.register_at_fork(after_in_child=_forget)
