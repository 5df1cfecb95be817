"""``events``: peaks grouped in time across channels."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..core.plugin import Option, Plugin
from ..dtypes import EVENTS_DTYPE

__all__ = ["EventsPlugin"]


class EventsPlugin(Plugin):
    """A peak starts a new event when it comes more than ``event_window_ns`` after the previous one.

    ``n_channels`` counts distinct (board, channel) pairs. Fed a chunk of
    records at a time: an event that may still grow when the next chunk's
    peaks come (it ends within the window of the next chunk's first record)
    is held back and grouped again with them, so events across a chunk
    boundary are the same as in one piece. The records' times
    (``st_waveforms``) bound what a later chunk can hold.

    ``time_offset_ns`` moves each channel's peaks before grouping (event times include
    it, and ``first_peak`` is the earliest peak after it); ``min_channels`` and
    ``require`` keep only events with that many channels and with every listed one.
    """

    provides = "events"
    dtype = EVENTS_DTYPE
    depends_on = ("st_waveforms", "peaks")
    version = "1.3.0"
    chunked = True
    options = {
        "event_window_ns": Option(
            default=100, type=int, help="Largest gap between consecutive peaks of one event [ns]"
        ),
        "time_offset_ns": Option(
            default={}, type=(dict, float, int), per_channel=True,
            help="Offset added to each channel's peak times [ns] (cable delays): per channel in the"
            " channels table, or {'board:channel': ns}",
        ),
        "min_channels": Option(
            default=1, type=int, minimum=1, help="Fewest distinct (board, channel) pairs of an event kept"
        ),
        "require": Option(
            default=[], type=(list, tuple),
            help="Channels ('board:channel' or a channel of board 0) every kept event has a peak in",
        ),
    }

    def compute(self, context, run_id: str, peaks: np.ndarray) -> np.ndarray:
        from ..processing.events import group_events

        window = context.get_config(self, "event_window_ns")
        peaks = self._shifted(context, run_id, peaks)
        events = group_events(peaks, window)
        return events[self._kept(context, peaks, events)]

    def _shifted(self, context, run_id: str, peaks: np.ndarray) -> np.ndarray:
        from ..core.channels import channel_offsets
        from ..processing.events import shift_times

        return shift_times(peaks, channel_offsets(context, self, run_id, peaks))

    def _kept(self, context, peaks: np.ndarray, events: np.ndarray) -> np.ndarray:
        from ..processing.events import event_mask

        return event_mask(peaks, events, context.get_config(self, "min_channels"),
                          context.get_config(self, "require"))

    def compute_chunks(self, context, run_id: str, chunks) -> Iterator[np.ndarray]:
        from ..core.channels import offset_bound
        from ..processing.events import group_events

        window = context.get_config(self, "event_window_ns")
        # a later chunk's peaks, moved by the most negative offset, can come before its records
        early = -offset_bound(context.config, self)
        held = None  # peaks of the events still open, and their rows in the run's peaks
        held_rows = np.zeros(0, np.int64)
        for chunk in chunks:
            peaks = self._shifted(context, run_id, chunk.inputs["peaks"])
            rows = np.arange(len(peaks), dtype=np.int64) + chunk.offsets["peaks"]
            if held is not None:
                peaks = np.concatenate([held, peaks])
                rows = np.concatenate([held_rows, rows])
            events = group_events(peaks, window)
            n_final = len(events)
            if not chunk.last:
                # a later chunk's peaks come at or after next_time (None: unknown, so hold all)
                bound = chunk.next_time
                done = events["endtime"] + window < bound - early if bound is not None else np.zeros(n_final, bool)
                n_final = int(np.argmin(done)) if not done.all() else n_final
            out = events[:n_final]
            in_final = peaks["time"] < (events["time"][n_final] if n_final < len(events) else np.iinfo(np.int64).max)
            out = out[self._kept(context, peaks[in_final], out)]
            out["first_peak"] = rows[out["first_peak"]]
            yield out
            start = events["time"][n_final] if n_final < len(events) else np.iinfo(np.int64).max
            keep = peaks["time"] >= start
            held, held_rows = peaks[keep], rows[keep]
