"""numba kernels around :func:`waveform_analysis.processing.hits.find_peaks`' own kernel.

The per-record fields the hit kernel reads are the
records' own, read in place (a field of a structured array is a strided
view, which numba reads as such; it lies beside the record's samples, which
the kernels read anyway): a copy of each as a column would be one more pass
over a run's memory. :func:`channel_columns` makes the two columns the channel
noise needs in one pass."""

from __future__ import annotations

import numba
import numpy as np

_NEG_MAX = -np.finfo(np.float64).max  # what np.nan_to_num makes of -inf


@numba.njit(cache=True, nogil=True, inline="always")
def _clean(x):
    """``x`` as :func:`numpy.nan_to_num` (``nan=0``, ``posinf=0``) makes it."""
    if np.isnan(x) or x == np.inf:
        return 0.0
    if x == -np.inf:
        return _NEG_MAX
    return x


@numba.njit(cache=True, nogil=True, inline="always")
def _key(board, channel, has_board, r):
    """Record ``r``'s (board, channel) key as :func:`.rows.channel_keys` makes it (board 0
    without ``has_board``), and its board."""
    b = np.int64(board[r]) if has_board else np.int64(0)
    return (b << 16) | (np.int64(channel[r]) & 0xFFFF), b


@numba.njit(cache=True, nogil=True, inline="always")
def _counted(x):
    """``x`` where it is above 0 and finite, else 0: the RMS the channel noise counts."""
    return x if x > 0.0 and x != np.inf else 0.0


@numba.njit(cache=True, nogil=True)
def channel_columns(rms, channel, board, has_board, baseline, has_baseline, o_keys, o_clean,
                    o_baseline):
    """``o_keys``: each record's (board, channel) key as :func:`.rows.channel_keys` makes it
    (board 0 without ``has_board``); ``o_clean``: ``rms`` as float64 where it is above 0
    and finite, else 0 (what the channel noise counts); with ``has_baseline``,
    ``o_baseline``: ``baseline`` as float64, read in the same pass (the records' key and
    baseline share a cache line: a second pass would load it again)."""
    for r in range(o_keys.size):
        o_keys[r] = _key(board, channel, has_board, r)[0]
        o_clean[r] = _counted(np.float64(rms[r]))
        if has_baseline:
            o_baseline[r] = np.float64(baseline[r])

