"""numba kernel of :mod:`waveform_analysis.processing.events`."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def group(time, channel, area, order, window, max_ch, o_time, o_end, o_n, o_nch, o_area, o_first):
    seen = np.full(max_ch + 1, -1, np.int64)
    e = -1
    prev = np.int64(0)
    for ii in range(order.size):
        i = order[ii]
        t = time[i]
        if e < 0 or t - prev > window:
            e += 1
            o_time[e] = t
            o_n[e] = 0
            o_nch[e] = 0
            o_area[e] = 0.0
            o_first[e] = i
        o_end[e] = t
        o_n[e] += 1
        o_area[e] += area[i]
        c = channel[i]
        if seen[c] != e:
            seen[c] = e
            o_nch[e] += 1
        prev = t
    return e + 1
