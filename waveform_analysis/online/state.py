"""The state of every run a watcher has seen: what a dashboard or a terminal shows."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

WAITING, PROCESSING, DONE, FAILED = "waiting", "processing", "done", "failed"


@dataclass
class RunStatus:
    """One run: its state (waiting, processing, done, failed), why, and what is in hand.

    ``segments`` lists the segments whose entries exist (in segments mode), ``computed``
    and ``from_cache`` count the units (segments or whole runs) this watcher computed and
    found already cached; ``records``, ``results`` and ``rate_hz`` (triggers per second per
    ``"board:channel"``) describe the run's live result.
    """

    run_id: str
    state: str = WAITING
    reason: str = ""
    complete: bool = False
    segments: list[int] = field(default_factory=list)
    computed: int = 0
    from_cache: int = 0
    records: int = 0
    results: int = 0
    rate_hz: dict[str, float] = field(default_factory=dict)
    updated: float = field(default_factory=time.time)


class StateTable:
    """Thread-safe ``{run_id: RunStatus}``; :meth:`snapshot` gives plain dicts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, RunStatus] = {}

    def get(self, run_id: str) -> RunStatus:
        with self._lock:
            status = self._runs.get(run_id)
            if status is None:
                status = self._runs[run_id] = RunStatus(run_id)
            return status

    def set(self, run_id: str, **changes: Any) -> RunStatus:
        with self._lock:
            status = self._runs.setdefault(run_id, RunStatus(run_id))
            for name, value in changes.items():
                setattr(status, name, value)
            status.updated = time.time()
            return status

    def runs(self) -> list[str]:
        with self._lock:
            return sorted(self._runs)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every run's status as a JSON-ready dict, by run id."""
        with self._lock:
            return {r: asdict(s) for r, s in sorted(self._runs.items())}
