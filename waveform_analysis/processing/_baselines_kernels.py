"""numba kernels of :mod:`waveform_analysis.processing.baselines`.

As the hit kernel (:mod:`._hits_kernels`): samples are read through
:func:`~._pulse_kernels._at` (no wrap-around check), the helpers are inlined
and the allocation-free kernel runs without reference counting.
"""

from __future__ import annotations

import numba
import numpy as np

from ..kernel_cache import watch
from ._prefetch_kernels import AHEAD as PREFETCH_AHEAD
from ._prefetch_kernels import prefetch_row
from ._pulse_kernels import _at, _tail_rms, _window
from ._vector_kernels import LANES, quiet8


@numba.njit(cache=True, nogil=True, inline="always")
def _sum(row, p, m):
    """Sum of ``row[p:p + m]`` in int64 (exact; a float sum of these integers is the same)."""
    s = np.int64(0)
    for j in range(p, p + m):
        s += _at(row, j)
    return s


@numba.njit(cache=True, nogil=True, inline="always")
def _quiet_end(row, L, cap, margin, k, floor, min_window, ahead, near_j, sd_floor):
    """One past the last baseline sample of ``row``: before its first pulse, at most ``cap``.

    The samples are walked with the running mean of those before and a noise
    from successive differences (over at least the first ``ahead`` samples, so
    an early pulse is judged against more than a handful of them; a slow rise
    adds little to differences), never below ``sd_floor`` (0 in the first phase; the
    channel's noise when a cut window is walked again, :func:`rewalk`). A pulse starts at the first sample more than
    ``max(floor, k x noise)`` from the running mean whose mean with the next
    two is beyond 0.6 x that level too (3 sigma of a 3-sample mean: a single
    noise spike is not a pulse). The window ends ``margin`` samples before it
    (the part of the rise still under the level) and keeps at least
    ``min_window`` samples.

    The sums are of integers, kept in int64 (the same values a float sum of
    them holds, exactly), so the walk has no float chain; a sample within
    ``floor`` of the mean (by a margin far above the rounding of ``x - mu``)
    cannot exceed the level: ``|x j - s| <= near_j[j]``, the floor of ``(floor -
    1e-6) j`` (for an integer, the same test as against the float). The few samples
    beyond it are judged further, with the differences summed up to them then. The
    first test runs on 8 samples at once (:func:`._vector_kernels.quiet8`, bit for bit the
    same), which also gives the first sample that fails it.
    """
    stop = min(L - 2, cap + margin)
    ahead = min(ahead, L)
    s = np.int64(0)
    for j in range(min(min_window, stop)):
        s += np.int64(_at(row, j))
    d2 = np.int64(0)  # squared differences summed over [1, upto)
    upto = 1
    j = min_window
    while j < stop:
        if j + LANES <= min(row.size, near_j.size):
            # the first test of 8 samples at once (:func:`quiet8`; lanes past ``stop`` do not
            # count): on to the first that fails it, with the sum of the samples before it
            first, total, before = quiet8(row, j, s, near_j)
            if first >= min(LANES, stop - j):
                s += total
                j += LANES
                continue
            j += first
            s = before
            xi = np.int64(_at(row, j))
        else:  # the record's last few samples, one by one
            xi = np.int64(_at(row, j))
            if abs(xi * j - s) <= _at(near_j, j):
                s += xi
                j += 1
                continue
        # sample j is beyond the floor: judged against the noise of the differences
        while upto < max(j, ahead):
            d = np.int64(_at(row, upto)) - np.int64(_at(row, upto - 1))
            d2 += d * d
            upto += 1
        x = float(xi)
        mu = s / j
        sd = max(np.sqrt(d2 / (2.0 * (max(j, ahead) - 1))), sd_floor)
        lim = max(floor, k * sd)
        if abs(x - mu) > lim:
            x3 = (x + float(_at(row, j + 1)) + float(_at(row, j + 2))) / 3.0
            if abs(x3 - mu) > 0.6 * lim:
                return max(min(j - margin, cap), min_window)
        s += xi
        j += 1
    return min(cap, L)


@numba.njit(cache=True, nogil=True, inline="always")
def _fill_near(near_j, floor, ns):
    """:func:`_quiet_end`'s table: ``near_j[j]`` the floor of ``(floor - 1e-6) j`` (|x - s / j|
    <= floor with the rounding of x - s / j included)."""
    near = floor - 1e-6
    for j in range(min(near_j.size, ns)):
        near_j[j] = np.int64(np.floor(near * j))


@numba.njit(cache=True, nogil=True, inline="always")
def _two_windows(row, p0, m0, p1, m1):
    """:func:`_window` of ``row[p0:p0 + m0]`` and the RMS of ``row[p1:p1 + m1]``."""
    mu0, rms0 = _window(row, p0, m0)
    return mu0, rms0, _window(row, p1, m1)[1]


@numba.njit(cache=True, nogil=True, _nrt=False)
def end_windows(flat, stride, offset, ns, length, nb, ends, derive, margin, k, floor, min_window,
                ahead, mean, rms, last_rms, nt, tail, put, o_base, o_rms, o_tail, near_j):
    """Mean and RMS of each record's baseline window ``[0, ends[r])``; RMS of its last ``nb``
    and of its last ``nt`` as float32 in ``tail`` (:func:`_tail_rms`; the same window when
    ``nt == nb``). With ``put``, the mean, the RMS (as float32) and the tail's RMS are also
    written to the records' fields ``o_base``, ``o_rms`` and ``o_tail`` while the record is
    in the cache.

    Record ``r``'s ``ns`` samples are ``flat[offset + r * stride:]`` (as
    :func:`~._hits_kernels.find_hits` reads them). With ``derive``, ``ends[r]``
    (the cap: the pre-trigger less its margin, or the default window) is first
    cut to the quiet stretch before the record's first pulse
    (:func:`_quiet_end`; ``near_j``: scratch of ``ns`` int64) and updated in place.
    """
    _fill_near(near_j, floor, ns)
    for r in range(length.size):
        row, e, L = _window_end(flat, stride, offset, ns, length, ends, derive, margin, k, floor,
                                min_window, ahead, near_j, r)
        m = min(nb, L)
        mean[r], rms[r], lr = _two_windows(row, 0, e, L - m, m)
        last_rms[r] = lr
        tail[r] = np.float32(lr) if nt == nb else _tail_rms(row, L, nt)
        if put:
            o_base[r] = mean[r]
            o_rms[r] = np.float32(rms[r])
            o_tail[r] = tail[r]


@numba.njit(cache=True, nogil=True, inline="always")
def _window_end(flat, stride, offset, ns, length, ends, derive, margin, k, floor, min_window,
                ahead, near_j, r):
    """Record ``r``'s row, the end of its baseline window (stored in ``ends[r]``) and length."""
    r0 = offset + r * stride
    row = flat[r0 : r0 + ns]
    L = min(max(np.int64(length[r]), 1), ns)
    e = min(max(ends[r], 1), L)
    if derive and L > 3:
        e = _quiet_end(row, L, e, margin, k, floor, min(min_window, e), ahead, near_j, 0.0)
    ends[r] = e
    return row, e, L


@numba.njit(cache=True, nogil=True, _nrt=False)
def rewalk(flat, stride, offset, ns, length, rows, caps, sd_floor, margin, k, floor, min_window,
           ahead, ends, mean, rms, near_j):
    """Walk again the windows the first phase cut before their cap (``rows``), the noise
    floored at each record's channel noise ``sd_floor``; where the window now ends later,
    ``ends``, ``mean`` and ``rms`` (:func:`_window`'s) are updated in place.

    Successive differences see little of a slow swing, so noise whose power is at low
    frequencies passes the first walk's level; its channel's noise (which counts the
    spread of the baselines) does not. A window never ends earlier than before. ``near_j``:
    scratch of ``ns`` int64 (allocation-free, so without reference counting: see
    :func:`recheck`)."""
    _fill_near(near_j, floor, ns)
    for i in range(rows.size):
        if i + PREFETCH_AHEAD < rows.size:  # scattered records: ask for the next ones early
            prefetch_row(flat, offset + rows[i + PREFETCH_AHEAD] * stride, ns)
        r = rows[i]
        r0 = offset + r * stride
        row = flat[r0 : r0 + ns]
        L = min(max(np.int64(length[r]), 1), ns)
        cap = min(max(caps[r], 1), L)
        if L <= 3 or ends[r] >= cap:
            continue
        e = _quiet_end(row, L, cap, margin, k, floor, min(min_window, cap), ahead, near_j,
                       sd_floor[r])
        if e > ends[r]:
            ends[r] = e
            mean[r], rms[r] = _window(row, 0, e)


@numba.njit(cache=True, nogil=True, inline="always")
def _median(buf, n):
    """numba's ``np.median`` of ``buf[:n]`` (the middle value, or the mean of the two
    middle ones), by an insertion sort of ``buf[:n]`` in place: a handful of windows, no copy."""
    for i in range(1, n):
        x = buf[i]
        j = i - 1
        while j >= 0 and buf[j] > x:
            buf[j + 1] = buf[j]
            j -= 1
        buf[j + 1] = x
    half = n >> 1
    if n & 1 == 0:
        return (buf[half - 1] + buf[half]) / 2
    return buf[half]


@numba.njit(cache=True, nogil=True, _nrt=False)
def recheck(flat, stride, offset, ns, length, nb, ends, rows, mean, contaminated, scratch):
    """Judge the baseline window of each record in ``rows`` against the record's quiet windows.

    Record ``r``'s ``ns`` samples are ``flat[offset + r * stride:]`` (as
    :func:`end_windows` reads them). The record is cut into windows of ``nb`` samples. The
    quiet windows are
    those whose RMS is at most ``1.5 x`` the smallest plus 0.5 ADC; their
    median RMS and median mean are the record's reference noise and level.
    The baseline window ``[0, ends[r])`` is contaminated when its RMS
    exceeds twice the reference noise, or when its mean is more than 3
    reference noise from the reference level while it slopes (its two halves
    differ by more than 3 sigma of their difference): the tail of a pulse
    before the record slopes, while a clean window in a record whose later
    windows all lie on a tail that runs to the record's end does not, and
    keeps its own level. The ADC offsets keep quantised, nearly noiseless
    records from counting. A contaminated record's ``mean`` becomes the
    reference level. The means are of exact integer sums (the values a float
    sum of the samples holds), each RMS is :func:`_window`'s. ``scratch``: 4 x (``ns // nb +
    1``) float64. The kernel allocates nothing, so it runs without reference counting: with
    it, each record's view of ``flat`` counts references atomically on ``flat``'s one
    counter, which two threads then fight over (two threads took longer than one).
    """
    cap = ns // max(nb, 1) + 1
    w_mean = scratch[0, :cap]
    w_rms = scratch[1, :cap]
    q_mean = scratch[2, :cap]
    q_rms = scratch[3, :cap]
    for i in range(rows.size):
        if i + PREFETCH_AHEAD < rows.size:  # scattered records: ask for the next ones early
            prefetch_row(flat, offset + rows[i + PREFETCH_AHEAD] * stride, ns)
        r = rows[i]
        L = min(max(length[r], 1), ns)
        m = min(nb, L)
        nw = L // m
        if nw < 2:
            continue
        r0 = offset + r * stride
        row = flat[r0 : r0 + ns]
        for w in range(nw):
            w_mean[w], w_rms[w] = _window(row, w * m, m)
        e = min(max(ends[r], 1), L)
        m0, r0_rms = _window(row, 0, e)
        lowest = r0_rms
        for w in range(nw):
            lowest = min(lowest, w_rms[w])
        cut = 1.5 * lowest + 0.5
        nq = 0
        for w in range(nw):
            if w_rms[w] <= cut:
                q_mean[nq] = w_mean[w]
                q_rms[nq] = w_rms[w]
                nq += 1
        if nq == 0:
            continue
        level = _median(q_mean, nq)
        noise = _median(q_rms, nq)
        h = e // 2
        slopes = False
        if h >= 2:
            d = _sum(row, 0, h) / h - _sum(row, h, e - h) / (e - h)
            slopes = abs(d) > 3.0 * noise * np.sqrt(1.0 / h + 1.0 / (e - h)) + 0.5
        if r0_rms > 2.0 * noise + 0.5 or (abs(m0 - level) > 3.0 * noise + 0.5 and slopes):
            contaminated[r] = True
            mean[r] = level


@numba.njit(cache=True, nogil=True)
def put_baselines(o_baseline, o_rms, baseline, rms, o_tail, tail):
    """``o_baseline[:] = baseline``, ``o_rms[:] = rms`` and, unless ``tail`` is empty,
    ``o_tail[:] = tail`` (records' fields, strided) in one pass: a record's fields share a
    cache line, which numpy's assignments would load once each."""
    has_tail = tail.size > 0
    for i in range(baseline.size):
        o_baseline[i] = baseline[i]
        o_rms[i] = rms[i]
        if has_tail:
            o_tail[i] = tail[i]


watch(globals(), uses=("._prefetch_kernels", "._pulse_kernels", "._vector_kernels"))
