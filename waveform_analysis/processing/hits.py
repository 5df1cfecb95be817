"""Hit finding: peaks above a noise-following threshold over each record's baseline.

:func:`find_peaks` runs one numba kernel (``_hits_kernels.py``) that walks
every sample once. A hit starts where the signal exceeds ``max(threshold,
threshold_sigma * noise)`` and ends only where it falls back to
``release_sigma * noise`` (hysteresis), walking left the same way. Its
bounds are extended by ``left_extension`` samples before and, after the
release, by ``tail_extension`` times the hit's effective width (area /
height, the decay constant of an exponential tail), so the extension follows
the pulse shape instead of a constant, and at least to the end of the
pulse's slow tail (blocks whose summed signal is significant). A new hit
starting inside that extension, or a small one (below half the peak's
height) within half the peak's length after it, continues the same peak;
the peak is split only where a resolvable second pulse rises after its
extremum (7 sigma and half the first's height above the baseline, half the
valley's level, out of a valley the first fell to by 7 sigma), not as a
lobe of an oscillation (an opposite swing of half its height before or
after it: ringing): one pulse, one peak. Each record's threshold follows its channel's noise,
never below its own. ``position`` is the first sample of the 3-sample
average within a few noise sigma of the average's maximum.
Records are split across threads (the kernel releases the GIL).
docs/physics.md has the reasons and the measurements.

The noise is the run's per-channel median ``baseline_rms`` with the spread
of the baselines (:mod:`.noise`); baselines come from :mod:`.baselines`, whose public
functions this module also exports under their documented path
(``processing.hits.set_baselines``, ``compute_baselines``). Importing this
module does not import numba: the ``peaks`` plugin declares its options from
:data:`HIT_DEFAULTS` without loading a kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..dtypes import ADC_MAX_14BIT, ADC_MIN, PEAKS_DTYPE
from ..errors import ConfigError
from ..parallel import n_threads, thread_map
from ._common import negative_rows, per_row
from .baselines import (
    TAIL_WINDOW,
    baseline_stats,
    compute_baselines,
    end_window_stats,
    finish_baselines,
    recheck_levels,
    set_baselines,
)
from .noise import channel_noise, noise_from
from .rows import channel_keys, flat_rows

__all__ = [
    "start_levels",
    "HIT_DEFAULTS",
    "HitDefaults",
    "baseline_stats",
    "channel_keys",
    "channel_noise",
    "compute_baselines",
    "end_window_stats",
    "find_peaks",
    "finish_baselines",
    "noise_from",
    "recheck_levels",
    "set_baselines",
]


@dataclass(frozen=True)
class HitDefaults:
    """Default settings of :func:`find_peaks` (and of the ``peaks`` plugin's options).

    The reasons for each value are in :func:`find_peaks`' docstring and
    docs/physics.md.
    """

    threshold: float = 8.0  # ADC; floor under threshold_sigma x noise
    threshold_sigma: float = 5.0
    release_sigma: float = 1.0
    tail_extension: float = 2.0  # in units of the hit's area / height
    left_extension: int = 2  # samples
    split_sigma: float = 7.0  # a rise of this x noise within 3 samples after the extremum splits
    position_sigma: float = 3.0  # position: first sample of the 3-sample average within this
    # many sigma (its noise, noise / sqrt(3)) of the average's maximum
    merge_gap: int | None = None  # None: within the tail extension
    right_extension: int | None = None  # None: tail_extension x area / height
    split_height: float = 0.5  # a second pulse rises by at least this x the first's height
    split_fraction: float = 0.5  # ... and by this x the level of the tail it rises from
    noise_guard: float = 3.0  # a record's own noise counts up to this x its channel's


HIT_DEFAULTS = HitDefaults()

# Quiet stretches are skipped this many samples at a time (one int16 min/max each).
# Passed at run time: a constant trip count gets unrolled into scalar code
# instead of a vector reduction.
_BLOCK = 32
TAIL_BLOCK = 16  # samples summed at a time to follow a slow tail
TAIL_SIGMA = 2.0  # a block belongs to the tail while its sum is beyond this many sigma
FOLLOW = 0.5  # small followers within this x the peak's length after it join it
# ... and within LINK[0] x, narrower than LINK[1] x the peak's core (photo-electrons, not a
# new pulse), when the light between them is significant (a slow tail)
LINK = (4.0, 0.75)
# a hit within RING[0] samples after a peak, with an opposite swing of at least RING[1]
# sigma and RING[2] x its own height within RING[0] // 2 samples before it or after its
# top, continues the peak (and such a lobe splits nothing): a ringing burst
RING = (16, 3.0, 0.5)
GUARD_MARGIN = 1.17  # a record's RMS of 40 samples plus 1.5 sigma of its estimate
GUARD_WINDOW = TAIL_WINDOW  # samples at the record's end whose RMS (tail_rms) is its second estimate


def start_levels(
    st_waveforms: np.ndarray,
    threshold: float | np.ndarray = HIT_DEFAULTS.threshold,
    threshold_sigma: float = HIT_DEFAULTS.threshold_sigma,
    noise_guard: float = HIT_DEFAULTS.noise_guard,
    noise: np.ndarray | None = None,
) -> np.ndarray:
    """Per record, the level (ADC beyond its baseline) a hit of :func:`find_peaks` starts at:
    ``max(threshold, threshold_sigma x noise)``, the channel's noise raised to the record's own
    as find_peaks raises it (what the waveform plot draws as the threshold)."""
    n = len(st_waveforms)
    out = np.zeros(n, np.float64)
    if n == 0:
        return out
    noise = channel_noise(st_waveforms) if noise is None else np.ascontiguousarray(noise, np.float64)
    if "baseline_rms" in (st_waveforms.dtype.names or ()):
        rec_rms = np.nan_to_num(np.asarray(st_waveforms["baseline_rms"], np.float64), nan=0.0, posinf=0.0)
    else:
        rec_rms, noise_guard = np.zeros(n), 0.0
    tail = (np.asarray(st_waveforms["tail_rms"], np.float64) if "tail_rms" in st_waveforms.dtype.names
            else np.zeros(n))
    ns = st_waveforms["wave"].shape[1] if st_waveforms["wave"].ndim > 1 else 1
    length = np.ascontiguousarray(st_waveforms["length"], dtype=np.int64)
    from ._levels_kernels import start_levels as kernel

    kernel(*flat_rows(st_waveforms), ns, length, noise, rec_rms, tail, float(noise_guard), GUARD_MARGIN,
           GUARD_WINDOW, per_row(threshold, n, "threshold"), float(threshold_sigma), out)
    return out


def find_peaks(
    st_waveforms: np.ndarray,
    threshold: float | np.ndarray = HIT_DEFAULTS.threshold,
    polarity: str | np.ndarray = "negative",
    merge_gap: int | None = HIT_DEFAULTS.merge_gap,
    left_extension: int = HIT_DEFAULTS.left_extension,
    right_extension: int | None = HIT_DEFAULTS.right_extension,
    min_width: int = 1,
    threshold_sigma: float = HIT_DEFAULTS.threshold_sigma,
    release_sigma: float = HIT_DEFAULTS.release_sigma,
    tail_extension: float = HIT_DEFAULTS.tail_extension,
    position_sigma: float = HIT_DEFAULTS.position_sigma,
    split_sigma: float = HIT_DEFAULTS.split_sigma,
    noise: np.ndarray | None = None,
    adc_min: int = ADC_MIN,
    adc_max: int = ADC_MAX_14BIT,
    split_height: float = HIT_DEFAULTS.split_height,
    split_fraction: float = HIT_DEFAULTS.split_fraction,
    noise_guard: float = HIT_DEFAULTS.noise_guard,
) -> np.ndarray:
    """Peaks of every record of ``st_waveforms`` as ``PEAKS_DTYPE``.

    ``noise`` is the record's (board, channel) noise, :func:`channel_noise`
    (the median ``baseline_rms`` with the spread of the baselines; 0 where
    ``baseline_rms`` is 0 or missing); pass it, one value per
    record, when ``st_waveforms`` is a slice of a run whose noise was
    measured over all of it. Each record's noise is then raised to its own,
    never below it: ``max(channel, 1.17 x own)``, ``own`` the lower of its
    ``baseline_rms`` and the RMS of its last 40 samples (a pulse seldom sits
    in both, a noisy record is noisy in both; 1.17 is the margin for the
    error of an RMS of 40 samples, 1.5 sigma of it), unless ``own`` is above
    ``noise_guard`` x the channel's (pulses in both windows: the channel's
    noise stands; ``noise_guard=0``: the channel's noise alone). A hit starts at a sample more
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
    ``saturated`` is true when a sample of ``[left, right)`` is at or beyond
    the ADC's limits ``adc_min`` / ``adc_max`` (0 and 2^14 - 1; the ``peaks``
    plugin passes the ``st_waveforms`` ``adc_max`` option, so a peak and its
    record agree). ``position`` is the first sample whose 3-sample average
    comes within ``position_sigma`` sigma of the average's maximum over the
    peak (the raw extremum when ``position_sigma`` or the noise is 0);
    ``height`` is the extremum. A peak is split where, after
    its extremum, the signal rises within 3 samples by more than
    ``max(threshold level, split_sigma * noise)``, ``split_fraction`` x the
    level of the valley it rises from and ``split_height`` x the peak's
    height (the rise counted from the baseline where the valley is below it:
    the recovery from an opposite swing is no light), the peak having fallen
    to that valley by the same ``max(threshold level, split_sigma * noise)``
    (a valley on both sides): a resolvable second pulse on the tail of the
    first (``split_sigma=0``: never; hits joined by an explicit ``merge_gap``
    are not split). The derived extension also runs to the end of the pulse's
    slow tail (16-sample blocks whose sum is beyond 2 sigma), and a later
    hit lower than ``split_height`` x the peak's height, starting within
    the peak's length after it, continues the peak (ringing, after-pulses,
    late photo-electrons): one pulse, one peak. Such a small hit up to 4 x
    the peak's length after it continues the peak too when the signal summed
    between them is beyond 2 sigma (a slow tail's photo-electrons join
    them), it is narrower than 0.75 x the peak's core (area / height
    above the release level: photo-electrons, not a pulse of the detector's
    own shape) and its area is below that sum plus its 2 sigma (a
    fluctuation of the tail holds no more light than the tail). So does a
    hit within 16 samples of the peak's end that swings to the other
    polarity by at least 3 sigma and half its own height within 8 samples
    before it or after its top, and no split is made at such a lobe: a
    pulse never swings to the other polarity by half its height, a ringing
    burst (lobes of both signs about the baseline) always does.

    Why these defaults (docs/physics.md has the measurements): ``5 sigma``
    gives ~0.5 false peaks per 1,000 noise-only 800-sample records; the
    8 ADC floor keeps quantised, nearly noiseless channels from firing; a
    release at 1 sigma ends the hit where the tail has reached the noise, so
    noise re-crossing the trigger level on a long tail cannot start a second
    peak; 2 decay constants after the release leave ~0.2-0.4 % of the area
    out, and longer extensions sum more noise; a 7 sigma rise within 3
    samples is a second pulse, not noise on a tail.

    ``threshold`` and ``polarity`` may also be arrays, one value per record
    (per-channel settings, :mod:`waveform_analysis.core.channels`).

    Raises :class:`ConfigError` for an unknown polarity or negative settings.
    """
    if merge_gap is not None and merge_gap < 0:
        raise ConfigError(f"merge_gap must be >= 0 or None, got {merge_gap}")
    if right_extension is not None and right_extension < 0:
        raise ConfigError(f"right_extension must be >= 0 or None, got {right_extension}")
    if left_extension < 0 or min_width < 1:
        raise ConfigError(
            f"left_extension must be >= 0 and min_width >= 1, got {left_extension}, {min_width}"
        )
    for name, value in (("threshold_sigma", threshold_sigma),
                        ("release_sigma", release_sigma), ("tail_extension", tail_extension),
                        ("position_sigma", position_sigma), ("split_sigma", split_sigma),
                        ("split_height", split_height), ("split_fraction", split_fraction),
                        ("noise_guard", noise_guard)):
        if not value >= 0:
            raise ConfigError(f"{name} must be >= 0, got {value!r}")
    n = len(st_waveforms)
    negs = negative_rows(polarity, n)
    thresholds = per_row(threshold, n, "threshold")
    if n == 0:
        return np.zeros(0, dtype=PEAKS_DTYPE)
    ns = st_waveforms["wave"].shape[1] if st_waveforms["wave"].ndim > 1 else 1
    rows = (*flat_rows(st_waveforms), ns)
    names = st_waveforms.dtype.names or ()
    has_rms, has_board, has_tail = "baseline_rms" in names, "board" in names, "tail_rms" in names
    # the kernels read the records' fields in place, beside their samples: a copy of each
    # field as a column would be one more pass over the run's memory
    length, baseline, chan, time, dt = (st_waveforms[f] for f in ("length", "baseline", "channel",
                                                                  "time", "dt"))
    rec_rms = st_waveforms["baseline_rms"] if has_rms else baseline
    # the records' own tail_rms, read in place (without the field: read from the samples)
    tail = st_waveforms["tail_rms"] if has_tail else rec_rms
    board = st_waveforms["board"] if has_board else chan
    if noise is None:
        noise = channel_noise(st_waveforms)  # no baseline_rms: no noise
    else:
        noise = np.ascontiguousarray(noise, dtype=np.float64)
        if noise.shape != (n,):
            raise ConfigError(f"noise must hold one value per record ({n}), got shape {noise.shape}")
    if not has_rms:
        noise_guard = 0.0
    guard = (float(noise_guard), GUARD_MARGIN, GUARD_WINDOW)
    args = (
        thresholds, float(threshold_sigma), float(release_sigma), float(position_sigma),
        float(split_sigma), float(split_height), float(split_fraction),
        TAIL_BLOCK if right_extension is None else 0, TAIL_SIGMA, FOLLOW, *LINK, *RING,
        -1 if merge_gap is None else int(merge_gap), int(left_extension),
        -1 if right_extension is None else int(right_extension), float(tail_extension),
        int(min_width), _BLOCK, int(adc_min), int(adc_max),
    )

    from ._hits_kernels import find_hits

    record = (time, dt, chan, board, has_board)

    def run(part: tuple[int, int, np.ndarray]) -> int:
        """The peaks of records [lo, hi) into the rows of ``out``; how many (may exceed its
        size)."""
        lo, hi, out = part
        return find_hits(*rows, length, noise, rec_rms, has_rms, tail, has_tail, *guard, negs,
                         baseline, *args, lo, hi, len(out), *record, out)

    # on several threads, a few parts per thread, so a thread slowed by other load does not
    # hold up the rest
    threads = n_threads()
    parts = max(1, min(4 * threads, n // 2000)) if n >= 4000 and threads > 1 else 1
    return _peaks_of_parts(run, np.linspace(0, n, parts + 1).astype(np.int64).tolist())


def _peaks_of_parts(run: Callable[[tuple[int, int, np.ndarray]], int],
                    edges: list[int]) -> np.ndarray:
    """The peaks of the parts of the records between successive ``edges``, ``run`` writing
    each part's into its own stretch of one array (room for 4 per record + 16; pages never
    written are never touched), on the kernel threads. One part's array is then shrunk in
    place (no copy); several parts' stretches are copied side by side into one array."""
    lows, highs = edges[:-1], edges[1:]
    room = [4 * (hi - lo) + 16 for lo, hi in zip(lows, highs, strict=True)]
    starts = np.cumsum([0, *room[:-1]]).tolist()
    peaks = np.empty(starts[-1] + room[-1], dtype=PEAKS_DTYPE)
    counts = thread_map(run, [(lo, hi, peaks[at:at + size])
                              for lo, hi, at, size in zip(lows, highs, starts, room, strict=True)])
    found = []
    for lo, hi, at, size, k in zip(lows, highs, starts, room, counts, strict=True):
        if k > size:  # more peaks than room (records of many): the part again, with room
            more = np.empty(k, dtype=PEAKS_DTYPE)
            run((lo, hi, more))
            found.append(more)
        else:
            found.append(peaks[at:at + k])
    if len(found) > 1:
        return _joined(found)
    if found[0].base is not peaks:
        return found[0]  # the part again, in an array of its own
    del found
    try:  # only this function refers to the array now (the part's views are gone)
        peaks.resize(counts[0], refcheck=True)
    except ValueError:  # referred to elsewhere after all: a copy
        return peaks[:counts[0]].copy()
    return peaks


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    """``np.concatenate(arrays)`` of contiguous arrays of one structured dtype, their bytes
    copied on the kernel threads side by side (numpy copies a structured array of an odd
    item size one item at a time)."""
    size = arrays[0].dtype.itemsize
    ends = np.cumsum([0, *(len(a) * size for a in arrays)]).tolist()
    out = np.empty(ends[-1] // size, dtype=arrays[0].dtype)
    raw = out.view(np.uint8)
    thread_map(lambda i: raw.__setitem__(slice(ends[i], ends[i + 1]), arrays[i].view(np.uint8)),
               range(len(arrays)))
    return out
