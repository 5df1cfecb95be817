"""numba kernels of :func:`waveform_analysis.processing.hits.find_peaks`.

One kernel walks every sample of a record once; ``find_peaks`` calls it on
parts of the records from several threads (it releases the GIL).
"""

from __future__ import annotations

import numba
import numpy as np

NO_HIGH = np.int64(-(1 << 40))
NO_LOW = np.int64(1 << 40)


@numba.njit(cache=True, nogil=True)
def _sum3(row, j, sg):
    """``sg`` x the sum of the 3 samples centred on ``j``."""
    return sg * (np.int64(row[j - 1]) + np.int64(row[j]) + np.int64(row[j + 1]))


@numba.njit(cache=True, nogil=True)
def _emit(row, r, neg, bl, tol, bpos, height, left, right, h_lo, h_hi, top, k, cap, adc_lo,
          adc_hi, o_rec, o_left, o_right, o_pos, o_height, o_area, o_sat):
    """Store one peak: ``bpos`` / ``height`` are its extremum (``tol`` > 0: the position is
    :func:`_position`'s). ``top`` is the largest signed sum of 3 neighbours whose samples all
    lie in ``[h_lo, h_hi)`` (the hit loop keeps it); the windows that reach outside it are
    added here, those beyond ``h_hi`` only when its samples could beat ``top``."""
    if k < cap:
        # the signal sgn * (w - bl) summed over [left, right) and the ADC range it spans,
        # in two vectorised passes: the hit, then its extension
        acc = np.int64(0)
        lo_w = row[left]
        hi_w = row[left]
        for j in range(left, h_hi):
            acc += np.int64(row[j])
            lo_w = min(lo_w, row[j])
            hi_w = max(hi_w, row[j])
        lo_e = row[right - 1]
        hi_e = row[right - 1]
        for j in range(h_hi, right):
            acc += np.int64(row[j])
            lo_e = min(lo_e, row[j])
            hi_e = max(hi_e, row[j])
        if tol > 0.0:
            sg = np.int64(-1 if neg else 1)
            for j in range(left + 1, min(h_lo + 1, right - 1)):
                top = max(top, _sum3(row, j, sg))
            for j in range(max(h_hi - 1, left + 1), min(h_hi + 1, right - 1)):
                top = max(top, _sum3(row, j, sg))
            if 3 * (-np.int64(lo_e) if neg else np.int64(hi_e)) > top:
                for j in range(max(h_hi + 1, left + 1), right - 1):
                    top = max(top, _sum3(row, j, sg))
            bpos = _position(row, neg, bl, tol, left, right, top)
        area = acc - bl * (right - left)
        if neg:
            area = -area
        o_rec[k] = r
        o_left[k] = left
        o_right[k] = right
        o_pos[k] = bpos
        o_height[k] = height
        o_area[k] = area
        o_sat[k] = min(lo_w, lo_e) <= adc_lo or max(hi_w, hi_e) >= adc_hi
    return k + 1


@numba.njit(cache=True, nogil=True)
def _smoothed(row, neg, bl, j, left, right):
    """The signal at ``j`` averaged with its neighbours inside ``[left, right)``."""
    a = max(j - 1, left)
    b = min(j + 2, right)
    acc = 0.0
    for i in range(a, b):
        acc += row[i]
    v = acc / (b - a) - bl
    return -v if neg else v


@numba.njit(cache=True, nogil=True)
def _position(row, neg, bl, tol, left, right, top):
    """The peak's position: the first sample whose 3-sample average comes within ``tol`` /
    sqrt(3) (``tol`` in the noise of the average) of the average's maximum over the peak.
    The average keeps a single noisy sample from being the extremum; the first sample within
    noise keeps a slowly decaying top from putting it anywhere along that top. ``top`` is the
    largest signed sum of 3 neighbours inside the peak, from :func:`_emit`. At the peak's two
    edges the average is of 2 samples. In integers: 6 x the average plus 6 x the signed
    baseline is 2 x a sum of 3 or 3 x a sum of 2, so only the limit is a float."""
    if right - left < 3:
        best = -np.inf
        for j in range(left, right):
            best = max(best, _smoothed(row, neg, bl, j, left, right))
        lim = best - tol / np.sqrt(3.0)
        for j in range(left, right):
            if _smoothed(row, neg, bl, j, left, right) >= lim:
                return j
        return left
    sg = np.int64(-1 if neg else 1)
    first = 3 * sg * (np.int64(row[left]) + np.int64(row[left + 1]))
    last = 3 * sg * (np.int64(row[right - 2]) + np.int64(row[right - 1]))
    need = max(2 * top, first, last) - 6.0 * tol / np.sqrt(3.0)
    if first >= need:
        return left
    s3 = np.int64(row[left]) + np.int64(row[left + 1]) + np.int64(row[left + 2])
    for j in range(left + 1, right - 1):
        if 2 * sg * s3 >= need:
            return j
        if j + 2 < right:
            s3 += np.int64(row[j + 2]) - np.int64(row[j - 1])
    if last >= need:
        return right - 1
    return left


@numba.njit(cache=True, nogil=True)
def _own_noise(row, L, nz, rms, guard, margin, m):
    """The record's noise for its threshold: ``nz`` (its channel's) raised to ``own`` =
    ``margin`` x the lower of its ``rms`` and the RMS of its last ``m`` samples, when that is
    above ``nz`` and at most ``guard`` x ``margin`` x ``nz`` (above: pulses in both windows,
    ``nz`` stands). The last window is read only when ``rms`` allows a raise."""
    if not margin * rms > nz:
        return nz
    k = min(m, L)
    s = np.int64(0)
    s2 = np.int64(0)
    for j in range(L - k, L):
        x = np.int64(row[j])
        s += x
        s2 += x * x
    mu = s / k
    own = margin * min(rms, np.sqrt(max(s2 / k - mu * mu, 0.0)))
    if own > nz and own <= guard * margin * nz:
        return own
    return nz


@numba.njit(cache=True, nogil=True)
def start_levels(flat, stride, offset, ns, length, noise, rec_rms, guard, g_margin, g_window, thresholds,
                 t_sigma, out):
    """Per record, the level beyond its baseline a hit starts at, as :func:`find_hits` takes
    it: ``max(thresholds[r], t_sigma * noise)``, the noise raised by :func:`_own_noise`."""
    for r in range(length.size):
        L = min(length[r], ns)
        nz = noise[r]
        if guard > 0.0 and L > 0:
            row = flat[offset + r * stride : offset + r * stride + ns]
            nz = _own_noise(row, L, nz, rec_rms[r], guard, g_margin, g_window)
        out[r] = max(thresholds[r], t_sigma * nz)


@numba.njit(cache=True, nogil=True)
def _tail_end(row, j, L, neg, bl, lim_sum, w):
    """One past a pulse's slow tail from ``j``: blocks of ``w`` samples while their summed
    signal exceeds ``lim_sum`` (2 sigma of a block's noise). A tail of sparse
    photo-electrons, each below the trigger level, so stays with its pulse and in its area."""
    while j + w <= L:
        acc = np.int64(0)
        for q in range(j, j + w):
            acc += np.int64(row[q])
        sig = bl * w - acc if neg else acc - bl * w
        if sig <= lim_sum:
            break
        j += w
    return j


@numba.njit(cache=True, nogil=True)
def _next_firing(row, j, L, a, neg, block):
    """First sample from ``j`` on at or beyond level ``a`` (``L`` if none).

    Whole quiet blocks first (an int16 min/max each, a vector reduction),
    then single samples. A function of its own so that the compiler
    vectorises the block loop whatever the caller around it does.
    """
    if neg:
        while j + block <= L:
            m = np.int16(32767)
            for q in range(j, j + block):
                m = min(m, row[q])
            if m <= a:
                break
            j += block
        while j < L and row[j] > a:
            j += 1
    else:
        while j + block <= L:
            m = np.int16(-32768)
            for q in range(j, j + block):
                m = max(m, row[q])
            if m >= a:
                break
            j += block
        while j < L and row[j] < a:
            j += 1
    return j


@numba.njit(cache=True, nogil=True)
def find_hits(flat, stride, offset, ns, length, noise, rec_rms, guard, g_margin, g_window, negs, baseline, thresholds,
              t_sigma, r_sigma, p_sigma, s_sigma, s_height, s_frac, tail_block, tail_sigma,
              follow, link, link_width, ring_gap, ring_sigma, ring_frac, merge_gap, lext, rext, tail_ext, min_width, block, adc_lo, adc_hi, lo, hi,
              cap, o_rec, o_left, o_right, o_pos, o_height, o_area, o_sat):
    """Peaks of records [lo, hi); returns how many there are (may exceed ``cap``).

    Record ``r``'s ``ns`` samples are ``flat[offset + r * stride:]`` (see
    :func:`~waveform_analysis.processing.rows.flat_rows`: a slice of one flat
    array is a row numba knows is contiguous, so its scans vectorise).

    Per record, with its ``noise`` raised to its own (``guard`` > 0: ``g_margin``
    x the lower of ``rec_rms`` and the RMS of its last ``g_window`` samples,
    where that is above the channel's and at most ``guard`` x it, see
    :func:`_own_noise`): a hit starts at a sample more than
    ``max(thresholds[r], t_sigma * noise)`` (``negs[r]``: below it) beyond the baseline and lasts while
    the signal is beyond ``min(r_sigma * noise, that)``. Both levels become
    int16 sample values (``sgn * (w - bl) > t`` for an integer ``w`` is
    ``w <= ceil(bl - t) - 1`` negative, ``w >= floor(bl + t) + 1``
    positive), so the scans compare raw samples; a trigger level beyond the
    int16 range on the quiet side (or a NaN baseline) means the record
    cannot fire. ``merge_gap`` / ``rext`` < 0 mean "derived from the hit"
    (its tail extension, at least to the end of its slow tail: blocks of
    ``tail_block`` samples whose sum is beyond ``tail_sigma`` sigma). With a
    derived ``merge_gap``, a later hit whose extremum is below ``s_height``
    x the peak's height and that starts within ``follow`` x the peak's
    length after it continues the peak, and so does one within ``link`` x
    that length, narrower than ``link_width`` x the peak's core (area /
    height above the release level), when the signal summed between them
    is beyond ``tail_sigma`` sigma of that sum's noise. A peak is split at a sample after
    its extremum from which the signal rises within 3 samples by more than
    ``max(trigger, s_sigma * noise)``, more than ``s_frac`` x the level of
    the valley it rises from and more than ``s_height`` x the peak's height
    or above it (a resolvable second pulse; ``s_sigma`` 0: never), once the peak so far
    has reached the trigger level; samples joined by an explicit
    ``merge_gap`` are not split. Ringing: a hit within ``ring_gap`` samples
    of the peak's end that rises out of an opposite swing of at least
    ``ring_sigma`` sigma and ``ring_frac`` x its own height continues the
    peak, and a rise out of such a swing (within ``ring_gap // 2`` samples
    before it) splits nothing.
    """
    k = 0
    for r in range(lo, hi):
        neg = negs[r]
        sg = -1 if neg else 1
        L = min(length[r], ns)
        if L <= 0:
            continue
        r0 = offset + r * stride
        row = flat[r0 : r0 + ns]
        bl = baseline[r]
        nz = noise[r]
        if guard > 0.0:
            nz = _own_noise(row, L, nz, rec_rms[r], guard, g_margin, g_window)
        thr = max(thresholds[r], t_sigma * nz)
        rel = min(r_sigma * nz, thr)
        if neg:
            lev = np.ceil(bl - thr) - 1.0
            rlev = np.ceil(bl - rel) - 1.0
            if not lev >= -32768.0:
                continue
        else:
            lev = np.floor(bl + thr) + 1.0
            rlev = np.floor(bl + rel) + 1.0
            if not lev <= 32767.0:
                continue
        a = np.int16(min(max(lev, -32768.0), 32767.0))
        b = np.int16(min(max(rlev, -32768.0), 32767.0))
        tol = p_sigma * nz
        tail_lim = tail_sigma * nz * np.sqrt(tail_block)
        # as an integer: x - low > floor(R) is x - low > R
        big_rise = NO_LOW
        if s_sigma > 0.0:
            big_rise = np.int64(np.floor(min(max(thr, s_sigma * nz), 1e12)))
        sa = sg * np.int64(a)
        sb = sg * np.int64(b)
        sbl = sg * bl
        is_open = False
        exempt = -1  # no split from a sample up to here (explicit merge_gap, or split)
        c_left = 0  # first sample of the open hit (after the left walk)
        c_end = 0  # one past its last sample beyond the release level
        c_sum = np.int64(0)  # x summed over [c_left, c_end)
        c_top = NO_HIGH  # largest sum of 3 neighbouring x inside [c_left, c_end)
        c_x1 = NO_HIGH  # the last two x of the hit
        c_x2 = NO_HIGH
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
                while q < L and sg * np.int64(row[q]) >= sb:
                    hf = max(hf, sg * np.int64(row[q]))
                    af += sg * np.int64(row[q])
                    q += 1
                merge = near and hf - sbl < s_height * c_height
                # narrower than link_width x the peak's core (area / height): photo-electrons,
                # not a new pulse of the detector's own shape
                narrow = (af - sbl * (q - s)) < link_width * (hf - sbl) * c_area / max(c_height, 1e-9)
                if (not merge and far and narrow and tail_block > 0 and nz > 0.0
                        and hf - sbl < s_height * c_height):
                    # a small follower further on, joined to the peak by significant light
                    # (the slow tail's photo-electrons between them): the same pulse
                    g0 = min(c_end + c_ext, s)
                    acc = np.int64(0)
                    for q in range(g0, s):
                        acc += np.int64(row[q])
                    gsig = sg * acc - sbl * (s - g0)
                    merge = s > g0 and gsig > tail_sigma * nz * np.sqrt(s - g0)
                if not merge and s - c_end <= ring_gap:
                    # it rises out of an opposite swing at least ring_frac x its own height
                    # (and ring_sigma sigma) right after the peak: an oscillation, one burst
                    lowest = NO_LOW
                    for q in range(c_end, s):
                        lowest = min(lowest, sg * np.int64(row[q]))
                    depth = sbl - lowest
                    merge = depth >= ring_sigma * nz and depth >= ring_frac * (hf - sbl)
            if not merge:
                if is_open and c_end - c_left >= min_width:
                    right = min(c_end + c_ext, s, L)
                    k = _emit(row, r, neg, bl, tol, c_pos, c_height,
                              max(c_left - lext, prev_right), right, c_left, c_end, c_top,
                              k, cap, adc_lo, adc_hi,
                              o_rec, o_left, o_right, o_pos, o_height, o_area, o_sat)
                    prev_right = right
                # walk left over the samples beyond the release level
                q = s
                if neg:
                    while q > prev_right and row[q - 1] <= b:
                        q -= 1
                else:
                    while q > prev_right and row[q - 1] >= b:
                        q -= 1
                is_open = True
                c_left = q
                c_end = q
                c_sum = np.int64(0)
                c_top = NO_HIGH
                c_x1 = NO_HIGH
                c_x2 = NO_HIGH
                c_high = NO_HIGH
                c_low = NO_LOW
            # accumulate from the end of the hit so far (the gap, for a merge) to the
            # trigger, then on while the signal stays beyond the release level
            # (hysteresis: the hit ends only where the signal falls back to it)
            if merge and merge_gap >= 0:
                exempt = s
            while c_end < L and (c_end <= s or sg * np.int64(row[c_end]) >= sb):
                # integer arithmetic on x = sg * sample (the signal plus sg * baseline)
                x = sg * np.int64(row[c_end])
                # c_low (lowest x since the extremum) makes the check below rare
                if (x - c_low > big_rise and c_high >= sa
                        and x - c_low > s_frac * (c_low - sbl)
                        and (x - c_low > s_height * (c_high - sbl) or x > c_high)):
                    q0 = max(c_end - 3, c_pos + 1, exempt + 1, c_left)
                    # a rise of more than big_rise from one of the last 3 samples after
                    # the extremum: a second pulse starts at that sample
                    mv = x
                    mp = -1
                    for q in range(q0, c_end):
                        xq = sg * np.int64(row[q])
                        if xq < mv:
                            mv = xq
                            mp = q
                    # a rise out of an opposite swing (ringing, as for a follower) within a
                    # quarter of the longest ringing period before it is no pulse
                    deep = mv
                    for q in range(max(c_end - ring_gap // 2, c_left), q0):
                        deep = min(deep, sg * np.int64(row[q]))
                    swing = sbl - deep >= ring_sigma * nz and sbl - deep >= ring_frac * (x - sbl)
                    if mp >= 0 and x - mv > big_rise and x - mv > s_frac * (mv - sbl) and not swing:
                        if mp - c_left >= min_width:
                            # the hit loop's windows ran past mp: all of them anew
                            lft = max(c_left - lext, prev_right)
                            k = _emit(row, r, neg, bl, tol, c_pos, c_high - sbl, lft, mp,
                                      lft, lft, NO_HIGH, k, cap, adc_lo,
                                      adc_hi, o_rec, o_left, o_right, o_pos, o_height, o_area,
                                      o_sat)
                            prev_right = mp
                        exempt = c_end - 1  # the rise just seen splits once
                        c_left = mp
                        c_end = mp
                        c_sum = np.int64(0)
                        c_top = NO_HIGH
                        c_x1 = NO_HIGH
                        c_x2 = NO_HIGH
                        c_high = NO_HIGH
                        c_low = NO_LOW
                        continue
                c_sum += x
                # the 3-sample window ending here (the position's; NO_HIGH before the hit)
                c_top = max(c_top, x + c_x1 + c_x2)
                c_x2 = c_x1
                c_x1 = x
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
                      max(c_left - lext, prev_right), right, c_left, c_end, c_top,
                      k, cap, adc_lo, adc_hi,
                      o_rec, o_left, o_right, o_pos, o_height, o_area, o_sat)
    return k

