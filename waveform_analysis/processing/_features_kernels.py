"""numba kernel of :mod:`waveform_analysis.processing.features`."""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def features(wave, length, baseline, sgn, w0, w1, height, area, amp, warea):
    ns = wave.shape[1]
    for r in range(wave.shape[0]):
        L = min(length[r], ns)
        bl = baseline[r]
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
            if j >= lo and j < hi:
                wa += v
                if v > wh:
                    wh = v
        height[r] = h
        area[r] = a
        amp[r] = wh
        warea[r] = wa
