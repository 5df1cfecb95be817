"""numba kernels of :func:`waveform_analysis.processing.hits.find_peaks`.

One kernel walks every sample of a record once; ``find_peaks`` calls it on
parts of the records from several threads (it releases the GIL). It allocates
nothing, so it runs without numba's reference counting (``_nrt=False``, as
numba's own allocation-free helpers do), and its helpers are inlined into it:
each view or copy of an array (a record's row, a call's arguments) costs two
atomic operations otherwise, ~20 % of its time. Samples are read through :func:`_at`.
"""

from __future__ import annotations

import numba
import numpy as np

from ..kernel_cache import watch
from ._peaks_kernels import _clean
from ._pulse_kernels import (
    NO_LOW,
    _at,
    _next_firing,
    _own_noise,
    _position,
    _rings,
    _tail_end,
    _valley,
)

NO_HIGH = np.int64(-(1 << 40))


@numba.njit(cache=True, nogil=True, inline="always")
def _sum3(row, j, sg):
    """``sg`` x the sum of the 3 samples centred on ``j``."""
    return sg * (np.int64(_at(row, j - 1)) + np.int64(_at(row, j)) + np.int64(_at(row, j + 1)))


@numba.njit(cache=True, nogil=True, inline="always")
def _emit(row, r, neg, bl, tol, bpos, height, left, right, h_hi, k, cap, adc_lo, adc_hi, out):
    """Store one peak as ``out[k]`` (when ``k < cap``): ``bpos`` / ``height`` are its
    extremum (``tol`` > 0: the position is :func:`_position`'s, from the largest signed sum
    of 3 neighbours over the peak, ``top``; the sums that reach beyond the hit's end
    ``h_hi`` only when its samples could beat it)."""
    if k < cap:
        # the signal sgn * (w - bl) summed over [left, right) and the ADC range it spans,
        # in two vectorised passes: the hit, then its extension; the first pass also takes
        # the largest signed sum of 3 neighbours centred in [left + 1, min(h_hi + 1, right - 1))
        sg = np.int64(-1 if neg else 1)
        acc = np.int64(0)
        lo_w = _at(row, left)
        hi_w = _at(row, left)
        top = NO_HIGH
        m = max(min(h_hi, right - 2), left)  # the samples whose right neighbour's sum counts
        for j in range(left, m):
            acc += np.int64(_at(row, j))
            lo_w = min(lo_w, _at(row, j))
            hi_w = max(hi_w, _at(row, j))
            top = max(top, _sum3(row, j + 1, sg))
        for j in range(m, h_hi):
            acc += np.int64(_at(row, j))
            lo_w = min(lo_w, _at(row, j))
            hi_w = max(hi_w, _at(row, j))
        lo_e = _at(row, right - 1)
        hi_e = _at(row, right - 1)
        for j in range(h_hi, right):
            acc += np.int64(_at(row, j))
            lo_e = min(lo_e, _at(row, j))
            hi_e = max(hi_e, _at(row, j))
        if tol > 0.0:
            if 3 * (-np.int64(lo_e) if neg else np.int64(hi_e)) > top:
                for j in range(max(h_hi + 1, left + 1), right - 1):
                    top = max(top, _sum3(row, j, sg))
            bpos = _position(row, neg, bl, tol, left, right, top)
        area = acc - bl * (right - left)
        if neg:
            area = -area
        p = out[k]
        p.record_i = r
        p.left = left
        p.right = right
        p.width = right - left
        p.position = bpos
        p.height = height
        p.area = area
        p.saturated = min(lo_w, lo_e) <= adc_lo or max(hi_w, hi_e) >= adc_hi
    return k + 1


@numba.njit(cache=True, nogil=True, inline="always")
def _levels(neg, bl, floor, nz, t_sigma, r_sigma, p_sigma, s_sigma, tail_sigma, tail_block):
    """A record's levels for its noise ``nz``: whether it can fire, the trigger and release
    levels as int16 samples (``sgn * (w - bl) > t`` for an integer ``w`` is ``w <= ceil(bl
    - t) - 1`` negative, ``w >= floor(bl + t) + 1`` positive; a trigger level beyond the
    int16 range on the quiet side, or a NaN baseline, cannot fire), the position's
    tolerance, a slow-tail block's limit and the split's rise as an integer (``x - low >
    floor(R)`` is ``x - low > R``)."""
    thr = max(floor, t_sigma * nz)
    rel = min(r_sigma * nz, thr)
    if neg:
        lev = np.ceil(bl - thr) - 1.0
        rlev = np.ceil(bl - rel) - 1.0
        ok = lev >= -32768.0
    else:
        lev = np.floor(bl + thr) + 1.0
        rlev = np.floor(bl + rel) + 1.0
        ok = lev <= 32767.0
    if not ok:
        return False, np.int16(0), np.int16(0), 0.0, 0.0, NO_LOW
    a = np.int16(min(max(lev, -32768.0), 32767.0))
    b = np.int16(min(max(rlev, -32768.0), 32767.0))
    big_rise = NO_LOW
    if s_sigma > 0.0:
        big_rise = np.int64(np.floor(min(max(thr, s_sigma * nz), 1e12)))
    return True, a, b, p_sigma * nz, tail_sigma * nz * np.sqrt(tail_block), big_rise


@numba.njit(cache=True, nogil=True, _nrt=False)
def find_hits(flat, stride, offset, ns, length, noise, rec_rms, has_rms, tail, has_tail, guard, g_margin, g_window, negs, baseline, thresholds,
              t_sigma, r_sigma, p_sigma, s_sigma, s_height, s_frac, tail_block, tail_sigma,
              follow, link, link_width, ring_gap, ring_sigma, ring_frac, merge_gap, lext, rext, tail_ext, min_width, block, adc_lo, adc_hi, lo, hi,
              cap, time, dt, channel, board, has_board, out):
    """Peaks of records [lo, hi) into ``out`` (``PEAKS_DTYPE`` rows, written in place: no
    column to copy into them afterwards; the first ``cap`` of them); returns how many there
    are (may exceed ``cap``).

    Record ``r``'s ``ns`` samples are ``flat[offset + r * stride:]`` (see
    :func:`~waveform_analysis.processing.rows.flat_rows`: a slice of one flat
    array is a row numba knows is contiguous, so its scans vectorise). ``length``,
    ``baseline``, ``rec_rms`` (the record's ``baseline_rms``; ``has_rms`` False: none) and
    ``tail`` (its ``tail_rms``; ``has_tail`` False: none, read from the samples) may be the
    records' own fields, read in place beside the samples; so are ``time``, ``dt``,
    ``channel`` and ``board`` (``has_board`` False: 0), which give each peak's ``time``
    (the record's time plus ``rint(left x dt)``, summed in integers), ``channel`` and
    ``board`` while the record's fields are in the cache.

    Per record, with its ``noise`` raised to its own (``guard`` > 0, :func:`_own_noise`): a hit starts at a sample more than ``max(thresholds[r], t_sigma *
    noise)`` (``negs[r]``: below it) beyond the baseline and lasts while the signal is beyond
    ``min(r_sigma * noise, that)``, both as int16 sample values (:func:`_levels`).
    ``merge_gap`` / ``rext`` < 0 mean "derived from the hit" (its tail extension, at least
    to the end of its slow tail: blocks of ``tail_block`` samples whose sum is beyond
    ``tail_sigma`` sigma). With a
    derived ``merge_gap``, a later hit whose extremum is below ``s_height`` x the peak's
    height and that starts within ``follow`` x the peak's length after it continues the
    peak, and so does one within ``link`` x that length, narrower than ``link_width`` x the
    peak's core (area / height above the release level), when the signal summed between
    them is beyond ``tail_sigma`` sigma of that sum's noise and the follower's area below
    that sum plus the same margin. A peak is split at a sample after its extremum from
    which the signal rises within 3 samples by more than ``max(trigger, s_sigma * noise)``
    (from the baseline where the valley is below it), more than ``s_frac`` x the valley's
    level and more than ``s_height`` x the peak's height or above it, the peak having
    fallen to that valley by the same ``max(trigger, s_sigma * noise)`` (a resolvable
    second pulse; ``s_sigma`` 0: never), once the peak so far has reached the trigger
    level; samples joined by an explicit ``merge_gap`` are not split. Ringing
    (:func:`_rings`): a hit within ``ring_gap`` samples of the peak's end with an opposite
    swing of ``ring_sigma`` sigma and ``ring_frac`` x its own height just before it or after
    its top continues the peak, and such a lobe splits nothing.
    """
    k = 0
    for r in range(lo, hi):
        k_r = k
        neg = negs[r]
        sg = -1 if neg else 1
        L = min(np.int64(length[r]), ns)
        if L <= 0:
            continue
        r0 = offset + r * stride
        row = flat[r0 : r0 + ns]
        bl = np.float64(baseline[r])
        nz = noise[r]
        if guard > 0.0:  # the record's own noise, from its baseline_rms and tail_rms
            nz = _own_noise(row, L, nz, _clean(rec_rms[r]) if has_rms else 0.0, guard, g_margin,
                            g_window, np.float64(tail[r]) if has_tail else 0.0)
        ok, a, b, tol, tail_lim, big_rise = _levels(neg, bl, thresholds[r], nz, t_sigma,
                                                    r_sigma, p_sigma, s_sigma, tail_sigma,
                                                    tail_block)
        if not ok:
            continue
        sa = sg * np.int64(a)
        sb = sg * np.int64(b)
        sbl = sg * bl
        is_open = False
        exempt = -1  # no split from a sample up to here (explicit merge_gap, or split)
        c_left = 0  # first sample of the open hit (after the left walk)
        c_end = 0  # one past its last sample beyond the release level
        c_sum = np.int64(0)  # x summed over [c_left, c_end)
        c_high = NO_HIGH  # largest x and its first sample
        c_pos = 0
        c_low = NO_LOW  # lowest x since the largest
        c_area = 0.0  # signal summed over [c_left, c_end)
        c_height = 0.0  # extremum of the signal
        c_ext = 0
        c_gap = 0
        prev_right = 0
        j = 0
        while j < L:
            j = _next_firing(row, j, L, a, neg, block)
            if j >= L:
                break
            s = j
            merge = is_open and s - c_end < c_gap
            span = c_end + c_ext - c_left
            near = s - c_end - c_ext < follow * span
            far = s - c_end - c_ext < link * span
            if is_open and not merge and merge_gap < 0 and (far or s - c_end <= ring_gap):
                # a small follower (ringing, an after-pulse, photo-electrons late in the
                # tail) within the peak's own length after it continues the peak
                q = s
                hf = NO_HIGH
                af = np.int64(0)
                while q < L and sg * np.int64(_at(row, q)) >= sb:
                    hf = max(hf, sg * np.int64(_at(row, q)))
                    af += sg * np.int64(_at(row, q))
                    q += 1
                af -= sbl * (q - s)  # its area
                merge = near and hf - sbl < s_height * c_height
                # narrower than link_width x the peak's core (area / height): photo-electrons,
                # not a new pulse of the detector's own shape
                narrow = af < link_width * (hf - sbl) * c_area / max(c_height, 1e-9)
                if (not merge and far and narrow and tail_block > 0 and nz > 0.0
                        and hf - sbl < s_height * c_height):
                    # a small follower further on, joined to the peak by significant light
                    # (the slow tail's photo-electrons between them): the same pulse
                    g0 = min(c_end + c_ext, s)
                    acc = np.int64(0)
                    for q in range(g0, s):
                        acc += np.int64(_at(row, q))
                    gsig = sg * acc - sbl * (s - g0)
                    gnoise = tail_sigma * nz * np.sqrt(s - g0)
                    # ... and no more light in it than that stretch of tail may hold (its
                    # light plus the same 2 sigma): a fluctuation of the tail, not a pulse
                    merge = s > g0 and gsig > gnoise and af < gsig + gnoise
                if not merge and s - c_end <= ring_gap:
                    # it swings to the other side by ring_frac x its own height (and
                    # ring_sigma sigma) right before or after it, right after the peak: an
                    # oscillation, one burst
                    merge = _rings(row, sg, sbl, c_end, s, L, ring_gap // 2, ring_sigma * nz,
                                   ring_frac)
            if not merge:
                if is_open and c_end - c_left >= min_width:
                    right = min(c_end + c_ext, s, L)
                    k = _emit(row, r, neg, bl, tol, c_pos, c_height,
                              max(c_left - lext, prev_right), right, c_end, k, cap, adc_lo,
                              adc_hi, out)
                    prev_right = right
                # walk left over the samples beyond the release level
                q = s
                if neg:
                    while q > prev_right and _at(row, q - 1) <= b:
                        q -= 1
                else:
                    while q > prev_right and _at(row, q - 1) >= b:
                        q -= 1
                is_open = True
                c_left = q
                c_end = q
                c_sum, c_high, c_low = np.int64(0), NO_HIGH, NO_LOW
            # accumulate from the end of the hit so far (the gap, for a merge) to the
            # trigger, then on while the signal stays beyond the release level
            # (hysteresis: the hit ends only where the signal falls back to it)
            if merge and merge_gap >= 0:
                exempt = s
            while c_end < L:
                # integer arithmetic on x = sg * sample (the signal plus sg * baseline)
                x = sg * np.int64(_at(row, c_end))
                if c_end > s and x < sb:
                    break
                # c_low (lowest x since the extremum) makes the check below rare
                if (x - c_low > big_rise and c_high >= sa
                        and x - c_low > s_frac * (c_low - sbl)
                        and (x - c_low > s_height * (c_high - sbl) or x > c_high)):
                    mp = _valley(row, sg, sbl, x, max(c_end - 3, c_pos + 1, exempt + 1, c_left),
                                 c_end, c_high, big_rise, s_frac, s_height, c_left, L, ring_gap,
                                 ring_sigma * nz, ring_frac)
                    if mp >= 0:
                        if mp - c_left >= min_width:
                            lft = max(c_left - lext, prev_right)
                            k = _emit(row, r, neg, bl, tol, c_pos, c_high - sbl, lft, mp, mp, k,
                                      cap, adc_lo, adc_hi, out)
                            prev_right = mp
                        exempt = c_end - 1  # the rise just seen splits once
                        c_left = mp
                        c_end = mp
                        c_sum, c_high, c_low = np.int64(0), NO_HIGH, NO_LOW
                        continue
                c_sum += x
                if x > c_high:
                    c_high = x
                    c_pos = c_end
                    c_low = NO_LOW
                elif x < c_low:
                    c_low = x
                c_end += 1
            c_height = c_high - sbl
            c_area = c_sum - sbl * (c_end - c_left)
            j = c_end
            if rext >= 0:
                c_ext = rext
            elif c_height > 0.0 and c_area > 0.0:
                c_ext = int(np.ceil(tail_ext * c_area / c_height))
                if tail_block > 0 and nz > 0.0:  # no noise known: no test of a tail
                    c_ext = max(c_ext, _tail_end(row, c_end, L, neg, bl, tail_lim, tail_block) - c_end)
            else:
                c_ext = 0
            c_gap = merge_gap if merge_gap >= 0 else c_ext
        if is_open and c_end - c_left >= min_width:
            right = min(c_end + c_ext, L)
            k = _emit(row, r, neg, bl, tol, c_pos, c_height,
                      max(c_left - lext, prev_right), right, c_end, k, cap, adc_lo, adc_hi,
                      out)
        if k > k_r:
            t_r = np.int64(time[r])
            dt_r = np.float64(dt[r])
            c_r = channel[r]
            b_r = board[r] if has_board else 0
            for i in range(k_r, min(k, cap)):
                p = out[i]
                p.time = t_r + np.int64(np.rint(p.left * dt_r))
                p.channel = c_r
                p.board = b_r
    return k


watch(globals(), uses=("._peaks_kernels", "._pulse_kernels"))
