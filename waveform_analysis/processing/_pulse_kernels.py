"""Helpers of :func:`waveform_analysis.processing._hits_kernels.find_hits` that look at one
pulse: where it peaks, whether it rings, the noise near it, its slow tail, the next sample
that fires and where a second pulse on its fall begins.

All but :func:`_valley` are inlined into the hit kernel (see its module's note on why);
samples are read through :func:`_at`.
"""

from __future__ import annotations

import numba
import numpy as np

NO_LOW = np.int64(1 << 40)


@numba.njit(inline="always")
def _at(row, j):
    """``row[j]`` for ``j >= 0``, unchecked: numba checks every signed index for a negative
    (wrap-around) value, which keeps loops over samples from vectorising."""
    return row[np.uint64(j)]


@numba.njit(cache=True, nogil=True, inline="always")
def _position(row, neg, bl, tol, left, right, top):
    """The peak's position: the first sample whose 3-sample average comes within ``tol`` /
    sqrt(3) (``tol`` in the noise of the average) of the average's maximum over the peak.
    The average keeps a single noisy sample from being the extremum; the first sample within
    noise keeps a slowly decaying top from putting it anywhere along that top. ``top`` is the
    largest signed sum of 3 neighbours inside the peak, from :func:`_emit`. At the peak's two
    edges the average is of 2 samples. In integers: 6 x the average plus 6 x the signed
    baseline is 2 x a sum of 3 or 3 x a sum of 2, so only the limit is a float. A peak of
    1-2 samples has one average (of them all): its first sample."""
    if right - left < 3:
        return left
    sg = np.int64(-1 if neg else 1)
    first = 3 * sg * (np.int64(_at(row, left)) + np.int64(_at(row, left + 1)))
    last = 3 * sg * (np.int64(_at(row, right - 2)) + np.int64(_at(row, right - 1)))
    need = max(2 * top, first, last) - 6.0 * tol / np.sqrt(3.0)
    if first >= need:
        return left
    s3 = np.int64(_at(row, left)) + np.int64(_at(row, left + 1)) + np.int64(_at(row, left + 2))
    for j in range(left + 1, right - 1):
        if 2 * sg * s3 >= need:
            return j
        if j + 2 < right:
            s3 += np.int64(_at(row, j + 2)) - np.int64(_at(row, j - 1))
    if last >= need:
        return right - 1
    return left


@numba.njit(cache=True, nogil=True, inline="always")
def _rings(row, sg, sbl, a, c, L, w, floor, frac):
    """Whether the lobe rising at ``c`` is ringing: the signal swings to the other side of the
    baseline (``sbl``, signed) by at least ``floor`` and ``frac`` x the lobe's height in
    ``[a, c)`` before it or within ``w`` samples after its top (found by walking up from
    ``c``, at most ``2 w`` samples). A light pulse never swings so (its undershoot is a few
    per cent); an oscillation's lobes always do."""
    pt = c
    e = min(c + 2 * w, L)
    while pt + 1 < e and sg * np.int64(_at(row, pt + 1)) >= sg * np.int64(_at(row, pt)):
        pt += 1
    need = max(floor, frac * (sg * np.int64(_at(row, pt)) - sbl))
    low = NO_LOW
    for q in range(a, c):
        low = min(low, sg * np.int64(_at(row, q)))
    for q in range(pt + 1, min(pt + 1 + w, L)):
        low = min(low, sg * np.int64(_at(row, q)))
    return sbl - low >= need


@numba.njit(cache=True, nogil=True, inline="always")
def _window(row, p, m):
    """Mean and RMS (about the mean) of ``row[p:p + m]``, from exact integer sums of the
    samples and their squares: ``m^2 var = m S2 - S1^2`` holds no rounding (a product of
    two 16-bit samples fits in 32 bits, the sums in 64), so one float division and a
    square root give the RMS, one pass over the samples, which vectorises. Windows of more
    than 65,536 samples take the float difference instead."""
    s1 = np.int64(0)
    s2 = np.int64(0)
    for j in range(p, p + m):
        x = np.int32(_at(row, j))
        s1 += x
        s2 += x * x
    if m <= 65536:  # m S2 and S1^2 stay below 2^63 for any 16-bit samples
        return s1 / m, np.sqrt(np.float64(m * s2 - s1 * s1)) / m
    mu = s1 / m
    return mu, np.sqrt(max(s2 / m - mu * mu, 0.0))


@numba.njit(cache=True, nogil=True, inline="always")
def _tail_rms(row, L, m):
    """The RMS of the last ``m`` of the ``L`` valid samples of ``row`` (all of them when
    fewer), as float32: the records' ``tail_rms`` field, which the baselines' first phase
    fills (:func:`~._baselines_kernels.end_windows`) and :func:`_own_noise` reads."""
    k = min(m, L)
    return np.float32(_window(row, L - k, k)[1])


@numba.njit(cache=True, nogil=True, inline="always")
def _own_noise(row, L, nz, rms, guard, margin, m, tail):
    """The record's noise for its threshold: ``nz`` (its channel's) raised to ``own`` =
    ``margin`` x the lower of its ``rms`` and the RMS of its last ``m`` samples, when that is
    above ``nz`` and at most ``guard`` x ``margin`` x ``nz`` (above: pulses in both windows,
    ``nz`` stands). That RMS is ``tail`` (the record's ``tail_rms``) where it is a positive
    number, else it is read from the samples (:func:`_tail_rms`: the same value), and only
    when ``rms`` allows a raise."""
    if not margin * rms > nz:
        return nz
    last = tail if 0.0 < tail < np.inf else np.float64(_tail_rms(row, L, m))
    own = margin * min(rms, last)
    if own > nz and own <= guard * margin * nz:
        return own
    return nz


@numba.njit(cache=True, nogil=True, inline="always")
def _tail_end(row, j, L, neg, bl, lim_sum, w):
    """One past a pulse's slow tail from ``j``: blocks of ``w`` samples while their summed
    signal exceeds ``lim_sum`` (2 sigma of a block's noise). A tail of sparse
    photo-electrons, each below the trigger level, so stays with its pulse and in its area."""
    while j + w <= L:
        acc = np.int64(0)
        for q in range(j, j + w):
            acc += np.int64(_at(row, q))
        sig = bl * w - acc if neg else acc - bl * w
        if sig <= lim_sum:
            break
        j += w
    return j


@numba.njit(cache=True, nogil=True, inline="always")
def _first_beyond(row, p, m, a, neg, j0):
    """First sample of ``row[p:p + m]``, from ``j0`` on, at or beyond level ``a`` (``p + m``
    if none): a branch-free minimum of int32 offsets over the stretch, which vectorises."""
    f = np.int32(m)
    k0 = np.int32(j0 - p)
    for i in range(np.int32(m)):
        x = _at(row, p + i)
        beyond = x <= a if neg else x >= a
        f = min(f, np.int32(i) if beyond and np.int32(i) >= k0 else np.int32(m))
    return p + np.int64(f)


@numba.njit(cache=True, nogil=True, inline="always")
def _next_firing(row, j, L, a, neg, block):
    """First sample from ``j`` on at or beyond level ``a`` (``L`` if none).

    Whole quiet blocks first (an int16 min/max each, a vector reduction:
    :func:`_at`'s unsigned index lets it vectorise); the block that holds one, or the last
    ``block`` samples of the record (a block overlapping those already passed), is then
    searched by :func:`_first_beyond`, not sample by sample.
    """
    if neg:
        while j + block <= L:
            m = np.int16(32767)
            for q in range(j, j + block):
                m = min(m, _at(row, q))
            if m <= a:
                return _first_beyond(row, j, block, a, neg, j)
            j += block
    else:
        while j + block <= L:
            m = np.int16(-32768)
            for q in range(j, j + block):
                m = max(m, _at(row, q))
            if m >= a:
                return _first_beyond(row, j, block, a, neg, j)
            j += block
    if j >= L:
        return L
    if L >= block:
        return _first_beyond(row, L - block, block, a, neg, j)
    if neg:  # a record shorter than a block
        while j < L and _at(row, j) > a:
            j += 1
    else:
        while j < L and _at(row, j) < a:
            j += 1
    return j


@numba.njit(cache=True, nogil=True, _nrt=False)
def _valley(row, sg, sbl, x, q0, c_end, c_high, big_rise, s_frac, s_height, c_left, L, ring_gap,
            ring_floor, ring_frac):
    """Where a second pulse rising to signed ``x`` at ``c_end`` starts (-1: none): the lowest
    sample of ``[q0, c_end)`` (the last 3 after the extremum), when the rise from it counted
    from the baseline where it is below (a rise out of a swing below it is partly the swing's
    recovery) and the first pulse's fall to it (a valley on both sides) pass
    :func:`find_hits`' split rule, and no opposite swing makes the lobe ringing. Called, not
    inlined: it runs at a candidate split only, and out of the hit loop it leaves that loop
    its registers."""
    mv = x
    mp = -1
    for q in range(q0, c_end):
        xq = sg * np.int64(_at(row, q))
        if xq < mv:
            mv = xq
            mp = q
    rise = x - max(mv, sbl)
    split = (mp >= 0 and rise > big_rise and x - mv > s_frac * (mv - sbl)
             and c_high - mv > big_rise
             and (rise > s_height * (c_high - sbl) or x > c_high))
    if split:
        split = not _rings(row, sg, sbl, max(c_end - ring_gap // 2, c_left),
                           c_end, L, ring_gap // 2, ring_floor, ring_frac)
    return mp if split else -1
