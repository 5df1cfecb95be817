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
