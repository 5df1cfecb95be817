"""When a stage may finish: per strongly connected component, by counting.

Every stage belongs to one strongly connected component (SCC) of the graph: a
lone stage, or the stages of a cycle. Each SCC keeps two numbers:

* ``count``: items sent to any member and not yet settled (done, failed or
  dropped as duplicate). It rises *before* an item is queued and falls only after
  the item's results have been queued downstream, so it cannot reach zero while
  work is still queued or in flight anywhere in the component.
* ``pending``: sources outside the component that may still send items (upstream
  stages in other SCCs, plus one feeder per member given initial tasks).

When both are zero the component is quiescent and can never receive more work:
every member is told its input has ended. A chain finishes stage by stage this
way, and a loop finishes by itself once nothing circulates, with no outside signal.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from .queues import Mailbox


class Quiescence:
    """The counters of one SCC; ends its members' mailboxes when quiescent."""

    def __init__(self, members: Iterable[str], mailboxes: dict[str, Mailbox], pending: int) -> None:
        self.members = tuple(members)
        self._mailboxes = [mailboxes[m] for m in self.members]
        self.pending = pending
        self.count = 0
        self.entered = 0  # items sent in from outside the component
        self.circulated = 0  # items sent from one member to another
        self.warned = False
        self.ended = False
        self._lock = threading.Lock()

    def add(self, n: int, internal: bool = False) -> None:
        with self._lock:
            self.count += n
            if internal:
                self.circulated += n
            else:
                self.entered += n

    def settle(self, n: int) -> None:
        with self._lock:
            self.count -= n
            if self.count == 0 and self.pending == 0:
                self._end()

    def source_done(self) -> None:
        with self._lock:
            self.pending -= 1
            if self.count == 0 and self.pending == 0:
                self._end()

    def check(self) -> None:
        with self._lock:
            if self.count == 0 and self.pending == 0:
                self._end()

    def _end(self) -> None:
        if not self.ended:
            self.ended = True
            for mb in self._mailboxes:
                mb.end()
