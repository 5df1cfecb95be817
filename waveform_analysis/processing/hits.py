"""Hit finding: peaks above a noise-following threshold over each record's baseline.

Baselines (:func:`baseline_stats`): the mean and RMS of the first
``baseline_samples`` samples of each record. A record whose first window is
far noisier than, or far from the level of, its own quiet windows holds a
pulse there; its baseline is taken from those quiet windows instead
(``baseline_rms`` still reports the first window, so the record stays
visible). The run's noise per (board, channel) is the median of the
``baseline_rms`` values.

Peaks (:func:`find_peaks`): one numba kernel walks every sample once. A hit
starts where the signal exceeds ``max(threshold, threshold_sigma * noise)``
and ends only where it falls back to ``release_sigma * noise`` (hysteresis),
walking left the same way. Its bounds are extended by ``left_extension``
samples before and, after the release, by ``tail_extension`` times the hit's
effective width (area / height, the decay constant of an exponential tail),
so the extension follows the pulse shape instead of a constant. A new hit
starting inside that extension continues the same peak, unless the signal
rises fast after the peak's extremum (a second pulse: the peak is split at
the valley). ``position`` is the first sample within a few noise sigma of
the extremum. Records are split across threads (the kernel releases the
GIL). docs/physics.md has the reasons and the measurements.
"""

from __future__ import annotations

import numba
import numpy as np

from .. import hit_defaults as _d
from ..daq._threads import n_threads, thread_map
from ..dtypes import PEAKS_DTYPE
from ..errors import ConfigError
from ._common import polarity_sign

DEFAULT_THRESHOLD = _d.THRESHOLD
DEFAULT_THRESHOLD_SIGMA = _d.THRESHOLD_SIGMA
DEFAULT_RELEASE_SIGMA = _d.RELEASE_SIGMA
DEFAULT_TAIL_EXTENSION = _d.TAIL_EXTENSION
DEFAULT_POSITION_SIGMA = _d.POSITION_SIGMA
DEFAULT_SPLIT_SIGMA = _d.SPLIT_SIGMA
DEFAULT_LEFT_EXTENSION = _d.LEFT_EXTENSION
DEFAULT_MERGE_GAP = _d.MERGE_GAP
DEFAULT_RIGHT_EXTENSION = _d.RIGHT_EXTENSION
ADC_MIN = 0
ADC_MAX = (1 << 14) - 1


@numba.njit(cache=True, nogil=True)
def _emit(row, r, neg, bl, tol, start, bpos, height, left, right, k, cap, adc_lo, adc_hi,
          o_rec, o_left, o_right, o_pos, o_height, o_area, o_sat):
    """Store one peak: ``bpos`` / ``height`` are its extremum, ``start`` its first core sample."""
    if k < cap:
        if tol > 0.0:
            # position: the first sample within tol of the extremum; on a slowly
            # decaying top, noise alone would put the extremum anywhere along it
            for j in range(start, bpos):
                v = bl - row[j] if neg else row[j] - bl
                if v >= height - tol:
                    bpos = j
                    break
        # signal sgn * (w - bl) summed over [left, right); the ADC range it spans
        acc = np.int64(0)
        lo_w = row[left]
        hi_w = row[left]
        for j in range(left, right):
            acc += np.int64(row[j])
            lo_w = min(lo_w, row[j])
            hi_w = max(hi_w, row[j])
        area = acc - bl * (right - left)
        if neg:
            area = -area
        o_rec[k] = r
        o_left[k] = left
        o_right[k] = right
        o_pos[k] = bpos
        o_height[k] = height
        o_area[k] = area
        o_sat[k] = lo_w <= adc_lo or hi_w >= adc_hi
    return k + 1


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


NO_HIGH = np.int64(-(1 << 40))
NO_LOW = np.int64(1 << 40)

# Quiet stretches are skipped this many samples at a time (one int16 min/max each).
# Passed at run time: a constant trip count gets unrolled into scalar code
# instead of a vector reduction.
_BLOCK = 32


@numba.njit(cache=True, nogil=True)
def _find_hits(wave, length, noise, neg, baseline, threshold, t_sigma, r_sigma, p_sigma, s_sigma,
               merge_gap, lext, rext, tail_ext, min_width, block, adc_lo, adc_hi, lo, hi, cap,
               o_rec, o_left, o_right, o_pos, o_height, o_area, o_sat):
    """Peaks of records [lo, hi); returns how many there are (may exceed ``cap``).

    Per record, with its ``noise``: a hit starts at a sample more than
    ``max(threshold, t_sigma * noise)`` beyond the baseline and lasts while
    the signal is beyond ``min(r_sigma * noise, that)``. Both levels become
    int16 sample values (``sgn * (w - bl) > t`` for an integer ``w`` is
    ``w <= ceil(bl - t) - 1`` negative, ``w >= floor(bl + t) + 1``
    positive), so the scans compare raw samples; a trigger level beyond the
    int16 range on the quiet side (or a NaN baseline) means the record
    cannot fire. ``merge_gap`` / ``rext`` < 0 mean "derived from the hit"
    (its tail extension). A peak is split at a sample after its extremum
    from which the signal rises by more than ``max(trigger, s_sigma *
    noise)`` within 3 samples (a second pulse; ``s_sigma`` 0: never), once
    the peak so far has reached the trigger level; samples joined by an
    explicit ``merge_gap`` are not split.
    """
    sg = -1 if neg else 1
    ns = wave.shape[1]
    k = 0
    for r in range(lo, hi):
        L = min(length[r], ns)
        if L <= 0:
            continue
        bl = baseline[r]
        nz = noise[r]
        thr = max(threshold, t_sigma * nz)
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
        # as an integer: x - low > floor(R) is x - low > R
        big_rise = NO_LOW
        if s_sigma > 0.0:
            big_rise = np.int64(np.floor(min(max(thr, s_sigma * nz), 1e12)))
        sa = sg * np.int64(a)
        sb = sg * np.int64(b)
        sbl = sg * bl
        row = wave[r]
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
            if not merge:
                if is_open and c_end - c_left >= min_width:
                    right = min(c_end + c_ext, s, L)
                    k = _emit(row, r, neg, bl, tol, c_left, c_pos, c_height,
                              max(c_left - lext, prev_right), right, k, cap, adc_lo, adc_hi,
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
                if x - c_low > big_rise and c_high >= sa:
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
                    if mp >= 0 and x - mv > big_rise:
                        if mp - c_left >= min_width:
                            k = _emit(row, r, neg, bl, tol, c_left, c_pos, c_high - sbl,
                                      max(c_left - lext, prev_right), mp, k, cap, adc_lo,
                                      adc_hi, o_rec, o_left, o_right, o_pos, o_height, o_area,
                                      o_sat)
                            prev_right = mp
                        exempt = c_end - 1  # the rise just seen splits once
                        c_left = mp
                        c_end = mp
                        c_sum = np.int64(0)
                        c_high = NO_HIGH
                        c_low = NO_LOW
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
            else:
                c_ext = 0
            c_gap = merge_gap if merge_gap >= 0 else c_ext
        if is_open and c_end - c_left >= min_width:
            right = min(c_end + c_ext, L)
            k = _emit(row, r, neg, bl, tol, c_left, c_pos, c_height,
                      max(c_left - lext, prev_right), right, k, cap, adc_lo, adc_hi,
                      o_rec, o_left, o_right, o_pos, o_height, o_area, o_sat)
    return k


def _alloc(n: int) -> tuple[np.ndarray, ...]:
    return (
        np.empty(n, np.int64), np.empty(n, np.int32), np.empty(n, np.int32),
        np.empty(n, np.int32), np.empty(n, np.float32), np.empty(n, np.float32),
        np.empty(n, np.bool_),
    )


def _contiguous_rows(st_waveforms: np.ndarray) -> np.ndarray:
    """The ``wave`` field as a 2-D array whose rows are C-contiguous (no copy when possible).

    A field of a structured array is strided; viewing the records as int16
    rows and slicing the wave columns gives rows numba can vectorise over.
    """
    wave = st_waveforms["wave"]
    if wave.ndim == 1:
        wave = wave[:, None]
    offset = st_waveforms.dtype.fields["wave"][1]
    item = st_waveforms.dtype.itemsize
    if (
        st_waveforms.flags.c_contiguous
        and item % 2 == 0
        and offset % 2 == 0
        and st_waveforms.dtype.fields["wave"][0].base == np.dtype(np.int16)
    ):
        flat = st_waveforms.view(np.int16).reshape(len(st_waveforms), item // 2)
        return flat[:, offset // 2 : offset // 2 + wave.shape[1]]
    return np.ascontiguousarray(wave)


def _channel_keys(st_waveforms: np.ndarray) -> np.ndarray:
    names = st_waveforms.dtype.names
    board = st_waveforms["board"] if "board" in names else np.zeros(len(st_waveforms), np.int16)
    return channel_keys(board, st_waveforms["channel"])


def channel_keys(board: np.ndarray, channel: np.ndarray) -> np.ndarray:
    """One int64 per record naming its (board, channel), for per-channel statistics."""
    return (np.asarray(board).astype(np.int64) << 16) | (np.asarray(channel).astype(np.int64) & 0xFFFF)


@numba.njit(cache=True, nogil=True)
def _group_percentile(inv, values, n_groups, q, out):
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


def _per_channel_stat(keys: np.ndarray, values: np.ndarray, q: float = 50.0) -> np.ndarray:
    """For each record, the ``q``-th percentile of ``values`` over the records with its key."""
    out = np.empty(values.size, np.float64)
    k0 = int(keys.min())
    span = int(keys.max()) - k0
    if span < 1 << 16:  # the usual case: one board, a few channels; no sort needed
        inv = keys - k0
        n_groups = span + 1
    else:
        uniq, inv = np.unique(keys, return_inverse=True)
        n_groups = uniq.size
    _group_percentile(np.ascontiguousarray(inv, dtype=np.int64),
                      np.ascontiguousarray(values, dtype=np.float64), n_groups, float(q), out)
    return out


def channel_noise(st_waveforms: np.ndarray) -> np.ndarray:
    """Per record, the noise of its (board, channel): the median ``baseline_rms`` [ADC].

    The median over the records makes one record with a pulse in its
    baseline window (a large RMS) no matter. Records without a
    ``baseline_rms`` field, or with values that are not finite, count as 0.
    """
    n = len(st_waveforms)
    if n == 0 or "baseline_rms" not in (st_waveforms.dtype.names or ()):
        return np.zeros(n, np.float64)
    return noise_from(_channel_keys(st_waveforms), st_waveforms["baseline_rms"])


def noise_from(keys: np.ndarray, baseline_rms: np.ndarray) -> np.ndarray:
    """:func:`channel_noise` from the records' channel ``keys`` and ``baseline_rms`` alone."""
    if baseline_rms.size == 0:
        return np.zeros(0, np.float64)
    rms = np.asarray(baseline_rms, dtype=np.float64)
    rms = np.where(rms > 0, rms, 0.0)  # NaN compares false
    rms[rms == np.inf] = 0.0
    return _per_channel_stat(keys, rms)


def find_peaks(
    st_waveforms: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    polarity: str = "negative",
    merge_gap: int | None = DEFAULT_MERGE_GAP,
    left_extension: int = DEFAULT_LEFT_EXTENSION,
    right_extension: int | None = DEFAULT_RIGHT_EXTENSION,
    min_width: int = 1,
    threshold_sigma: float = DEFAULT_THRESHOLD_SIGMA,
    release_sigma: float = DEFAULT_RELEASE_SIGMA,
    tail_extension: float = DEFAULT_TAIL_EXTENSION,
    position_sigma: float = DEFAULT_POSITION_SIGMA,
    split_sigma: float = DEFAULT_SPLIT_SIGMA,
    noise: np.ndarray | None = None,
) -> np.ndarray:
    """Peaks of every record of ``st_waveforms`` as ``PEAKS_DTYPE``.

    ``noise`` is the record's (board, channel) noise, :func:`channel_noise`
    (0 where ``baseline_rms`` is 0 or missing); pass it, one value per
    record, when ``st_waveforms`` is a slice of a run whose noise was
    measured over all of it. A hit starts at a sample more
    than ``max(threshold, threshold_sigma * noise)`` ADC beyond the record's
    ``baseline`` (below it for ``polarity="negative"``) and extends, on both
    sides, over the samples more than ``release_sigma * noise`` beyond it.
    After the hit, ``right_extension`` samples are added (``None``: derived,
    ``ceil(tail_extension * area / height)`` of the hit, which for an
    exponential tail is ``tail_extension`` decay constants); a hit starting
    within ``merge_gap`` samples (``None``: within that extension) of the end
    of the previous one continues its peak. ``left_extension`` samples are
    added before; bounds are clipped to the record and to the neighbouring
    peaks; ``area`` sums the signal over ``[left, right)``. Hits with fewer
    than ``min_width`` samples beyond the release level are dropped.
    ``saturated`` is true when a sample of ``[left, right)`` is at the ADC's
    limit (0 or 2^14 - 1). ``position`` is the first sample within
    ``position_sigma * noise`` of the extremum (the extremum itself when the
    noise is 0); ``height`` is the extremum. A peak is split where, after
    its extremum, the signal rises within 3 samples by more than
    ``max(threshold level, split_sigma * noise)``: a second pulse on the
    tail of the first (``split_sigma=0``: never; hits joined by an explicit
    ``merge_gap`` are not split).

    Why these defaults (docs/physics.md has the measurements): ``5 sigma``
    gives ~0.5 false peaks per 1,000 noise-only 800-sample records; the
    8 ADC floor keeps quantised, nearly noiseless channels from firing; a
    release at 1 sigma ends the hit where the tail has reached the noise, so
    noise re-crossing the trigger level on a long tail cannot start a second
    peak; 2 decay constants after the release leave ~0.2-0.4 % of the area
    out, and longer extensions sum more noise; a 7 sigma rise within 3
    samples is a second pulse, not noise on a tail.

    Raises :class:`ConfigError` for an unknown polarity or negative settings.
    """
    sgn = polarity_sign(polarity)
    if merge_gap is not None and merge_gap < 0:
        raise ConfigError(f"merge_gap must be >= 0 or None, got {merge_gap}")
    if right_extension is not None and right_extension < 0:
        raise ConfigError(f"right_extension must be >= 0 or None, got {right_extension}")
    if left_extension < 0 or min_width < 1:
        raise ConfigError(
            f"left_extension must be >= 0 and min_width >= 1, got {left_extension}, {min_width}"
        )
    for name, value in (("threshold", threshold), ("threshold_sigma", threshold_sigma),
                        ("release_sigma", release_sigma), ("tail_extension", tail_extension),
                        ("position_sigma", position_sigma), ("split_sigma", split_sigma)):
        if not value >= 0:
            raise ConfigError(f"{name} must be >= 0, got {value!r}")
    n = len(st_waveforms)
    if n == 0:
        return np.zeros(0, dtype=PEAKS_DTYPE)
    wave = _contiguous_rows(st_waveforms)
    baseline = np.ascontiguousarray(st_waveforms["baseline"], dtype=np.float64)
    if noise is None:
        noise = channel_noise(st_waveforms)
    else:
        noise = np.ascontiguousarray(noise, dtype=np.float64)
        if noise.shape != (n,):
            raise ConfigError(f"noise must hold one value per record ({n}), got shape {noise.shape}")
    length = np.ascontiguousarray(st_waveforms["length"], dtype=np.int64)
    neg = sgn < 0
    args = (
        float(threshold), float(threshold_sigma), float(release_sigma), float(position_sigma),
        float(split_sigma), -1 if merge_gap is None else int(merge_gap), int(left_extension),
        -1 if right_extension is None else int(right_extension), float(tail_extension),
        int(min_width), _BLOCK, ADC_MIN, ADC_MAX,
    )

    def run(bounds):
        lo, hi = bounds
        cap = 4 * (hi - lo) + 16
        out = _alloc(cap)
        k = _find_hits(wave, length, noise, neg, baseline, *args, lo, hi, cap, *out)
        if k > cap:
            out = _alloc(k)
            _find_hits(wave, length, noise, neg, baseline, *args, lo, hi, k, *out)
        return tuple(a[:k] for a in out)

    # a few chunks per thread, so a thread slowed by other load does not hold up the rest
    parts = max(1, min(4 * n_threads(), n // 2000)) if n >= 4000 else 1
    edges = np.linspace(0, n, parts + 1).astype(np.int64)
    chunks = thread_map(run, list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True)))
    rec, left, right, pos, height, area, sat = (
        np.concatenate([c[i] for c in chunks]) for i in range(7)
    )
    peaks = np.empty(rec.size, dtype=PEAKS_DTYPE)
    peaks["record_i"] = rec
    peaks["channel"] = st_waveforms["channel"][rec]
    # in integers: a float sum would round an absolute time (~10^18 ns) to 256 ns
    peaks["time"] = st_waveforms["time"][rec] + np.rint(left * st_waveforms["dt"][rec]).astype(np.int64)
    peaks["position"] = pos
    peaks["left"] = left
    peaks["right"] = right
    peaks["height"] = height
    peaks["area"] = area
    peaks["width"] = right - left
    names = st_waveforms.dtype.names
    peaks["board"] = st_waveforms["board"][rec] if "board" in names else 0
    peaks["saturated"] = sat
    return peaks


@numba.njit(cache=True, nogil=True)
def _window(row, p, m):
    """Mean and RMS (about the mean) of ``row[p:p + m]``."""
    s = 0.0
    for j in range(p, p + m):
        s += row[j]
    mu = s / m
    v = 0.0
    for j in range(p, p + m):
        d = row[j] - mu
        v += d * d
    return mu, np.sqrt(v / m)


@numba.njit(cache=True, nogil=True)
def _end_windows(wave, length, nb, mean, rms, last_rms):
    """Mean and RMS of the first ``min(nb, length)`` samples of each record; RMS of the last."""
    ns = wave.shape[1]
    for r in range(wave.shape[0]):
        L = min(max(length[r], 1), ns)
        m = min(nb, L)
        mean[r], rms[r] = _window(wave[r], 0, m)
        last_rms[r] = _window(wave[r], L - m, m)[1]


@numba.njit(cache=True, nogil=True)
def _recheck(wave, length, nb, rows, mean, contaminated):
    """Judge the first window of each record in ``rows`` against the record's quiet windows.

    The record is cut into windows of ``nb`` samples. The quiet windows are
    those whose RMS is at most ``1.5 x`` the smallest plus 0.5 ADC; their
    median RMS and median mean are the record's reference noise and level.
    The first window is contaminated when its RMS exceeds twice the
    reference noise, or when its mean is more than 3 reference noise from
    the reference level and its RMS 1.25 x above the reference noise (a slow
    tail shifts the mean more than the RMS); the ADC offsets keep quantised,
    nearly noiseless records from counting. A contaminated record's
    ``mean`` becomes the reference level.
    """
    ns = wave.shape[1]
    cap = ns // max(nb, 1) + 1
    w_mean = np.empty(cap)
    w_rms = np.empty(cap)
    q_mean = np.empty(cap)
    q_rms = np.empty(cap)
    for i in range(rows.size):
        r = rows[i]
        L = min(max(length[r], 1), ns)
        m = min(nb, L)
        nw = L // m
        if nw < 2:
            continue
        for w in range(nw):
            w_mean[w], w_rms[w] = _window(wave[r], w * m, m)
        lowest = w_rms[0]
        for w in range(1, nw):
            lowest = min(lowest, w_rms[w])
        cut = 1.5 * lowest + 0.5
        nq = 0
        for w in range(nw):
            if w_rms[w] <= cut:
                q_mean[nq] = w_mean[w]
                q_rms[nq] = w_rms[w]
                nq += 1
        level = np.median(q_mean[:nq])
        noise = np.median(q_rms[:nq])
        # the level test needs some excess RMS too: on a record covered by slow
        # tails the quiet windows' level can itself be off while the first is clean
        if w_rms[0] > 2.0 * noise + 0.5 or (
            abs(w_mean[0] - level) > 3.0 * noise + 0.5 and w_rms[0] > 1.25 * noise + 0.25
        ):
            contaminated[r] = True
            mean[r] = level


def baseline_stats(
    st_waveforms: np.ndarray, baseline_samples: int = 40
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(baseline, baseline_rms, contaminated)`` of each record.

    ``baseline_rms`` (float32) is the RMS about its mean of the first
    ``baseline_samples`` valid samples. ``contaminated`` marks records whose
    first window holds a pulse, judged against the record's own quiet
    windows of the same size (RMS above twice theirs, or mean more than 3
    of their RMS from theirs): their ``baseline`` (float64) is the median
    level of the quiet windows; every other record's baseline is the plain
    mean of its first window. A contaminated record stays visible through
    its large ``baseline_rms``.

    Only records whose first-window RMS is above 1.25 x the lower of their
    last window's and the lower quartile of their (board, channel)'s (a few
    percent of clean records) are read whole, so the cost stays that of the
    two end windows.
    """
    if baseline_samples < 1:
        raise ConfigError(f"baseline_samples must be >= 1, got {baseline_samples}")
    if len(st_waveforms) == 0:
        return np.zeros(0, np.float64), np.zeros(0, np.float32), np.zeros(0, bool)
    mean, rms, last = end_window_stats(st_waveforms, baseline_samples)
    low = recheck_levels(_channel_keys(st_waveforms), rms, last)
    contaminated = finish_baselines(st_waveforms, baseline_samples, mean, rms, low)
    return mean, rms.astype(np.float32), contaminated


def end_window_stats(
    st_waveforms: np.ndarray, baseline_samples: int = 40
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per record (float64): mean and RMS of the first window, RMS of the last window.

    The first phase of :func:`baseline_stats`; it needs nothing but the record,
    so a run read in blocks computes it block by block."""
    n = len(st_waveforms)
    wave = _contiguous_rows(st_waveforms)
    length = np.ascontiguousarray(st_waveforms["length"], dtype=np.int64)
    nb = int(min(baseline_samples, wave.shape[1]))
    mean = np.empty(n, np.float64)
    rms = np.empty(n, np.float64)
    last = np.empty(n, np.float64)
    if n:
        _end_windows(wave, length, nb, mean, rms, last)
    return mean, rms, last


def recheck_levels(keys: np.ndarray, rms: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Per record, the RMS level above which its first window is checked for a pulse.

    The lower of the record's last-window RMS and the lower quartile of the
    first-window RMS of its (board, channel) over the whole run (``keys`` as
    :func:`_channel_keys` makes them)."""
    if rms.size == 0:
        return np.zeros(0, np.float64)
    return np.minimum(last, _per_channel_stat(keys, rms, 25.0))


def finish_baselines(
    st_waveforms: np.ndarray, baseline_samples: int, mean: np.ndarray, rms: np.ndarray,
    low: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """Re-judge the records whose first-window ``rms`` is above ``1.25 x low``; ``mean`` is
    updated in place for those with a pulse there. Returns the ``contaminated`` mask.

    The last phase of :func:`baseline_stats`; per record, so it runs on any
    slice of a run once :func:`recheck_levels` has seen all of it."""
    n = len(st_waveforms)
    contaminated = np.zeros(n, np.bool_)
    rows = np.flatnonzero(rms > 1.25 * low + 0.25).astype(np.int64)
    if rows.size:
        wave = _contiguous_rows(st_waveforms)
        length = np.ascontiguousarray(st_waveforms["length"], dtype=np.int64)
        nb = int(min(baseline_samples, wave.shape[1]))
        _recheck(wave, length, nb, rows, mean, contaminated)
    return contaminated


def compute_baselines(st_waveforms: np.ndarray, baseline_samples: int = 40) -> np.ndarray:
    """Baseline of each record (float64): :func:`baseline_stats`'s first element.

    The mean of the first ``baseline_samples`` valid samples, except for
    records whose window holds a pulse (see :func:`baseline_stats`).
    """
    return baseline_stats(st_waveforms, baseline_samples)[0]


def set_baselines(st_waveforms: np.ndarray, baseline_samples: int = 40) -> np.ndarray:
    """Fill ``baseline`` and ``baseline_rms`` of ``st_waveforms`` in place; returns it."""
    baseline, rms, _ = baseline_stats(st_waveforms, baseline_samples)
    st_waveforms["baseline"] = baseline
    if "baseline_rms" in st_waveforms.dtype.names:
        st_waveforms["baseline_rms"] = rms
    return st_waveforms
