"""Baselines: the level and RMS of each record's first samples, re-judged where a pulse sits.

:func:`baseline_stats` takes the mean and RMS of the first
``baseline_samples`` samples of each record. A record whose first window is
far noisier than, or far from the level of, its own quiet windows holds a
pulse there; its baseline is taken from those quiet windows instead
(``baseline_rms`` still reports the first window, so the record stays
visible). The work comes in three phases (:func:`end_window_stats` per
record, :func:`recheck_levels` over the run, :func:`finish_baselines` per
record), so that a run read in blocks computes them block by block.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .noise import per_channel_stat
from .rows import contiguous_rows, record_channel_keys

__all__ = [
    "baseline_stats",
    "compute_baselines",
    "end_window_stats",
    "finish_baselines",
    "recheck_levels",
    "set_baselines",
]


def baseline_stats(
    st_waveforms: np.ndarray, baseline_samples: int = 40
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(baseline, baseline_rms, contaminated)`` of each record.

    ``baseline_rms`` (float32) is the RMS about its mean of the first
    ``baseline_samples`` valid samples. ``contaminated`` marks records whose
    first window holds a pulse, judged against the record's own quiet
    windows of the same size (RMS above twice theirs, or mean more than 3
    of their RMS from theirs): their ``baseline`` (float64) is the median
    level of the quiet windows; every other record's baseline is the plain
    mean of its first window. A contaminated record stays visible through
    its large ``baseline_rms``.

    Only records whose first-window RMS is above 1.25 x the lower of their
    last window's and the lower quartile of their (board, channel)'s (a few
    percent of clean records) are read whole, so the cost stays that of the
    two end windows.
    """
    if baseline_samples < 1:
        raise ConfigError(f"baseline_samples must be >= 1, got {baseline_samples}")
    if len(st_waveforms) == 0:
        return np.zeros(0, np.float64), np.zeros(0, np.float32), np.zeros(0, bool)
    mean, rms, last = end_window_stats(st_waveforms, baseline_samples)
    low = recheck_levels(record_channel_keys(st_waveforms), rms, last)
    contaminated = finish_baselines(st_waveforms, baseline_samples, mean, rms, low)
    return mean, rms.astype(np.float32), contaminated


def end_window_stats(
    st_waveforms: np.ndarray, baseline_samples: int = 40
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per record (float64): mean and RMS of the first window, RMS of the last window.

    The first phase of :func:`baseline_stats`; it needs nothing but the record,
    so a run read in blocks computes it block by block."""
    n = len(st_waveforms)
    wave = contiguous_rows(st_waveforms)
    length = np.ascontiguousarray(st_waveforms["length"], dtype=np.int64)
    nb = int(min(baseline_samples, wave.shape[1]))
    mean = np.empty(n, np.float64)
    rms = np.empty(n, np.float64)
    last = np.empty(n, np.float64)
    if n:
        from ._baselines_kernels import end_windows

        end_windows(wave, length, nb, mean, rms, last)
    return mean, rms, last


def recheck_levels(keys: np.ndarray, rms: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Per record, the RMS level above which its first window is checked for a pulse.

    The lower of the record's last-window RMS and the lower quartile of the
    first-window RMS of its (board, channel) over the whole run (``keys`` as
    :func:`.rows.channel_keys` makes them)."""
    if rms.size == 0:
        return np.zeros(0, np.float64)
    return np.minimum(last, per_channel_stat(keys, rms, 25.0))


def finish_baselines(
    st_waveforms: np.ndarray, baseline_samples: int, mean: np.ndarray, rms: np.ndarray,
    low: np.ndarray,
) -> np.ndarray:
    """Re-judge the records whose first-window ``rms`` is above ``1.25 x low``; ``mean`` is
    updated in place for those with a pulse there. Returns the ``contaminated`` mask.

    The last phase of :func:`baseline_stats`; per record, so it runs on any
    slice of a run once :func:`recheck_levels` has seen all of it."""
    n = len(st_waveforms)
    contaminated = np.zeros(n, np.bool_)
    rows = np.flatnonzero(rms > 1.25 * low + 0.25).astype(np.int64)
    if rows.size:
        wave = contiguous_rows(st_waveforms)
        length = np.ascontiguousarray(st_waveforms["length"], dtype=np.int64)
        nb = int(min(baseline_samples, wave.shape[1]))
        from ._baselines_kernels import recheck

        recheck(wave, length, nb, rows, mean, contaminated)
    return contaminated


def compute_baselines(st_waveforms: np.ndarray, baseline_samples: int = 40) -> np.ndarray:
    """Baseline of each record (float64): :func:`baseline_stats`'s first element.

    The mean of the first ``baseline_samples`` valid samples, except for
    records whose window holds a pulse (see :func:`baseline_stats`).
    """
    return baseline_stats(st_waveforms, baseline_samples)[0]


def set_baselines(st_waveforms: np.ndarray, baseline_samples: int = 40) -> np.ndarray:
    """Fill ``baseline`` and ``baseline_rms`` of ``st_waveforms`` in place; returns it."""
    baseline, rms, _ = baseline_stats(st_waveforms, baseline_samples)
    st_waveforms["baseline"] = baseline
    if "baseline_rms" in st_waveforms.dtype.names:
        st_waveforms["baseline_rms"] = rms
    return st_waveforms
