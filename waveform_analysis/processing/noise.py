"""Per-channel noise: the median ``baseline_rms`` of each (board, channel) over a run.

The median over the records makes one record with a pulse in its baseline
window (a large RMS) no matter. :func:`per_channel_stat` is the percentile
per channel that the baselines' re-check uses too.
"""

from __future__ import annotations

import numpy as np

__all__ = ["channel_noise", "noise_from", "per_channel_stat"]


def per_channel_stat(keys: np.ndarray, values: np.ndarray, q: float = 50.0) -> np.ndarray:
    """For each record, the ``q``-th percentile of ``values`` over the records with its key."""
    from ._noise_kernels import group_percentile

    out = np.empty(values.size, np.float64)
    k0 = int(keys.min())
    span = int(keys.max()) - k0
    if span < 1 << 16:  # the usual case: one board, a few channels; no sort needed
        inv = keys - k0
        n_groups = span + 1
    else:
        uniq, inv = np.unique(keys, return_inverse=True)
        n_groups = uniq.size
    group_percentile(np.ascontiguousarray(inv, dtype=np.int64),
                     np.ascontiguousarray(values, dtype=np.float64), n_groups, float(q), out)
    return out


def channel_noise(st_waveforms: np.ndarray) -> np.ndarray:
    """Per record, the noise of its (board, channel): the median ``baseline_rms`` [ADC].

    Records without a ``baseline_rms`` field, or with values that are not
    finite, count as 0.
    """
    n = len(st_waveforms)
    names = st_waveforms.dtype.names or ()
    if n == 0 or "baseline_rms" not in names:
        return np.zeros(n, np.float64)
    from ._peaks_kernels import channel_columns

    # the keys and the cleaned RMS in one pass over the records' fields, read in place
    keys, rms = np.empty(n, np.int64), np.empty(n, np.float64)
    board = st_waveforms["board"] if "board" in names else st_waveforms["channel"]
    channel_columns(st_waveforms["baseline_rms"], st_waveforms["channel"], board, "board" in names,
                    keys, rms)
    return per_channel_stat(keys, rms)


def noise_from(keys: np.ndarray, baseline_rms: np.ndarray) -> np.ndarray:
    """:func:`channel_noise` from the records' channel ``keys`` and ``baseline_rms`` alone."""
    if baseline_rms.size == 0:
        return np.zeros(0, np.float64)
    rms = np.asarray(baseline_rms, dtype=np.float64)
    rms = np.where(rms > 0, rms, 0.0)  # NaN compares false
    rms[rms == np.inf] = 0.0
    return per_channel_stat(keys, rms)
