"""A watcher's live page: the state of every run, its spectra and its trigger rates.

The celestialflow dashboard server shows extra read-only panels a caller registers
(name -> a callable returning JSON-ready data); this module makes the watcher's three,
``runs``, ``spectra`` and ``rates``, so the engine never imports anything of physics.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .state import FAILED

__all__ = ["open_watch_dashboard", "watch_panels"]


def watch_panels(watcher: Any, field: str = "area", bins: int = 100) -> dict[str, Callable[[], Any]]:
    """The panels of ``watcher``: ``runs`` (a table of states), ``spectra`` (one histogram of
    ``field`` per run, a line per ``"board:channel"``) and ``rates`` (triggers per second)."""
    memo: dict[str, tuple[tuple[Any, ...], dict[str, Any] | None]] = {}
    lock = threading.Lock()

    def runs() -> dict[str, Any]:
        rows = [
            [run_id, s["state"], s["reason"], len(s["segments"]), s["records"], s["results"]]
            for run_id, s in watcher.status().items()
        ]  # fmt: skip
        columns = ["run", "state", "reason", "segments", "records", watcher.target]
        return {"kind": "table", "title": f"runs of {watcher.root}", "columns": columns, "rows": rows}

    def spectrum(run_id: str, s: dict[str, Any]) -> dict[str, Any] | None:
        """The run's histograms, computed again only when its processed data changed."""
        version = (s["state"], s["records"], s["results"], tuple(s["segments"]))
        with lock:
            old = memo.get(run_id)
            if old is not None and old[0] == version:
                return old[1]
            try:
                chart: dict[str, Any] | None = {"title": run_id, **watcher.spectra(run_id, field=field, bins=bins)}
            except (KeyError, RuntimeError):  # nothing with that field yet, or the watcher moved on mid-read
                return old[1] if old is not None else None
            if not chart["counts"]:
                chart = None
            memo[run_id] = (version, chart)
            return chart

    def spectra() -> dict[str, Any]:
        charts = []
        for run_id, s in watcher.status().items():
            if s["state"] != FAILED and s["results"]:
                chart = spectrum(run_id, s)
                if chart is not None:
                    charts.append(chart)
        return {"kind": "histograms", "title": f"spectra of {watcher.target}.{field}", "charts": charts}

    def rates() -> dict[str, Any]:
        rows = [
            [run_id, channel, hz, s["state"]]
            for run_id, s in watcher.status().items()
            for channel, hz in s["rate_hz"].items()
        ]  # fmt: skip
        columns = ["run", "board:channel", "triggers per second", "state"]
        return {"kind": "table", "title": "trigger rates", "columns": columns, "rows": rows}

    return {"runs": runs, "spectra": spectra, "rates": rates}


def open_watch_dashboard(watcher: Any, address: bool | int | str = True, *, quiet: bool = False) -> Any:
    """Serve ``watcher``'s panels on the celestialflow dashboard (127.0.0.1 unless ``address``
    says otherwise); returns the server (``.url``, ``.close()``)."""
    from celestialflow.dashboard import serve_panels

    return serve_panels(f"watch {watcher.root.name}", watch_panels(watcher), address, quiet=quiet)
