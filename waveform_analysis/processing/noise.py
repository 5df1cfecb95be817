"""Per-channel noise: what a sample's distance from its record's baseline scatters by.

Two parts per (board, channel) over a run: the median ``baseline_rms`` (the
scatter inside a baseline window; the median makes one record with a pulse
in its window no matter) and the scatter of the windows' means, from the
median gap between successive records' baselines (a slow drift cancels out
of a gap, the noise does not; the median makes a few records on an earlier
pulse's tail no matter). A sample differs from its record's baseline by the
first and by the baseline's own error, the second, so the noise is
``sqrt(rms^2 + 2 spread^2)``. For white noise the spread is ``rms /
sqrt(window)`` and adds ~1 % for a 40-sample window; noise whose power is at
low frequencies hardly moves inside a window but moves the windows' means,
and only the second part sees it (docs/physics.md, "Noise").
:func:`per_channel_stat` is the percentile per channel that the baselines'
re-check uses too.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..parallel import row_parts, thread_map

__all__ = ["MAD_GAP", "baseline_spread", "channel_noise", "noise_from", "noise_of",
           "per_channel_stat", "quantile_and_noise"]

# the median |gap| between two independent normal values of standard deviation s is this x s
MAD_GAP = float(np.sqrt(2.0) * 0.6744897501960817)


def _groups(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Each record's group index (0..n_groups-1) from its channel key, and the group count."""
    k0 = int(keys.min())
    span = int(keys.max()) - k0
    if span < 1 << 16:  # the usual case: one board, a few channels; no sort needed
        return np.ascontiguousarray(keys - k0, dtype=np.int64), span + 1
    uniq, inv = np.unique(keys, return_inverse=True)
    return np.ascontiguousarray(inv, dtype=np.int64), int(uniq.size)


def _percentile(inv: np.ndarray, n_groups: int, values: np.ndarray, q: float) -> np.ndarray:
    from ._noise_kernels import group_percentile

    out = np.empty(values.size, np.float64)
    group_percentile(inv, np.ascontiguousarray(values, dtype=np.float64), n_groups, float(q), out)
    return out


def per_channel_stat(keys: np.ndarray, values: np.ndarray, q: float = 50.0) -> np.ndarray:
    """For each record, the ``q``-th percentile of ``values`` over the records with its key."""
    inv, n_groups = _groups(keys)
    return _percentile(inv, n_groups, values, q)


def _spread(inv: np.ndarray, n_groups: int, baseline: np.ndarray) -> np.ndarray:
    """Per record, its group's spread of baselines (0 for a group of one record)."""
    from ._noise_kernels import gap_medians

    per_group = gap_medians(inv, np.ascontiguousarray(baseline, dtype=np.float64), n_groups)
    return (per_group / MAD_GAP)[inv]


def baseline_spread(keys: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """Per record, the standard deviation of its (board, channel)'s baselines about their
    slow course: the median gap between successive records' baselines / 0.954 [ADC] (of at
    most 4,096 gaps per channel, every k-th of a longer run)."""
    if baseline.size == 0:
        return np.zeros(0, np.float64)
    inv, n_groups = _groups(keys)
    return _spread(inv, n_groups, baseline)


def noise_of(keys: np.ndarray, rms: np.ndarray, baseline: np.ndarray | None,
             swing: float = 0.0) -> np.ndarray:
    """:func:`noise_from` of an ``rms`` already cleaned (float64, every value finite, >= 0).
    ``swing`` > 0: 0 for the channels whose noise is not above ``swing`` x their median
    ``rms`` (:func:`.baselines.walk_floor`)."""
    inv, n_groups = _groups(keys)
    if baseline is None:
        return _percentile(inv, n_groups, rms, 50.0)
    from ._noise_kernels import group_stats

    rms = np.ascontiguousarray(rms, dtype=np.float64)
    return _noise(inv, n_groups, baseline, swing, lambda: (group_stats(inv, rms, n_groups, 50.0),))[0]


def channel_noise(st_waveforms: np.ndarray) -> np.ndarray:
    """Per record, the noise of its (board, channel) [ADC]: ``sqrt(rms^2 + 2 spread^2)``,
    ``rms`` the median ``baseline_rms`` and ``spread`` :func:`baseline_spread` of the records'
    ``baseline`` (the module's docstring says why).

    Records without a ``baseline_rms`` field, or with values that are not
    finite, count as 0 in the median; without a ``baseline`` field the noise is the median
    alone.
    """
    n = len(st_waveforms)
    names = st_waveforms.dtype.names or ()
    if n == 0 or "baseline_rms" not in names:
        return np.zeros(n, np.float64)
    from ._peaks_kernels import channel_columns

    # the keys, the cleaned RMS and the baselines in one pass over the records' fields
    keys, rms, baseline = np.empty(n, np.int64), np.empty(n, np.float64), np.empty(n, np.float64)
    has_board, has_baseline = "board" in names, "baseline" in names
    board = st_waveforms["board"] if has_board else st_waveforms["channel"]
    base = st_waveforms["baseline"] if has_baseline else st_waveforms["baseline_rms"]
    thread_map(lambda b: channel_columns(st_waveforms["baseline_rms"][b[0]:b[1]],
                                         st_waveforms["channel"][b[0]:b[1]], board[b[0]:b[1]],
                                         has_board, base[b[0]:b[1]], has_baseline,
                                         keys[b[0]:b[1]], rms[b[0]:b[1]], baseline[b[0]:b[1]]),
               row_parts(n, 20_000))
    return noise_of(keys, rms, baseline if has_baseline else None)


def quantile_and_noise(keys: np.ndarray, rms: np.ndarray, baseline: np.ndarray, q: float,
                       swing: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per record, :func:`per_channel_stat` of ``rms`` (the ``q``-th percentile) and
    :func:`noise_from` of ``rms`` and ``baseline``: the same values as the two calls, with
    the channels grouped once and the per-channel passes side by side on the kernel
    threads. An RMS of finite values >= 0 is its own cleaned RMS: its two percentiles
    then come from one histogram (:func:`._noise_kernels.group_quantiles`)."""
    n = rms.size
    if n == 0:
        return np.zeros(0, np.float64), np.zeros(0, np.float64)
    from ._noise_kernels import counted, group_quantiles, group_stats

    inv, n_groups = _groups(keys)
    raw = np.ascontiguousarray(rms, dtype=np.float64)

    def clean() -> np.ndarray:
        out = np.empty(n, np.float64)
        counted(rms, out)  # NaN and infinities count as 0
        return out

    def stats() -> tuple[np.ndarray, np.ndarray]:
        ok, at_q, inside = group_quantiles(inv, raw, n_groups, float(q), 50.0)
        if not ok:  # NaN, infinities, negatives or -0.0 among them, or a q near 100
            at_q, inside = group_stats(inv, raw, n_groups, float(q)), group_stats(inv, clean(),
                                                                                 n_groups, 50.0)
        return inside, at_q

    noise, at_q = _noise(inv, n_groups, baseline, swing, stats)
    return at_q[inv], noise


def _noise(inv: np.ndarray, n_groups: int, baseline: np.ndarray, swing: float,
           stats: Callable[[], tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """Per record, its group's noise (:func:`noise_of`) from the median RMS per group,
    ``stats()[0]``, and the gaps' medians of ``baseline``; then the rest of ``stats()``.
    The gaps' medians and ``stats`` are independent passes over the run: side by side on
    the kernel threads."""
    from ._noise_kernels import gap_medians, spread_noise

    baseline = np.ascontiguousarray(baseline, dtype=np.float64)
    gaps, (inside, *rest) = thread_map(lambda f: f(), (lambda: gap_medians(inv, baseline, n_groups),
                                                       stats))
    out = np.empty(inv.size, np.float64)
    spread_noise(inv, inside, gaps, MAD_GAP, float(swing), out)
    return out, *rest


def noise_from(keys: np.ndarray, baseline_rms: np.ndarray,
               baseline: np.ndarray | None = None, swing: float = 0.0) -> np.ndarray:
    """:func:`channel_noise` from the records' channel ``keys``, ``baseline_rms`` and
    ``baseline`` alone (without ``baseline``: the median ``baseline_rms`` alone; ``swing``:
    as :func:`noise_of`)."""
    if baseline_rms.size == 0:
        return np.zeros(0, np.float64)
    from ._noise_kernels import counted

    rms = np.empty(baseline_rms.size, np.float64)
    counted(np.asarray(baseline_rms), rms)  # NaN and infinities count as 0
    return noise_of(keys, rms, baseline, swing)
