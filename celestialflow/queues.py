"""Where a running stage takes its input from: a task iterable, or a bounded mailbox.

Both share one ``threading.Condition`` with the runner, so the runner sleeps on a
single condition and wakes for whatever comes first: new input, a finished chunk,
end of input, or a stop request. Its ``lock`` is also the lock of the runner's
state (taken directly where nothing waits: a ``with`` on the condition costs two
Python calls more, per chunk).

The mailbox bounds the number of *items* queued (not the number of batches), so
a fast upstream blocks in ``put`` until the stage catches up (back-pressure).
Items sent from inside the same cycle bypass the bound: a loop whose members all
block on each other's full mailboxes would otherwise deadlock.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any


class IterSource:
    """Input from an iterable given to ``TaskManager.start``."""

    def __init__(self, tasks: Iterable[Any]) -> None:
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        try:
            self.total: int | None = len(tasks)  # type: ignore[arg-type]
        except TypeError:
            self.total = None
        self._it = iter(tasks)
        self._taken = 0
        self.exhausted = False

    def take(self, n: int) -> list[Any]:
        if self.exhausted:
            return []
        batch = list(itertools.islice(self._it, n))
        self._taken += len(batch)
        if len(batch) < n:
            self.exhausted = True
        return batch

    def available(self) -> int | None:
        """Tasks left when the input has a length; None for an iterator (unknown)."""
        if self.exhausted:
            return 0
        return self.total - self._taken if self.total is not None else None

    def has_input(self) -> bool:
        return not self.exhausted


class Mailbox:
    """The one input of a stage in a graph: batches from upstreams, bounded by item count."""

    def __init__(self, capacity: int | None) -> None:
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self._not_full = threading.Condition(self.lock)
        self._batches: deque[list[Any]] = deque()
        self._head = 0  # items of the first batch already taken
        self._blocked = 0  # puts waiting for room
        self.size = 0
        self.received = 0  # items ever accepted (a status counter)
        self.capacity = capacity
        self.ended = False  # no more input will arrive
        self.aborted = False

    def put(self, items: list[Any], bounded: bool = True) -> bool:
        """Queue ``items``; blocks while full unless ``bounded`` is False.

        Returns False when the mailbox was aborted and the items were not taken."""
        if not items:
            return True
        with self.lock:
            if bounded and self.capacity is not None:
                while self.size >= self.capacity and not self.aborted:
                    self._blocked += 1
                    try:
                        self._not_full.wait()
                    finally:
                        self._blocked -= 1
            if self.aborted:
                return False
            self._batches.append(items)
            self.size += len(items)
            self.received += len(items)
            # one waiter per item at most: a stage's workers all wait here, and waking each of
            # them for one item would have all but one find nothing
            self.cond.notify(len(items))
            return True

    def end(self) -> None:
        """No more input: the stage drains what is queued and finishes."""
        with self.lock:
            self.ended = True
            self.cond.notify_all()

    def abort(self) -> None:
        """Unblock everyone; nothing more is accepted."""
        with self.lock:
            self.aborted = True
            self.ended = True
            self.cond.notify_all()
            self._not_full.notify_all()

    def take(self, n: int) -> list[Any]:
        with self.lock:
            return self._take_locked(n)

    def _take_locked(self, n: int) -> list[Any]:
        if not self.size:
            return []
        out: list[Any] = []
        while self._batches and len(out) < n:
            first = self._batches[0]
            want = n - len(out)
            chunk = first[self._head : self._head + want]
            out.extend(chunk)
            self._head += len(chunk)
            if self._head >= len(first):
                self._batches.popleft()
                self._head = 0
        self.size -= len(out)
        if self._blocked:
            self._not_full.notify_all()
        return out

    def available(self) -> int:
        return self.size

    def has_input(self) -> bool:
        return self.size > 0

    @property
    def exhausted(self) -> bool:
        return self.ended and self.size == 0

    def drain(self) -> list[Any]:
        with self.lock:
            return self._take_locked(self.size)
