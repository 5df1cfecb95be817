"""numba kernel of :mod:`waveform_analysis.processing.features`.

As the hit kernel (:mod:`._hits_kernels`): samples are read through
:func:`~._pulse_kernels._at` (no wrap-around check, so the scans vectorise), the helpers
are inlined and the allocation-free kernel runs without reference counting.
"""

from __future__ import annotations

import numba
import numpy as np

from ..kernel_cache import watch
from ._peaks_kernels import _clean
from ._pulse_kernels import _at, _next_firing


@numba.njit(cache=True, nogil=True, inline="always")
def _span(row, a, b):
    """Sum, minimum and maximum of the int16 samples ``row[a:b]``: three loops, each a vector
    reduction (one loop doing all three does not vectorise), over a row in the L1 cache."""
    s = np.int64(0)
    for q in range(a, b):
        s += _at(row, q)
    lo = np.int16(32767)
    for q in range(a, b):
        lo = min(lo, _at(row, q))
    hi = np.int16(-32768)
    for q in range(a, b):
        hi = max(hi, _at(row, q))
    return s, lo, hi


@numba.njit(cache=True, nogil=True, inline="always")
def _sum(row, a, b):
    """Sum of the int16 samples ``row[a:b]`` (a vector reduction)."""
    s = np.int64(0)
    for q in range(a, b):
        s += _at(row, q)
    return s


@numba.njit(cache=True, nogil=True, inline="always")
def _first_crossing(row, L, bl, rms, neg, floor, t_sigma, block):
    """The first sample of ``row[:L]`` beyond ``max(floor, t_sigma x rms)`` from the
    baseline ``bl`` (the trigger where the run states none), or -1."""
    d = max(floor, t_sigma * rms)
    lev = np.ceil(bl - d) - 1.0 if neg else np.floor(bl + d) + 1.0
    if -32768.0 <= lev <= 32767.0:
        first = _next_firing(row, 0, L, np.int16(lev), neg, block)  # first sample beyond lev
        if first < L:
            return first
    return -1


@numba.njit(cache=True, nogil=True)
def first_crossings(flat, stride, offset, ns, length, baseline, rms, negs, floor, t_sigma, block,
                    out):
    """``out[r]``: :func:`_first_crossing` of each record (as :func:`features` finds it)."""
    for r in range(out.size):
        L = min(length[r], ns)
        start = offset + r * stride
        out[r] = _first_crossing(flat[start : start + ns], L, baseline[r], rms[r], negs[r], floor,
                                 t_sigma, block) if L > 0 else -1


@numba.njit(cache=True, nogil=True, _nrt=False)
def features(flat, stride, offset, ns, length, baseline, rms, has_rms, negs, w0, w1, trigger,
             pre, g_long, g_short, floor, t_sigma, block, lo_r, hi_r, timestamp, time, channel,
             o_rec, o_timestamp, o_time, o_channel, height, area, amp, warea, q_long, q_short,
             psd):
    """Records ``[lo_r, hi_r)``: height and area over the record and the window, gated charges.

    Record ``r`` is ``flat[offset + r * stride:][:ns]`` (a 1-D C-contiguous
    array, so the sums and extrema over its int16 samples are vector
    reductions); the baseline comes off at the end. ``length``, ``baseline`` and ``rms``
    (with ``has_rms``; NaN and +inf count as 0) are the records' fields, read in place,
    and so are ``timestamp``, ``time`` and ``channel``, copied to the outputs (the fields
    of the features' rows) with the record's index. The gates (per record, in samples)
    open ``pre[r]`` samples before the trigger: ``trigger[r]`` when >= 0, else the
    record's first sample beyond ``max(floor, t_sigma x rms)``; a record that never
    crosses gets charges 0. ``psd`` is ``(long - short) / long`` of the float32 charges
    (0 where ``long <= 0``).
    """
    for r in range(lo_r, hi_r):
        o_rec[r] = r
        o_timestamp[r] = timestamp[r]
        o_time[r] = time[r]
        o_channel[r] = channel[r]
        neg = negs[r]
        sg = -1.0 if neg else 1.0
        L = min(np.int64(length[r]), ns)
        start = offset + r * stride
        row = flat[start : start + ns]
        bl = np.float64(baseline[r])
        s, mn, mx = _span(row, 0, L)
        ext = bl - mn if neg else mx - bl
        height[r] = max(ext, 0.0) if L > 0 else 0.0
        area[r] = sg * (s - bl * L)
        lo = min(w0, L)
        hi = min(w1, L)
        if lo == 0 and hi == L:
            amp[r] = height[r]
            warea[r] = area[r]
        elif hi > lo:
            s, mn, mx = _span(row, lo, hi)
            amp[r] = max(bl - mn if neg else mx - bl, 0.0)
            warea[r] = sg * (s - bl * (hi - lo))
        else:
            amp[r] = 0.0
            warea[r] = 0.0
        first = trigger[r]
        if first < 0 and L > 0:
            noise = _clean(np.float64(rms[r])) if has_rms else 0.0
            first = _first_crossing(row, L, bl, noise, neg, floor, t_sigma, block)
        if first < 0:
            q_long[r] = 0.0
            q_short[r] = 0.0
            psd[r] = 0.0
            continue
        g0 = min(max(first - pre[r], 0), L)
        e_short = min(g0 + g_short[r], L)
        e_long = min(g0 + g_long[r], L)
        s_short = _sum(row, g0, e_short)
        s_long = s_short + _sum(row, e_short, e_long) if e_long > e_short else s_short
        if e_long < e_short:
            s_long = _sum(row, g0, e_long)
        q_short[r] = sg * (s_short - bl * (e_short - g0))
        q_long[r] = sg * (s_long - bl * (e_long - g0))
        ql = np.float32(q_long[r])
        psd[r] = (ql - np.float32(q_short[r])) / ql if ql > 0 else np.float32(0.0)


watch(globals(), uses=("._peaks_kernels", "._pulse_kernels"))
