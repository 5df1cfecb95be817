"""Grouping peaks into events by time."""

from __future__ import annotations

import numpy as np

from ..dtypes import EVENTS_DTYPE
from ..errors import ConfigError


def group_events(peaks: np.ndarray, window_ns: int) -> np.ndarray:
    """Group peaks into ``EVENTS_DTYPE`` rows.

    Peaks are taken in time order (a stable sort, so ``peaks`` need not be
    sorted); a peak starts a new event when it is more than ``window_ns`` after
    the previous peak. ``first_peak`` indexes ``peaks`` as passed in.
    ``n_channels`` counts distinct (board, channel) pairs, so CH0 of two
    boards are two channels (peaks without a ``board`` field are board 0).
    """
    if window_ns < 0:
        raise ConfigError(f"window_ns must be >= 0, got {window_ns}")
    n = len(peaks)
    if n == 0:
        return np.zeros(0, dtype=EVENTS_DTYPE)
    time = np.ascontiguousarray(peaks["time"], dtype=np.int64)
    board = peaks["board"] if "board" in peaks.dtype.names else np.zeros(n, np.int16)
    pair = (board.astype(np.int64) << 16) | (peaks["channel"].astype(np.int64) & 0xFFFF)
    _, channel = np.unique(pair, return_inverse=True)
    channel = np.ascontiguousarray(channel.reshape(-1), dtype=np.int64)
    order = np.argsort(time, kind="stable")
    o = [np.empty(n, t) for t in (np.int64, np.int64, np.int32, np.int32, np.float64, np.int64)]
    from ._events_kernels import group

    k = group(time, channel, np.asarray(peaks["area"], np.float64), order, int(window_ns),
              int(channel.max()), *o)
    out = np.empty(k, dtype=EVENTS_DTYPE)
    for name, arr in zip(("time", "endtime", "n_peaks", "n_channels", "area", "first_peak"), o,
                         strict=True):
        out[name] = arr[:k]
    return out


def shift_times(peaks: np.ndarray, offsets_ns: dict[str, float] | None) -> np.ndarray:
    """``peaks`` with each channel's ``time`` moved by its offset (``{"board:channel": ns}``,
    rounded to whole ns); ``peaks`` itself when there is nothing to shift."""
    from .coincidences import channel_key, parse_channel

    if not offsets_ns or len(peaks) == 0:
        return peaks
    out = np.array(peaks)
    key = channel_key(_boards(peaks), peaks["channel"])
    for name, offset in offsets_ns.items():
        out["time"][key == channel_key(*parse_channel(name, "time_offset_ns"))] += int(round(float(offset)))
    return out


def _boards(peaks: np.ndarray) -> np.ndarray:
    return peaks["board"] if "board" in peaks.dtype.names else np.zeros(len(peaks), np.int16)


def event_mask(
    peaks: np.ndarray, events: np.ndarray, min_channels: int = 1, require: list[str] | tuple[str, ...] = ()
) -> np.ndarray:
    """Which ``events`` (grouped from ``peaks`` by :func:`group_events`) have at least
    ``min_channels`` distinct channels and a peak in every channel of ``require``."""
    from .coincidences import channel_key, parse_channel

    keep = events["n_channels"] >= min_channels
    if not require or len(events) == 0:
        return keep
    order = np.argsort(peaks["time"], kind="stable")
    t = peaks["time"][order]
    # events are runs of consecutive peaks in time order: each peak's event by its start time
    eid = np.searchsorted(events["time"], t, side="right") - 1
    inside = (eid >= 0) & (t <= events["endtime"][np.clip(eid, 0, None)])
    key = channel_key(_boards(peaks), peaks["channel"])[order]
    for name in require:
        has = np.zeros(len(events), bool)
        hit = inside & (key == channel_key(*parse_channel(name, "require")))
        has[eid[hit]] = True
        keep &= has
    return keep
