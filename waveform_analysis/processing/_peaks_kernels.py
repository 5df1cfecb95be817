"""numba kernels around :func:`waveform_analysis.processing.hits.find_peaks`' own kernel.

The per-record columns the hit kernel reads and the peaks array it fills
were a dozen numpy passes over strided fields (a cast, a copy or a gather
each); here each is one pass over the records' fields, read in place (a
field of a structured array is a strided view, which numba reads as such).
"""

from __future__ import annotations

import numba
import numpy as np

_NEG_MAX = -np.finfo(np.float64).max  # what np.nan_to_num makes of -inf


@numba.njit(cache=True, nogil=True)
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
def record_columns(lo, hi, length, baseline, rms, has_rms, channel, board, has_board, time, dt,
                   o_len, o_bl, o_rms, o_keys, o_clean, o_chan, o_board, o_time, o_dt):
    """What :func:`find_peaks` reads of records ``[lo, hi)``, as contiguous columns, in one pass over
    the records' fields: ``length`` (int64), ``baseline``, ``rms`` as float64 with NaN and
    +inf as 0 and -inf as the lowest float (0 throughout without ``has_rms``), the
    (board, channel) key and the RMS the channel noise counts (:func:`channel_columns`),
    ``channel``, ``board`` (0 without ``has_board``), ``time`` and ``dt`` (for the peaks'
    fields, :func:`fill_peaks`)."""
    for r in range(lo, hi):
        o_len[r] = length[r]
        o_bl[r] = baseline[r]
        o_keys[r], b = _key(board, channel, has_board, r)
        o_chan[r] = channel[r]
        o_board[r] = b
        o_time[r] = time[r]
        o_dt[r] = dt[r]
        if has_rms:
            x = np.float64(rms[r])
            o_rms[r] = _clean(x)
            o_clean[r] = _counted(x)
        else:
            o_rms[r] = 0.0
            o_clean[r] = 0.0


@numba.njit(cache=True, nogil=True)
def channel_columns(rms, channel, board, has_board, o_keys, o_clean):
    """``o_keys``: each record's (board, channel) key as :func:`.rows.channel_keys` makes it
    (board 0 without ``has_board``); ``o_clean``: ``rms`` as float64 where it is above 0
    and finite, else 0 (what the channel noise counts)."""
    for r in range(o_keys.size):
        o_keys[r] = _key(board, channel, has_board, r)[0]
        o_clean[r] = _counted(np.float64(rms[r]))


@numba.njit(cache=True, nogil=True)
def key_column(channel, board, has_board, o_keys):
    """``o_keys``: :func:`channel_columns`' keys alone."""
    for r in range(o_keys.size):
        o_keys[r] = _key(board, channel, has_board, r)[0]


@numba.njit(cache=True, nogil=True)
def fill_peaks(at, rec, left, right, pos, height, area, sat, s_channel, s_time, s_dt, s_board,
               p_rec, p_channel, p_time, p_pos, p_left, p_right, p_height, p_area, p_width,
               p_board, p_sat):
    """Rows ``[at, at + rec.size)`` of the peaks' fields from one part's kernel outputs and
    the records' ``channel``, ``time``, ``dt`` and ``board`` (:func:`record_columns`'). The
    time is the record's plus ``rint(left x dt)``, summed in integers (a float sum would
    round an absolute time of ~10^18 ns to 256 ns)."""
    for i in range(rec.size):
        r = rec[i]
        k = at + i
        p_rec[k] = r
        p_channel[k] = s_channel[r]
        p_time[k] = s_time[r] + np.int64(np.rint(left[i] * np.float64(s_dt[r])))
        p_pos[k] = pos[i]
        p_left[k] = left[i]
        p_right[k] = right[i]
        p_height[k] = height[i]
        p_area[k] = area[i]
        p_width[k] = right[i] - left[i]
        p_board[k] = s_board[r]
        p_sat[k] = sat[i]
