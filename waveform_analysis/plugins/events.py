"""``events``: peaks grouped in time across channels."""

from __future__ import annotations

import numpy as np

from ..core.plugin import Option, Plugin

__all__ = ["EventsPlugin"]


class EventsPlugin(Plugin):
    """A peak starts a new event when it comes more than ``event_window_ns`` after the previous one.

    ``n_channels`` counts distinct (board, channel) pairs.
    """

    provides = "events"
    depends_on = ("peaks",)
    version = "1.1.0"
    options = {
        "event_window_ns": Option(
            default=100, type=int, help="Largest gap between consecutive peaks of one event [ns]"
        ),
    }

    def compute(self, context, run_id: str, peaks: np.ndarray) -> np.ndarray:
        from ..processing.events import group_events

        return group_events(peaks, context.get_config(self, "event_window_ns"))
