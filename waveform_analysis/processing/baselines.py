"""Baselines: the level and RMS of each record's samples before its first pulse.

The baseline window of a record ends before its trigger (docs/physics.md):
at the run's pre-trigger less a margin where the run's settings state it,
else at :data:`BASELINE_CAP` samples, and in both cases no later than a few
samples before the record's first pulse, found in the data (the quiet
stretch before the first crossing). ``baseline_samples`` overrides all of
it with a fixed window. A record whose window is far noisier than, or
sloping away from the level of, its own quiet windows holds a pulse there;
its baseline is taken from those quiet windows instead (``baseline_rms``
still reports the window, so the record stays visible). On a channel whose
noise has its power at low frequencies (:func:`walk_floor`), the windows the
data cut are walked again with the channel's noise, which sees the slow
swings the first walk took for a pulse's rise. The work comes in
three phases (:func:`end_window_stats` per record, :func:`recheck_levels`
over the run, :func:`finish_baselines` per record), so that a run read in
blocks computes them block by block.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..parallel import row_parts, thread_map
from .noise import noise_from, per_channel_stat, quantile_and_noise
from .rows import flat_rows, record_channel_keys

__all__ = [
    "BASELINE_CAP",
    "channel_levels",
    "baseline_stats",
    "compute_baselines",
    "end_window_stats",
    "finish_baselines",
    "recheck_levels",
    "set_baselines",
    "store_baselines",
    "walk_floor",
    "window_caps",
    "window_ends",
]

BASELINE_CAP = 40  # samples: the window when no setting says where the trigger is
QUIET_MARGIN = 3  # samples left out before the first pulse (its rise under the level)
QUIET_SIGMA = 5.0  # a pulse starts this many noise sigma from the running mean
QUIET_FLOOR = 8.0  # ADC, and at least this far (the hit finder's threshold floor)
MIN_WINDOW = 4  # fewest samples a derived window keeps
AHEAD = 12  # samples whose differences give the first noise estimate
TAIL_WINDOW = 40  # samples at a record's end whose RMS is stored as its tail_rms


def window_ends(
    n_records: int, n_samples: int, baseline_samples: int | np.ndarray | None = None,
    pretrigger: int | None = None, pre_gate: int | None = None,
    cap: int | np.ndarray = BASELINE_CAP,
) -> tuple[np.ndarray, bool]:
    """Per record, the end of its baseline window before the data cut it, and whether they do.

    ``baseline_samples`` given: that fixed window (the option overrides
    everything). Otherwise the pre-trigger less ``pre_gate`` (the samples a
    firmware gate opens before the trigger, where the rise may start) or,
    without it, less a quarter of the pre-trigger (at least 4 samples); with
    no pre-trigger known, ``cap`` samples. The data then end it before the
    record's first pulse. ``baseline_samples`` and ``cap`` may be one value per
    record (each channel's, see core/channels.py).
    """
    top = max(n_samples, 1)
    if baseline_samples is not None:
        _check_window(baseline_samples)
        return _per_record(baseline_samples, n_records, top), False
    if pretrigger is not None and pretrigger > 0:
        margin = max(4, int(pretrigger) // 4) if pre_gate is None else int(pre_gate)
        end = max(MIN_WINDOW, int(pretrigger) - margin)
        return np.full(n_records, min(end, top), np.int64), True
    _check_window(cap)
    return _per_record(cap, n_records, top), True


def window_caps(
    st_waveforms: np.ndarray, baseline_samples: int | np.ndarray | None = None,
    pretrigger: int | None = None, pre_gate: int | None = None,
    cap: int | np.ndarray = BASELINE_CAP,
) -> np.ndarray:
    """Per record, where its baseline window would end if no pulse cut it (the arguments of
    :func:`end_window_stats`): a window ending before it was cut by the data, one that the
    third phase may walk again with its channel's noise (:func:`finish_baselines`)."""
    ns = st_waveforms["wave"].shape[1] if st_waveforms["wave"].ndim > 1 else 1
    groups = _window_groups(baseline_samples, len(st_waveforms))
    if len(groups) > 1:  # fixed windows of several sizes: never cut
        return _per_record(baseline_samples, len(st_waveforms), max(ns, 1))
    return window_ends(len(st_waveforms), ns, groups[0][0], pretrigger, pre_gate, cap)[0]


def _check_window(value: int | np.ndarray) -> None:
    if np.size(value) and np.min(value) < 1:
        raise ConfigError(f"baseline_samples must be >= 1, got {int(np.min(value))}")


def _per_record(value: int | np.ndarray, n: int, top: int) -> np.ndarray:
    """``value`` (one, or one per record) as one int64 per record, at most ``top``."""
    return np.minimum(np.broadcast_to(np.asarray(value, np.int64), (n,)), top).astype(np.int64)


def _window_groups(baseline_samples: int | np.ndarray | None, n: int):
    """``(window size, rows)`` per distinct ``baseline_samples`` (rows None: all): records
    whose channels set different fixed windows are cut into windows of their own size."""
    if baseline_samples is None or np.ndim(baseline_samples) == 0:
        return [(baseline_samples, None)]
    values = np.asarray(baseline_samples, np.int64)
    uniq = np.unique(values)
    if uniq.size <= 1:
        return [(int(uniq[0]) if uniq.size else None, None)]
    return [(int(v), np.flatnonzero(values == v)) for v in uniq]


def baseline_stats(
    st_waveforms: np.ndarray, baseline_samples: int | np.ndarray | None = None,
    pretrigger: int | None = None, pre_gate: int | None = None, cap: int = BASELINE_CAP,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(baseline, baseline_rms, contaminated)`` of each record.

    ``baseline`` (float64) and ``baseline_rms`` (float32, the RMS about the
    mean) come from the record's baseline window (:func:`window_ends`: before
    the trigger and the record's first pulse, or the first
    ``baseline_samples`` samples when given: one, or one per record). ``contaminated`` marks records
    whose window holds a pulse, judged against the record's own quiet
    windows (RMS above twice theirs, or a mean more than 3 of their RMS
    from theirs with a slope): their ``baseline`` is the median level of the
    quiet windows. A contaminated record stays visible through its large
    ``baseline_rms``.

    Only records whose window RMS is above 1.25 x the lower of their last
    window's and the lower quartile of their (board, channel)'s (a few
    percent of clean records) are read whole, so the cost stays that of the
    two end windows.
    """
    return _stats(st_waveforms, baseline_samples, pretrigger, pre_gate, cap)[:3]


def _stats(st_waveforms: np.ndarray, baseline_samples, pretrigger, pre_gate, cap, put=False):
    """:func:`baseline_stats`' three arrays, the records' ``tail_rms`` (float32), and whether
    the records' fields hold them already (``put``: written by the first phase as it reads
    each record, then the rows the last phase changed)."""
    if len(st_waveforms) == 0:
        window_ends(0, 0, baseline_samples)
        return (np.zeros(0, np.float64), np.zeros(0, np.float32), np.zeros(0, bool),
                np.zeros(0, np.float32), False)
    put = (put and len(_window_groups(baseline_samples, len(st_waveforms))) == 1
           and _puts_fields(st_waveforms))
    mean, rms, last, ends, tail = _end_windows(st_waveforms, baseline_samples, pretrigger,
                                               pre_gate, cap, put)
    low, floor = channel_levels(record_channel_keys(st_waveforms), rms, last, mean)
    caps = window_caps(st_waveforms, baseline_samples, pretrigger, pre_gate, cap)
    contaminated, touched = _finish(st_waveforms, baseline_samples, mean, rms, low, ends, floor,
                                    caps)
    rms32 = rms.astype(np.float32)
    if put and touched.size:  # the re-judged and re-walked rows: their final values
        st_waveforms["baseline"][touched] = mean[touched]
        st_waveforms["baseline_rms"][touched] = rms32[touched]
    return mean, rms32, contaminated, tail, put


def end_window_stats(
    st_waveforms: np.ndarray, baseline_samples: int | np.ndarray | None = None,
    pretrigger: int | None = None, pre_gate: int | None = None,
    cap: int | np.ndarray = BASELINE_CAP,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per record: mean and RMS of the baseline window, RMS of the last window, window end,
    and the RMS of its last :data:`TAIL_WINDOW` samples (float32: the records'
    ``tail_rms``, which the hit finder's noise guard reads instead of the samples).

    The first phase of :func:`baseline_stats`; it needs nothing but the record,
    so a run read in blocks computes it block by block. ``baseline_samples`` and
    ``cap`` may be one value per record; records of different fixed windows are
    computed a group at a time."""
    return _end_windows(st_waveforms, baseline_samples, pretrigger, pre_gate, cap, False)


# the fields the end windows write into when asked to (:func:`_puts_fields`), and stand-ins
# of the same types when not: one signature of the kernel either way
_FIELD_TYPES = (("baseline", np.float64), ("baseline_rms", np.float32), ("tail_rms", np.float32))
_NO_FIELDS = np.zeros(2, [(name, t) for name, t in _FIELD_TYPES])


def _puts_fields(st_waveforms: np.ndarray) -> bool:
    """Whether the end windows can write the baselines into ``st_waveforms`` as they go: the
    standard fields, writable, in records the kernel sees as strided (two or more)."""
    fields = st_waveforms.dtype.fields or {}
    return (len(st_waveforms) >= 2 and st_waveforms.flags.writeable
            and all(name in fields and fields[name][0] == np.dtype(t) for name, t in _FIELD_TYPES))


def _end_windows(st_waveforms: np.ndarray, baseline_samples, pretrigger, pre_gate, cap,
                 put: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`end_window_stats`; with ``put`` (:func:`_puts_fields` true, one window size),
    ``baseline``, ``baseline_rms`` and ``tail_rms`` are also written to the records, in the
    pass that reads them."""
    groups = _window_groups(baseline_samples, len(st_waveforms))
    if len(groups) > 1:
        out = [np.empty(len(st_waveforms), t)
               for t in (np.float64, np.float64, np.float64, np.int64, np.float32)]
        for nb, rows in groups:
            for o, part in zip(out, end_window_stats(st_waveforms[rows], nb, pretrigger, pre_gate,
                                                     cap), strict=True):
                o[rows] = part
        return tuple(out)
    baseline_samples = groups[0][0]
    n = len(st_waveforms)
    flat, stride, offset = flat_rows(st_waveforms)
    ns = st_waveforms["wave"].shape[1] if st_waveforms["wave"].ndim > 1 else 1
    ends, derive = window_ends(n, ns, baseline_samples, pretrigger, pre_gate, cap)
    length = st_waveforms["length"]  # read in place by the kernel, beside the record's samples
    nb = _window_size(baseline_samples, ns)
    mean = np.empty(n, np.float64)
    rms = np.empty(n, np.float64)
    last = np.empty(n, np.float64)
    tail = np.empty(n, np.float32)
    if n:
        from ._baselines_kernels import end_windows

        into = st_waveforms if put else _NO_FIELDS
        o_base, o_rms, o_tail = (into[name] for name, _ in _FIELD_TYPES)

        def run(bounds: tuple[int, int]) -> None:
            lo, hi = bounds
            out = (o_base[lo:hi], o_rms[lo:hi], o_tail[lo:hi]) if put else (o_base, o_rms, o_tail)
            end_windows(flat, stride, offset + lo * stride, ns, length[lo:hi], nb, ends[lo:hi], derive, QUIET_MARGIN,
                        QUIET_SIGMA, QUIET_FLOOR, MIN_WINDOW, AHEAD, mean[lo:hi], rms[lo:hi],
                        last[lo:hi], TAIL_WINDOW, tail[lo:hi], put, *out, _walk_scratch(ns))

        thread_map(run, row_parts(n))  # the kernel releases the GIL
    return mean, rms, last, ends, tail


def _walk_scratch(ns: int) -> np.ndarray:
    """The walk's table of ``ns`` levels (:func:`._baselines_kernels._quiet_end`), with room
    for the 8 lanes its last block may read past the record's samples."""
    return np.empty(ns + 8, np.int64)


def _window_size(baseline_samples: int | None, n_samples: int) -> int:
    """Size of the windows a record is cut into for the re-check (and of its last window)."""
    return max(1, int(min(baseline_samples or BASELINE_CAP, max(n_samples, 1))))


def recheck_levels(keys: np.ndarray, rms: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Per record, the RMS level above which its baseline window is checked for a pulse.

    The lower of the record's last-window RMS and the lower quartile of the
    window RMS of its (board, channel) over the whole run (``keys`` as
    :func:`.rows.channel_keys` makes them)."""
    if rms.size == 0:
        return np.zeros(0, np.float64)
    return np.minimum(last, per_channel_stat(keys, rms, 25.0))


SWING = 1.5  # a channel noise this x its median window RMS: the windows miss its noise


def walk_floor(keys: np.ndarray, rms: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Per record, the noise a window the data cut is walked again with (:func:`finish_baselines`):
    its channel's noise (:func:`.noise.noise_from` of the first phase's ``rms`` and
    ``mean``) where that is above 1.5 x the channel's median window RMS, else 0 (no second
    walk).

    Above it, the windows' means scatter by more than 0.79 x their RMS: more than a
    window of even 4 white samples lets them (0.5 x), so the noise has power at low
    frequencies that the walk's successive differences do not see. Below it the first
    walk stands, and white-noise channels keep their windows as they were."""
    if rms.size == 0:
        return np.zeros(0, np.float64)
    return noise_from(keys, rms, mean, SWING)


def channel_levels(keys: np.ndarray, rms: np.ndarray, last: np.ndarray,
                   mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`recheck_levels` and :func:`walk_floor` of the first phase's outputs at once
    (the same values): their per-channel passes over the run share one grouping and run
    side by side (:func:`.noise.quantile_and_noise`)."""
    at_q, floor = quantile_and_noise(keys, rms, mean, 25.0, SWING)
    return np.minimum(last, at_q), floor


def finish_baselines(
    st_waveforms: np.ndarray, baseline_samples: int | np.ndarray | None, mean: np.ndarray, rms: np.ndarray,
    low: np.ndarray, ends: np.ndarray | None = None, noise: np.ndarray | None = None,
    caps: np.ndarray | None = None,
) -> np.ndarray:
    """Re-judge the records whose window ``rms`` is above ``1.25 x low``; ``mean`` is
    updated in place for those with a pulse there. Returns the ``contaminated`` mask.

    ``ends`` are the windows' ends :func:`end_window_stats` gave (default:
    ``baseline_samples`` for every record; one, or one per record). With ``noise``
    (:func:`walk_floor`) and ``caps`` (:func:`window_caps`), the windows the data cut before
    their cap are first walked again with the noise floored at ``noise`` where it is above
    0: a slow swing of the noise that passed for a pulse's rise no longer shortens them
    (``ends``, ``mean`` and ``rms`` updated in place; ``ends`` must then be int64). The last phase of
    :func:`baseline_stats`; per record, so it runs on any slice of a run once
    :func:`recheck_levels` and the noise have seen all of it."""
    return _finish(st_waveforms, baseline_samples, mean, rms, low, ends, noise, caps)[0]


def _finish(st_waveforms: np.ndarray, baseline_samples, mean: np.ndarray, rms: np.ndarray,
            low: np.ndarray, ends: np.ndarray | None = None, noise: np.ndarray | None = None,
            caps: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`finish_baselines`' mask and the rows whose ``mean`` or ``rms`` it may have
    changed (those walked again or re-judged; some twice)."""
    walked = np.zeros(0, np.int64)
    if noise is not None and caps is not None and ends is not None:
        walked = _rewalk(st_waveforms, ends, caps, noise, mean, rms)
    n = len(st_waveforms)
    contaminated = np.zeros(n, np.bool_)
    rows = np.flatnonzero(rms > 1.25 * low + 0.25).astype(np.int64)
    if rows.size:
        flat, stride, offset = flat_rows(st_waveforms)
        ns = st_waveforms["wave"].shape[1] if st_waveforms["wave"].ndim > 1 else 1
        length = st_waveforms["length"]  # read in place: only the rows re-judged
        from ._baselines_kernels import recheck

        given = None if ends is None else np.ascontiguousarray(ends, dtype=np.int64)
        for size, group in _window_groups(baseline_samples, n):
            nb = _window_size(size, ns)
            group_ends = np.full(n, nb, np.int64) if given is None else given
            todo = rows if group is None else np.intersect1d(rows, group)

            def part(b: tuple[int, int], nb: int = nb, group_ends: np.ndarray = group_ends,
                     todo: np.ndarray = todo) -> None:
                # each part writes only its own records' mean and flag
                recheck(flat, stride, offset, ns, length, nb, group_ends, todo[b[0]:b[1]], mean,
                        contaminated, np.empty((4, ns // nb + 1)))

            thread_map(part, row_parts(todo.size, 500))
    return contaminated, np.concatenate((walked, rows))


def _rewalk(st_waveforms: np.ndarray, ends: np.ndarray, caps: np.ndarray, noise: np.ndarray,
            mean: np.ndarray, rms: np.ndarray) -> np.ndarray:
    """:func:`finish_baselines`' second walk of the windows cut before their cap; returns the
    rows walked."""
    if ends.dtype != np.int64 or not ends.flags.writeable:
        raise TypeError("ends must be a writable int64 array: the walked windows' ends are stored in it")
    rows = np.flatnonzero((ends < caps) & (noise > 0)).astype(np.int64)
    if rows.size == 0:
        return rows
    from ._baselines_kernels import rewalk

    flat, stride, offset = flat_rows(st_waveforms)
    ns = st_waveforms["wave"].shape[1] if st_waveforms["wave"].ndim > 1 else 1
    caps = np.ascontiguousarray(caps, dtype=np.int64)
    noise = np.ascontiguousarray(noise, dtype=np.float64)
    thread_map(lambda b: rewalk(flat, stride, offset, ns, st_waveforms["length"], rows[b[0]:b[1]],
                                caps, noise, QUIET_MARGIN, QUIET_SIGMA, QUIET_FLOOR, MIN_WINDOW,
                                AHEAD, ends, mean, rms, _walk_scratch(ns)), row_parts(rows.size, 500))
    return rows


def compute_baselines(
    st_waveforms: np.ndarray, baseline_samples: int | None = None, pretrigger: int | None = None,
) -> np.ndarray:
    """Baseline of each record (float64): :func:`baseline_stats`'s first element."""
    return baseline_stats(st_waveforms, baseline_samples, pretrigger)[0]


def set_baselines(
    st_waveforms: np.ndarray, baseline_samples: int | None = None, pretrigger: int | None = None,
    pre_gate: int | None = None,
) -> np.ndarray:
    """Fill ``baseline``, ``baseline_rms`` and ``tail_rms`` of ``st_waveforms`` in place
    (those of the fields it has); returns it."""
    baseline, rms, _, tail, stored = _stats(st_waveforms, baseline_samples, pretrigger, pre_gate,
                                            BASELINE_CAP, put=True)
    if not stored:
        store_baselines(st_waveforms, baseline, rms, tail)
    return st_waveforms


def store_baselines(st_waveforms: np.ndarray, baseline: np.ndarray, rms: np.ndarray,
                    tail: np.ndarray | None = None) -> None:
    """``st_waveforms["baseline"] = baseline``, ``["baseline_rms"] = rms`` and, with ``tail``
    (:func:`end_window_stats`' last array), ``["tail_rms"] = tail`` (where the fields
    exist), the same values in one pass over the records on the kernel threads."""
    n = len(st_waveforms)
    names = st_waveforms.dtype.names
    if n == 0 or "baseline_rms" not in names:
        st_waveforms["baseline"] = baseline
        if tail is not None and "tail_rms" in names:
            st_waveforms["tail_rms"] = tail
        return
    from ._baselines_kernels import put_baselines

    o_baseline, o_rms = st_waveforms["baseline"], st_waveforms["baseline_rms"]
    has_tail = tail is not None and "tail_rms" in names
    o_tail = st_waveforms["tail_rms"] if has_tail else o_rms
    baseline = np.ascontiguousarray(np.broadcast_to(baseline, (n,)), dtype=np.float64)
    rms = np.ascontiguousarray(np.broadcast_to(rms, (n,)))
    tail = (np.ascontiguousarray(np.broadcast_to(tail, (n,)), np.float32) if has_tail
            else np.zeros(0, np.float32))  # none to write: o_tail is never written
    thread_map(lambda b: put_baselines(o_baseline[b[0]:b[1]], o_rms[b[0]:b[1]], baseline[b[0]:b[1]],
                                       rms[b[0]:b[1]], o_tail[b[0]:b[1]], tail[b[0]:b[1]]),
               row_parts(n, 20_000))
