"""Hit finding: peaks above a threshold over each record's baseline.

One numba kernel walks every sample once: it finds runs of samples above
threshold, merges runs separated by fewer than ``merge_gap`` samples, extends
the bounds by ``left_extension`` / ``right_extension`` (clipped to the record
and to the neighbouring peaks) and measures height, position and area.
Records are split across threads (the kernel releases the GIL).
"""

from __future__ import annotations

import numba
import numpy as np

from ..daq._threads import n_threads, thread_map
from ..dtypes import PEAKS_DTYPE
from ..errors import ConfigError
from ._common import polarity_sign

DEFAULT_MERGE_GAP = 10
DEFAULT_LEFT_EXTENSION = 2
DEFAULT_RIGHT_EXTENSION = 20


@numba.njit(cache=True, nogil=True)
def _emit(row, r, neg, bl, start, end, left, right, k, cap,
          o_rec, o_left, o_right, o_pos, o_height, o_area):
    if k < cap:
        # extremum: the first most negative (most positive) sample of [start, end)
        bpos = start
        ext = row[start]
        if neg:
            for j in range(start + 1, end):
                if row[j] < ext:
                    ext = row[j]
                    bpos = j
        else:
            for j in range(start + 1, end):
                if row[j] > ext:
                    ext = row[j]
                    bpos = j
        # signal sgn * (w - bl), summed in sample order
        area = 0.0
        if neg:
            for j in range(left, right):
                area += bl - row[j]
            height = bl - ext
        else:
            for j in range(left, right):
                area += row[j] - bl
            height = ext - bl
        o_rec[k] = r
        o_left[k] = left
        o_right[k] = right
        o_pos[k] = bpos
        o_height[k] = height
        o_area[k] = area
    return k + 1


# Quiet stretches are skipped this many samples at a time (one int16 min/max each).
# Passed at run time: a constant trip count gets unrolled into scalar code
# instead of a vector reduction.
_BLOCK = 32


@numba.njit(cache=True, nogil=True)
def _find_hits(wave, length, level, neg, baseline, merge_gap, lext, rext, min_width, block,
               lo, hi, cap, o_rec, o_left, o_right, o_pos, o_height, o_area):
    """Peaks of records [lo, hi); returns how many there are (may exceed ``cap``).

    A sample fires when ``wave <= level`` (``neg``) or ``wave >= level``
    (otherwise); ``level`` is int16, so the scan compares raw samples.
    Records that cannot fire have ``length`` 0.
    """
    k = 0
    for r in range(lo, hi):
        L = length[r]
        if L <= 0:
            continue
        a = level[r]
        bl = baseline[r]
        row = wave[r]
        cur_start = -1
        cur_end = -1
        prev_right = 0
        j = 0
        while j < L:
            # next firing sample: whole quiet blocks first, then single samples
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
            if j >= L:
                break
            s = j
            j += 1
            if neg:
                while j < L and row[j] <= a:
                    j += 1
            else:
                while j < L and row[j] >= a:
                    j += 1
            # run of firing samples [s, j)
            if cur_start >= 0 and s - cur_end < merge_gap:
                cur_end = j
            else:
                if cur_start >= 0 and cur_end - cur_start >= min_width:
                    left = max(cur_start - lext, prev_right)
                    right = min(cur_end + rext, s, L)
                    k = _emit(row, r, neg, bl, cur_start, cur_end, left, right, k, cap,
                              o_rec, o_left, o_right, o_pos, o_height, o_area)
                    prev_right = right
                cur_start = s
                cur_end = j
        if cur_start >= 0 and cur_end - cur_start >= min_width:
            left = max(cur_start - lext, prev_right)
            right = min(cur_end + rext, L)
            k = _emit(row, r, neg, bl, cur_start, cur_end, left, right, k, cap,
                      o_rec, o_left, o_right, o_pos, o_height, o_area)
    return k


def _trigger_levels(
    baseline: np.ndarray, length: np.ndarray, n_samples: int, sgn: int, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per record the int16 level a sample must reach and the samples to scan.

    ``sgn * (w - baseline) > threshold`` for an integer ``w`` is
    ``w <= ceil(baseline - threshold) - 1`` (negative) or
    ``w >= floor(baseline + threshold) + 1`` (positive). A level beyond the
    int16 range on the quiet side means no sample can fire: that record's
    length becomes 0; beyond it on the other side every sample fires, which
    the clipped level keeps.
    """
    lim = np.minimum(length, n_samples).astype(np.int64)
    with np.errstate(invalid="ignore"):
        if sgn < 0:
            lev = np.ceil(baseline - threshold) - 1.0
            never = ~(lev >= -32768.0)
        else:
            lev = np.floor(baseline + threshold) + 1.0
            never = ~(lev <= 32767.0)
        level = np.clip(np.nan_to_num(lev), -32768, 32767).astype(np.int16)
    lim[never] = 0
    return level, lim


def _alloc(n: int) -> tuple[np.ndarray, ...]:
    return (
        np.empty(n, np.int64), np.empty(n, np.int32), np.empty(n, np.int32),
        np.empty(n, np.int32), np.empty(n, np.float32), np.empty(n, np.float32),
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


def find_peaks(
    st_waveforms: np.ndarray,
    threshold: float,
    polarity: str = "negative",
    merge_gap: int = DEFAULT_MERGE_GAP,
    left_extension: int = DEFAULT_LEFT_EXTENSION,
    right_extension: int = DEFAULT_RIGHT_EXTENSION,
    min_width: int = 1,
) -> np.ndarray:
    """Peaks of every record of ``st_waveforms`` as ``PEAKS_DTYPE``.

    A hit is a run of samples more than ``threshold`` ADC above the record's
    ``baseline`` (below it for ``polarity="negative"``). Runs separated by
    fewer than ``merge_gap`` samples are one peak; runs shorter than
    ``min_width`` samples are dropped. Bounds are extended by
    ``left_extension`` samples before the first and ``right_extension`` after
    the last sample above threshold, clipped to the record and to the
    neighbouring peaks; ``area`` sums the signal over ``[left, right)``.

    Defaults, for PMT pulses with a ~1 sample rise and a ~4 sample (8 ns at
    2 ns/sample) exponential tail and ~3 ADC noise:

    * ``merge_gap=10``: where the tail crosses the threshold, noise makes it
      cross back and forth for a few samples (the tail spends ~3 samples within
      +-2 sigma of the threshold); 10 samples absorbs that, so one pulse is one
      peak, while separate pulses are normally tens of samples apart.
    * ``left_extension=2``: the rise is fast; two samples before the first
      crossing hold the leading edge (Gaussian rise sigma ~1 sample).
    * ``right_extension=20``: the tail left below threshold holds
      ``exp(-t/tau)`` of the area; 20 samples (5 tau) after the last crossing
      leave under 1 % of it out.

    Raises :class:`ConfigError` for an unknown polarity or negative settings.
    """
    sgn = polarity_sign(polarity)
    if merge_gap < 0 or left_extension < 0 or right_extension < 0 or min_width < 1:
        raise ConfigError(
            "merge_gap, left_extension and right_extension must be >= 0 and min_width >= 1"
        )
    n = len(st_waveforms)
    if n == 0:
        return np.zeros(0, dtype=PEAKS_DTYPE)
    wave = _contiguous_rows(st_waveforms)
    baseline = np.ascontiguousarray(st_waveforms["baseline"], dtype=np.float64)
    level, length = _trigger_levels(
        baseline, np.asarray(st_waveforms["length"]), wave.shape[1], sgn, float(threshold)
    )
    neg = sgn < 0
    args = (int(merge_gap), int(left_extension), int(right_extension), int(min_width), _BLOCK)

    def run(bounds):
        lo, hi = bounds
        cap = 4 * (hi - lo) + 16
        out = _alloc(cap)
        k = _find_hits(wave, length, level, neg, baseline, *args, lo, hi, cap, *out)
        if k > cap:
            out = _alloc(k)
            _find_hits(wave, length, level, neg, baseline, *args, lo, hi, k, *out)
        return tuple(a[:k] for a in out)

    # a few chunks per thread, so a thread slowed by other load does not hold up the rest
    parts = max(1, min(4 * n_threads(), n // 2000)) if n >= 4000 else 1
    edges = np.linspace(0, n, parts + 1).astype(np.int64)
    chunks = thread_map(run, list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True)))
    rec, left, right, pos, height, area = (
        np.concatenate([c[i] for c in chunks]) for i in range(6)
    )
    peaks = np.empty(rec.size, dtype=PEAKS_DTYPE)
    peaks["record_i"] = rec
    peaks["channel"] = st_waveforms["channel"][rec]
    peaks["time"] = st_waveforms["time"][rec] + left.astype(np.int64) * st_waveforms["dt"][rec]
    peaks["position"] = pos
    peaks["left"] = left
    peaks["right"] = right
    peaks["height"] = height
    peaks["area"] = area
    peaks["width"] = right - left
    return peaks


def compute_baselines(st_waveforms: np.ndarray, baseline_samples: int = 40) -> np.ndarray:
    """Mean of the first ``baseline_samples`` valid samples of each record (float64)."""
    if baseline_samples < 1:
        raise ConfigError(f"baseline_samples must be >= 1, got {baseline_samples}")
    wave = st_waveforms["wave"]
    if len(st_waveforms) == 0:
        return np.zeros(0, np.float64)
    nb = min(baseline_samples, wave.shape[1])
    head = wave[:, :nb]
    length = np.asarray(st_waveforms["length"])
    if np.all(length >= nb):
        return head.mean(axis=1, dtype=np.float64)
    m = np.minimum(np.maximum(length, 1), nb)
    mask = np.arange(nb)[None, :] < m[:, None]
    return (head * mask).sum(axis=1, dtype=np.float64) / m
