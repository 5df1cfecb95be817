"""numba kernel of :mod:`waveform_analysis.processing.noise`."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def group_percentile(inv, values, n_groups, q, out):
    """``out[i]``: the ``q``-th percentile of ``values`` over the records of group ``inv[i]``."""
    counts = np.zeros(n_groups + 1, np.int64)
    for i in range(inv.size):
        counts[inv[i] + 1] += 1
    starts = np.cumsum(counts)
    fill = starts[:-1].copy()
    buf = np.empty(inv.size)
    for i in range(inv.size):  # counting sort by group
        buf[fill[inv[i]]] = values[i]
        fill[inv[i]] += 1
    stat = np.zeros(n_groups)
    for g in range(n_groups):
        if starts[g + 1] > starts[g]:
            part = buf[starts[g]:starts[g + 1]]
            # the median by selection (no sort) is the common call
            stat[g] = np.median(part) if q == 50.0 else np.percentile(part, q)
    for i in range(inv.size):
        out[i] = stat[inv[i]]
