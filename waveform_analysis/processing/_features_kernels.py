"""numba kernel of :mod:`waveform_analysis.processing.features`."""

from __future__ import annotations

import numba
import numpy as np

from ..kernel_cache import watch
from ._hits_kernels import _next_firing


@numba.njit(cache=True, nogil=True)
def _span(row, a, b):
    """Sum, minimum and maximum of the int16 samples ``row[a:b]``: three loops, each a vector
    reduction (one loop doing all three does not vectorise), over a row in the L1 cache."""
    s = np.int64(0)
    for q in range(a, b):
        s += row[q]
    lo = np.int16(32767)
    for q in range(a, b):
        lo = min(lo, row[q])
    hi = np.int16(-32768)
    for q in range(a, b):
        hi = max(hi, row[q])
    return s, lo, hi


@numba.njit(cache=True, nogil=True)
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


@numba.njit(cache=True, nogil=True)
def features(flat, stride, offset, ns, length, baseline, rms, negs, w0, w1, trigger, pre, g_long,
             g_short, floor, t_sigma, block, lo_r, hi_r, height, area, amp, warea, q_long,
             q_short):
    """Records ``[lo_r, hi_r)``: height and area over the record and the window, gated charges.

    Record ``r`` is ``flat[offset + r * stride:][:ns]`` (a 1-D C-contiguous
    array, so the sums and extrema over its int16 samples are vector
    reductions); the baseline comes off at the end. The gates (per record, in samples) open
    ``pre[r]`` samples before the trigger: ``trigger[r]`` when >= 0, else the
    record's first sample beyond ``max(floor, t_sigma x rms)``; a record that
    never crosses gets charges 0.
    """
    for r in range(lo_r, hi_r):
        neg = negs[r]
        sg = -1.0 if neg else 1.0
        L = min(length[r], ns)
        start = offset + r * stride
        row = flat[start : start + ns]
        bl = baseline[r]
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
            first = _first_crossing(row, L, bl, rms[r], neg, floor, t_sigma, block)
        if first < 0:
            q_long[r] = 0.0
            q_short[r] = 0.0
            continue
        g0 = min(max(first - pre[r], 0), L)
        e_short = min(g0 + g_short[r], L)
        e_long = min(g0 + g_long[r], L)
        s_short = _span(row, g0, e_short)[0]
        s_long = s_short + _span(row, e_short, e_long)[0] if e_long > e_short else s_short
        if e_long < e_short:
            s_long = _span(row, g0, e_long)[0]
        q_short[r] = sg * (s_short - bl * (e_short - g0))
        q_long[r] = sg * (s_long - bl * (e_long - g0))


watch(globals(), uses=("._hits_kernels",))
