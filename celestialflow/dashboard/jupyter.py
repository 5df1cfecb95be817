"""A TaskGraph's live view in a Jupyter notebook: drawing and counters updated in place.

``graph.live()`` displays the graph (the dashboard's SVG drawing, coloured by
state) above a table of per-stage counters, and a background thread updates that
one output (``display_id``) every ``interval`` seconds while the graph runs, so
it can be called in the cell before ``start_graph`` or in the same cell. No
JavaScript: the notebook shows plain HTML, trusted or not.
"""

from __future__ import annotations

import threading
from html import escape
from typing import TYPE_CHECKING

from ..observe import GraphObserver
from .drawing import COLOURS, layout, svg

if TYPE_CHECKING:
    from ..graph import TaskGraph

COLUMNS = ("received", "succeeded", "failed", "retried", "duplicated", "in_flight", "queued")


NUM = "text-align:right;padding:2px 10px"
TEXT = "text-align:left;padding:2px 10px"


def _state(state: str) -> str:
    """A stage or run state as coloured text (the drawing's colours)."""
    ink = COLOURS.get(state, COLOURS["idle"])[1]
    text = "finished with failures" if state == "failed" else state
    return f"<span style='color:{ink};font-weight:600'>{escape(text)}</span>"


def _seconds(s: float | None) -> str:
    return "–" if s is None else f"{s:.1f} s"


class LiveDisplay:
    """The live display of ``graph`` (see the module docstring); ``stop()`` ends the updates."""

    def __init__(self, graph: TaskGraph, interval: float = 1.0) -> None:
        try:
            from IPython.display import HTML, display
        except ImportError as exc:  # pragma: no cover - IPython comes with every notebook
            raise ImportError("graph.live() needs IPython (it runs in Jupyter); use the dashboard elsewhere") from exc
        self.graph = graph
        self.interval = interval
        self.observer = GraphObserver(graph, interval=min(interval, 0.5))
        self.layout = layout(graph.to_networkx())
        self._html = HTML
        self._stop = threading.Event()
        self.handle = display(HTML(self.html()), display_id=True)
        self.thread = threading.Thread(target=self._loop, name="cf-live", daemon=True)
        self.thread.start()

    def html(self) -> str:
        """The current view as an HTML fragment (drawing, totals, per-stage table)."""
        snap = self.observer.snapshot()
        t = snap["totals"]
        head = (
            f"<b>{escape(snap['graph'])}</b> · {_state(snap['state'])} · elapsed {_seconds(snap['elapsed'])}"
            f" · ETA {_seconds(snap['eta']) if snap['state'] == 'running' else '–'}"
            f" · ✓ {t['succeeded']:,} · ✗ {t['failed']:,} · queued {t['queued']:,}"
        )
        cells = "".join(f"<th style='{NUM}'>{c.replace('_', ' ')}</th>" for c in COLUMNS)
        rows = []
        for name, s in snap["stages"].items():
            values = "".join(f"<td style='{NUM}'>{int(s.get(c, 0)):,}</td>" for c in COLUMNS)
            rows.append(
                f"<tr><td style='{TEXT}'>{escape(name)}</td><td style='{TEXT}'>{_state(s['state'])}</td>{values}"
                f"<td style='{NUM}'>{s['throughput']:,.1f}</td></tr>"
            )
        table = (
            f"<table style='border-collapse:collapse'><thead><tr><th style='{TEXT}'>stage</th>"
            f"<th style='{TEXT}'>state</th>{cells}<th style='{NUM}'>per s</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
        return f"<div class='cf-live'><div>{head}</div>{svg(self.layout, snap['stages'])}{table}</div>"

    def _loop(self) -> None:
        seen_run = self.observer.run
        while not self._stop.wait(self.interval):
            running = self.observer.state == "running"
            if running or self.observer.run != seen_run:
                self.update()
                if not running:
                    seen_run = self.observer.run  # the final state was drawn

    def update(self) -> None:
        """Redraw now."""
        self.handle.update(self._html(self.html()))

    def stop(self) -> None:
        """Stop updating (the last drawing stays) and detach from the graph."""
        self._stop.set()
        self.observer.close()

    def _repr_html_(self) -> str:
        return self.html()
