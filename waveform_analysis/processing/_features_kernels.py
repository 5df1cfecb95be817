"""numba kernel of :mod:`waveform_analysis.processing.features`."""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def features(wave, length, baseline, rms, sgn, w0, w1, trigger, pre, g_long, g_short, floor,
             t_sigma, height, area, amp, warea, q_long, q_short):
    """Per record: height and area over the record and the window, and the gated charges.

    The gates (per record, in samples) open ``pre[r]`` samples before the
    trigger: ``trigger[r]`` when >= 0, else the record's first sample beyond
    ``max(floor, t_sigma x rms)`` (found in the same pass); a record that
    never crosses gets charges 0.
    """
    ns = wave.shape[1]
    for r in range(wave.shape[0]):
        L = min(length[r], ns)
        bl = baseline[r]
        lev = max(floor, t_sigma * rms[r])
        first = trigger[r]
        h = 0.0
        a = 0.0
        wh = 0.0
        wa = 0.0
        lo = min(w0, L)
        hi = min(w1, L)
        for j in range(L):
            v = sgn * (wave[r, j] - bl)
            a += v
            if v > h:
                h = v
            if first < 0 and v > lev:
                first = j
            if j >= lo and j < hi:
                wa += v
                if v > wh:
                    wh = v
        height[r] = h
        area[r] = a
        amp[r] = wh
        warea[r] = wa
        ql = 0.0
        qs = 0.0
        if first >= 0:
            g0 = min(max(first - pre[r], 0), L)
            e_long = min(g0 + g_long[r], L)
            e_short = min(g0 + g_short[r], L)
            for j in range(g0, e_long):
                v = sgn * (wave[r, j] - bl)
                ql += v
                if j < e_short:
                    qs += v
        q_long[r] = ql
        q_short[r] = qs
