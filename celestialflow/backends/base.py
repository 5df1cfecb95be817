"""The back-end interface: how chunks are executed, and how many may be out at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from .chunk import Finished, Outcome


class Backend:
    """How chunks are executed. ``fused`` says which chunk form ``submit`` expects.

    The runner asks the back-end, never its name, how to schedule: ``max_inflight``
    chunks out at once, each aiming at ``target`` seconds of work."""

    name = "base"
    fused = False
    #: seconds of work a chunk aims at (chunks of trivial tasks grow up to ``max_chunk``);
    #: None: chunks just double per finished chunk up to ``max_chunk``
    target: float | None = 0.01
    max_chunk = 256
    first_chunk = 1
    #: seconds of work a free worker's share of the available input carries at least
    min_share = 0.0

    def __init__(self, workers: int) -> None:
        self.workers = max(1, int(workers))

    @property
    def max_inflight(self) -> int:
        """Chunks submitted and not finished at most: one more per worker than it runs, so a
        worker process (or a remote one) never waits for its next chunk."""
        return self.workers * 2

    def open(self) -> None:
        """Acquire resources (pools, loops); called once before the first submit."""

    def drive(self, loop: Callable[[], None]) -> None:
        """Run the runner's scheduling ``loop`` to its end: here once, in the calling thread.

        A back-end whose workers take their own work (:class:`ThreadBackend` with
        threads of its own) runs the same loop in each of its workers at once."""
        loop()

    def submit(self, payload: Sequence[Any], alone: bool = False) -> Future | Finished:
        """Run ``payload`` as one chunk; ``alone``: with nothing else in flight on the workers.

        A chunk run inside ``submit`` (serial, or a thread that took its own work)
        comes back :class:`Finished`, and the calling thread accounts for it at once."""
        raise NotImplementedError

    def outcome(self, fut: Future | Finished) -> tuple[Outcome, int]:
        """The finished chunk's outcome and the bytes it took to send back (0 in-process)."""
        return fut.result(), 0

    def is_lost(self, exc: BaseException) -> bool:
        """Whether a chunk failed because its worker died (its tasks may be run again)."""
        return False

    def recover(self, lost: Any) -> None:
        """Make the back-end usable again after a lost worker (rebuild a broken pool).

        ``lost`` is the lost chunk's future, or the exception its submit raised."""

    def close(self, cancel: bool = False) -> None:
        """Release resources; with ``cancel`` drop work that has not started."""
