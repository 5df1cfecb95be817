"""numba kernel of :mod:`waveform_analysis.processing.noise`."""

from __future__ import annotations

import math

import numba
import numpy as np

_BINS = 1 << 15  # bins of a group's histogram
_MOST = 4096  # gaps per group a channel's baseline spread is the median of


@numba.njit(cache=True, nogil=True)
def _sorted_percentile(inv, values, n_groups, q, out):
    """:func:`group_percentile` by a counting sort on the group and numba's selection."""
    stat = _sorted_stats(inv, values, n_groups, q)
    for i in range(inv.size):
        out[i] = stat[inv[i]]


@numba.njit(cache=True, nogil=True)
def _sorted_stats(inv, values, n_groups, q):
    """:func:`group_stats` by a counting sort on the group and numba's selection."""
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
    return stat


@numba.njit(cache=True, nogil=True)
def _ranks(n, q):
    """The order statistics (0-based, ``k`` and ``k + 1`` or ``k`` twice) numba's
    ``np.median`` (``q`` 50) or ``np.percentile`` combine for ``n`` values, and the weight of
    the upper one (-1: their mean, the median of an even count)."""
    if q == 50.0:
        half = n >> 1
        if n & 1 == 0:
            return half - 1, half, -1.0
        return half, half, 0.0
    if n == 1 or q == 0.0:
        return 0, 0, 0.0
    if q == 100.0:
        return n - 1, n - 1, 0.0
    rank = 1 + (n - 1) * np.true_divide(q, 100.0)
    f = math.floor(rank)
    return int(f - 1), int(f), rank - f


@numba.njit(cache=True, nogil=True)
def successive_gaps(inv, baseline, n_groups, most, gaps, gap_inv):
    """``|baseline[i] - baseline[j]|`` for records ``i`` and the record ``j`` of their group
    before them (finite baselines only) into ``gaps``, the group into ``gap_inv``; returns
    how many. A slow drift cancels out of these, the noise of the baselines does not. Of a
    group with more than ``most`` records, every ``ceil(count / most)``-th record's gap is
    taken: a median needs no more, and the buffers stay small."""
    counts = np.zeros(n_groups, np.int64)
    for i in range(inv.size):
        counts[inv[i]] += 1
    step = np.empty(n_groups, np.int64)
    for g in range(n_groups):
        step[g] = max(1, (counts[g] + most - 1) // most)
    due = np.zeros(n_groups, np.int64)  # gaps of the group to pass before one is taken
    prev = np.full(n_groups, np.nan)
    k = 0
    for i in range(inv.size):
        g = inv[i]
        b = baseline[i]
        if not np.isfinite(b):
            continue
        p = prev[g]
        prev[g] = b
        if np.isfinite(p):
            if due[g] == 0:  # a countdown, not a division per record
                gaps[k] = abs(b - p)
                gap_inv[k] = g
                k += 1
                due[g] = step[g]
            due[g] -= 1
    return k


@numba.njit(cache=True, nogil=True)
def group_percentile(inv, values, n_groups, q, out):
    """``out[i]``: the ``q``-th percentile of ``values`` over the records of group ``inv[i]``
    (:func:`group_stats`)."""
    stat = group_stats(inv, values, n_groups, q)
    for i in range(inv.size):
        out[i] = stat[inv[i]]


@numba.njit(cache=True, nogil=True)
def gap_medians(inv, baseline, n_groups):
    """Per group, the median of :func:`successive_gaps` (at most ``_MOST`` of them, spread
    over the group; 0 for a group without one)."""
    m = min(inv.size, n_groups * (_MOST + 1))
    gaps = np.empty(m)
    gap_inv = np.empty(m, np.int64)
    k = successive_gaps(inv, baseline, n_groups, _MOST, gaps, gap_inv)
    return group_stats(gap_inv[:k], gaps[:k], n_groups, 50.0)


@numba.njit(cache=True, nogil=True)
def counted(values, out):
    """``out[i]``: ``values[i]`` as float64 where it is above 0 and finite, else 0 (the RMS
    a channel's noise counts), in one pass over values read in place."""
    for i in range(out.size):
        x = np.float64(values[i])
        out[i] = x if x > 0.0 and x != np.inf else 0.0


@numba.njit(cache=True, nogil=True)
def spread_noise(inv, inside, gaps, mad_gap, swing, out):
    """``out[i]``: the noise of group ``inv[i]``, ``sqrt(m^2 + 2 s^2)`` from its median RMS
    ``inside`` (:func:`group_stats`) and its spread ``s`` = ``gaps`` (:func:`gap_medians`) /
    ``mad_gap``; ``swing`` > 0: 0 where that is not above ``swing`` x ``m``
    (:func:`waveform_analysis.processing.baselines.walk_floor`)."""
    noise = np.empty(inside.size)
    for g in range(inside.size):
        s = gaps[g] / mad_gap
        noise[g] = np.sqrt(inside[g] * inside[g] + 2.0 * s * s)
        if swing > 0.0 and not noise[g] > swing * inside[g]:
            noise[g] = 0.0
    for i in range(inv.size):
        out[i] = noise[inv[i]]


@numba.njit(cache=True, nogil=True)
def group_stats(inv, values, n_groups, q):
    """Per group ``g``, the ``q``-th percentile of ``values`` over the records of group ``g``
    (``inv[i] == g``; 0 for a group without one), as numba's ``np.median`` (``q`` 50) or
    ``np.percentile`` of the group gives it.

    Values that are all finite and >= +0.0 (an RMS) order as their bits do, so the two
    order statistics the percentile combines are found by a histogram of their bits per
    group (32768 bins over the values' span): only the values of the bins holding them are
    gathered and partitioned, no sort. Other values (NaN, infinities,
    negatives, -0.0) and small or many groups take the sorting path; both give the same
    bits.
    """
    if 0.0 <= q <= 100.0:
        plain, shift, base, hist, counts = _bits_histogram(inv, values, n_groups)
        if plain:
            ok, stat = _selected(inv, values, n_groups, q, shift, base, hist, counts)
            if ok:
                return stat
    return _sorted_stats(inv, values, n_groups, q)


@numba.njit(cache=True, nogil=True)
def group_quantiles(inv, values, n_groups, q1, q2):
    """``(ok, a, b)``: :func:`group_stats` of ``values`` at ``q1`` and at ``q2`` from one
    histogram (the values read twice, not four times); ``ok`` False, and nothing computed,
    where :func:`group_stats` would take its sorting path."""
    none = np.zeros(0)
    if not (0.0 <= q1 <= 100.0 and 0.0 <= q2 <= 100.0):
        return False, none, none
    plain, shift, base, hist, counts = _bits_histogram(inv, values, n_groups)
    if not plain:
        return False, none, none
    ok1, a = _selected(inv, values, n_groups, q1, shift, base, hist, counts)
    ok2, b = _selected(inv, values, n_groups, q2, shift, base, hist, counts)
    return ok1 and ok2, a, b


@numba.njit(cache=True, nogil=True)
def _bits_histogram(inv, values, n_groups):
    """``(plain, shift, base, hist, counts)``: whether :func:`group_stats`' histogram path
    applies (values all finite and >= +0.0, histograms not much larger than the data) and,
    if so, the histogram of each group's values' bits above ``shift`` less ``base``."""
    n = inv.size
    bits = values.view(np.uint64)
    # the histograms cost their zeroing: worth it when they are not much larger than the data
    plain = n_groups * _BINS <= 4 * n
    lo_bits = np.uint64(0x7FF0000000000000)
    hi_bits = np.uint64(0)
    if plain:
        for i in range(n):
            lo_bits = min(lo_bits, bits[i])
            hi_bits = max(hi_bits, bits[i])
        plain = hi_bits < np.uint64(0x7FF0000000000000)  # none negative, -0.0, inf or NaN
    if not plain:
        return False, np.uint64(0), np.uint64(0), np.zeros(0, np.int32), np.zeros(0, np.int64)
    # the bin: the bits above ``shift`` less the lowest value's; as narrow as the values'
    # span allows, so that the bins of the two order statistics hold few values
    shift = np.uint64(32)
    while (hi_bits >> shift) - (lo_bits >> shift) >= _BINS:
        shift += np.uint64(4)
    base = lo_bits >> shift
    hist = np.zeros(n_groups * _BINS, np.int32)
    counts = np.zeros(n_groups, np.int64)
    for i in range(n):
        g = inv[i]
        counts[g] += 1
        hist[g * _BINS + np.int64((bits[i] >> shift) - base)] += 1
    return True, shift, base, hist, counts


@numba.njit(cache=True, nogil=True)
def _selected(inv, values, n_groups, q, shift, base, hist, counts):
    """``(ok, stat)``: :func:`group_stats` at ``q`` from :func:`_bits_histogram`'s outputs;
    ``ok`` False for a ``q`` so near 100 that the rank rounds to the last value."""
    n = inv.size
    bits = values.view(np.uint64)
    k1 = np.zeros(n_groups, np.int64)  # the two ranks, the bins holding them, the
    k2 = np.zeros(n_groups, np.int64)  # count below the first bin, the weight
    b1 = np.zeros(n_groups, np.int64)
    b2 = np.zeros(n_groups, np.int64)
    below = np.zeros(n_groups, np.int64)
    weight = np.zeros(n_groups)
    starts = np.zeros(n_groups + 1, np.int64)
    for g in range(n_groups):
        if counts[g] == 0:
            b1[g] = _BINS  # nothing gathered
            continue
        k1[g], k2[g], weight[g] = _ranks(counts[g], q)
        if k2[g] >= counts[g]:  # a q so near 100 that the rank rounds to the last value
            return False, np.zeros(0)
        seen = np.int64(0)
        b = 0
        while seen + hist[g * _BINS + b] <= k1[g]:
            seen += hist[g * _BINS + b]
            b += 1
        b1[g] = b
        below[g] = seen
        while seen + hist[g * _BINS + b] <= k2[g]:
            seen += hist[g * _BINS + b]
            b += 1
        b2[g] = b
        starts[g + 1] = seen + hist[g * _BINS + b] - below[g]
    for g in range(n_groups):
        starts[g + 1] += starts[g]
    buf = np.empty(starts[n_groups])
    fill = starts[:-1].copy()
    for i in range(n):  # a rare branch (the bins are narrow): one unsigned test for both bounds
        g = inv[i]
        d = np.int64((bits[i] >> shift) - base)
        if np.uint64(d - b1[g]) <= np.uint64(b2[g] - b1[g]):
            buf[fill[g]] = values[i]
            fill[g] += 1
    stat = np.zeros(n_groups)
    for g in range(n_groups):
        if counts[g] == 0:
            continue
        seg = buf[starts[g]:starts[g + 1]]
        i1 = k1[g] - below[g]
        part = np.partition(seg, i1)
        lower = part[i1]
        upper = lower
        if k2[g] != k1[g]:
            upper = part[i1 + 1]
            for j in range(i1 + 2, part.size):
                upper = min(upper, part[j])
        if weight[g] < 0.0:
            stat[g] = (lower + upper) / 2
        elif q == 50.0 or k1[g] == k2[g]:
            stat[g] = lower
        else:
            stat[g] = lower * (1 - weight[g]) + upper * weight[g]
    return True, stat
