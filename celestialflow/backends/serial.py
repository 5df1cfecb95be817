"""Serial mode: each chunk runs at once in the calling thread (the fused form)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .base import Backend
from .chunk import Finished, run_fused


class SerialBackend(Backend):
    """Runs each chunk at once in the calling thread; ``call`` is the stage's whole per-task pipeline."""

    name = "serial"
    fused = True
    max_chunk = 2048
    first_chunk = 16

    def __init__(self, call: Callable[[Any], Any]) -> None:
        super().__init__(1)
        self._call = call

    @property
    def max_inflight(self) -> int:
        return 1

    def submit(self, payload: Sequence[Any], alone: bool = False) -> Finished:
        return Finished(run_fused(self._call, payload))
