"""Baselines (processing/baselines.py): the first window's level and RMS, re-judged where a pulse sits."""

from __future__ import annotations

import numpy as np
import pytest

from waveform_analysis.errors import ConfigError
from waveform_analysis.parallel import kernel_threads
from waveform_analysis.processing.baselines import (
    baseline_stats,
    channel_levels,
    compute_baselines,
    end_window_stats,
    finish_baselines,
    recheck_levels,
    set_baselines,
    store_baselines,
    walk_floor,
    window_caps,
)
from waveform_analysis.processing.rows import record_channel_keys
from waveform_analysis.synthetic import synthesize


def test_baseline_rms_and_a_pulse_in_a_fixed_baseline_window():
    st, truth = synthesize(n_channels=1, n_waveforms=400, noise_sigma=3.0, seed=4,
                           baseline_pulse_fraction=0.25, amplitude_range=(30.0, 1000.0))
    baseline, rms, contaminated = baseline_stats(st, 40)
    hit = np.zeros(len(st), bool)
    hit[truth["record_i"][truth["in_baseline"]]] = True
    clean = ~hit
    # clean records: the plain mean and RMS of the first 40 samples
    head = st["wave"][:, :40].astype(np.float64)
    np.testing.assert_allclose(baseline[clean], head[clean].mean(axis=1))
    np.testing.assert_allclose(rms[clean], head[clean].std(axis=1), rtol=1e-5)
    assert np.median(rms[clean]) == pytest.approx(3.0, rel=0.05)
    assert not contaminated[clean].any()
    # a pulse in the window: visible (large RMS) and handled (baseline from quiet windows)
    assert np.mean(rms[hit] >= 6.0) >= 0.9
    assert np.mean(np.abs(baseline[hit] - 15000.0) <= 9.0) >= 0.97
    naive = head[hit].mean(axis=1)
    assert np.mean(np.abs(naive - 15000.0) <= 9.0) < 0.6
    set_baselines(st, 40)
    np.testing.assert_array_equal(st["baseline"], baseline)
    np.testing.assert_array_equal(st["baseline_rms"], rms)


def test_the_three_phases_over_blocks_give_baseline_stats():
    # what a run read in blocks does: end windows per block, levels over the run, finish per block
    st, _ = synthesize(n_channels=2, n_waveforms=300, noise_sigma=3.0, seed=7,
                       baseline_pulse_fraction=0.2, amplitude_range=(30.0, 1000.0))
    baseline, rms, contaminated = baseline_stats(st, 40)
    parts = [end_window_stats(st[a : a + 101], 40) for a in range(0, len(st), 101)]
    mean, first, last, ends, _ = (np.concatenate([p[i] for p in parts]) for i in range(5))
    low = recheck_levels(record_channel_keys(st), first, last)
    flagged = np.concatenate([
        finish_baselines(st[a : a + 101], 40, mean[a : a + 101], first[a : a + 101], low[a : a + 101])
        for a in range(0, len(st), 101)
    ])
    np.testing.assert_array_equal(mean, baseline)
    np.testing.assert_array_equal(first.astype(np.float32), rms)
    np.testing.assert_array_equal(flagged, contaminated)
    assert contaminated.any()


def test_end_windows_on_threads_are_those_of_one_thread_and_of_numpy():
    # enough records to be cut into parts; records of every length, pulses in the window
    st, _ = synthesize(n_channels=2, n_waveforms=5000, n_samples=120, noise_sigma=3.0, seed=9,
                       baseline_pulse_fraction=0.1, amplitude_range=(10.0, 1000.0))
    st["length"] = np.random.default_rng(3).integers(1, 121, len(st))
    with kernel_threads(1):
        one = end_window_stats(st)
    with kernel_threads(4):
        four = end_window_stats(st)
    for a, b in zip(one, four, strict=True):
        np.testing.assert_array_equal(a, b)
    mean, rms, last, ends, tail_rms = one
    assert tail_rms.dtype == np.float32
    for r in range(0, len(st), 97):
        n, e = min(40, st["length"][r]), ends[r]
        head = st["wave"][r, :e].astype(np.float64)
        tail = st["wave"][r, st["length"][r] - n : st["length"][r]].astype(np.float64)
        assert mean[r] == head.mean()  # integer sums: exact either way
        assert rms[r] == pytest.approx(head.std(), rel=1e-12, abs=1e-12)
        assert last[r] == pytest.approx(tail.std(), rel=1e-12, abs=1e-12)
        assert tail_rms[r] == np.float32(last[r])  # the same 40 samples


def test_short_records_empty_runs_and_bad_settings():
    st, _ = synthesize(n_channels=1, n_waveforms=4, n_samples=64, noise_sigma=2.0, seed=1)
    st["length"] = [1, 10, 64, 64]
    baseline = compute_baselines(st, 40)
    assert baseline[0] == st["wave"][0, 0]  # one valid sample: its own value
    assert baseline[1] == pytest.approx(st["wave"][1, :10].mean())
    b, r, c = baseline_stats(st[:0])
    assert b.size == r.size == c.size == 0
    with pytest.raises(ConfigError, match="baseline_samples"):
        baseline_stats(st, 0)


def _phases(st):
    """The three phases of baseline_stats, keeping the windows' ends before and after."""
    from waveform_analysis.processing.baselines import walk_floor, window_caps

    mean, rms, last, ends, _ = end_window_stats(st)
    keys = record_channel_keys(st)
    low = recheck_levels(keys, rms, last)
    floor = walk_floor(keys, rms, mean)
    first = ends.copy()
    finish_baselines(st, None, mean, rms, low, ends, floor, window_caps(st))
    return first, ends, floor, mean


def test_windows_cut_by_a_slow_swing_of_the_noise_are_walked_again():
    # noise with power at low frequencies: the walk's successive differences see 3 of its
    # ~6 ADC, and a swing ends 12 % of the windows early; the channel's noise (the spread of
    # its baselines) sees it, and walking those windows again with it keeps them whole
    from waveform_analysis.synthetic import scintillator

    st, _ = scintillator(n=1500, n_samples=400, noise=3.0, noise_lf=5.0, noise_only=True, seed=2)
    first, ends, floor, mean = _phases(st)
    assert np.all(floor > 0) and np.all(ends >= first)
    assert np.mean(first < 40) > 0.08 and np.mean(ends < 40) < 0.02
    np.testing.assert_array_equal(baseline_stats(st)[0], mean)  # the one-call path is the same
    # white noise: the first walk stands, record for record
    st, _ = scintillator(n=1500, n_samples=400, noise=3.0, noise_only=True, seed=2)
    first, ends, floor, _ = _phases(st)
    assert np.all(floor == 0) and np.array_equal(ends, first)


def test_window_rms_is_exact_for_any_16_bit_samples_and_long_windows():
    # the RMS comes from integer sums of the samples and their squares: exact where a float
    # two-pass sum rounds, no overflow at the ADC's extremes, and windows past 65,536 samples
    from waveform_analysis.dtypes import st_waveforms_dtype

    rng = np.random.default_rng(5)
    for n_samples, lo, hi in ((120, -32768, 32767), (70_000, 16000, 16383), (200, 0, 2)):
        st = np.zeros(2, dtype=st_waveforms_dtype(n_samples))
        st["wave"] = rng.integers(lo, hi, (2, n_samples), endpoint=True).astype(np.int16)
        st["length"] = n_samples
        mean, rms, _ = baseline_stats(st, n_samples)
        w = st["wave"].astype(np.float64)
        np.testing.assert_allclose(mean, w.mean(axis=1), rtol=1e-12)
        np.testing.assert_allclose(rms, w.std(axis=1), rtol=1e-6)


@pytest.mark.parametrize("threads", [1, 2])
def test_channel_levels_are_recheck_levels_and_walk_floor(threads):
    # one call, three passes side by side: the same values as the two calls, whatever the RMS holds
    st, _ = synthesize(n_channels=3, n_waveforms=3000, noise_sigma=3.0, seed=4,
                       baseline_pulse_fraction=0.1, amplitude_range=(10.0, 1000.0))
    mean, rms, last, _, _ = end_window_stats(st)
    keys = record_channel_keys(st)
    rng = np.random.default_rng(8)
    odd = rms.copy()
    odd[rng.integers(0, odd.size, 40)] = np.nan
    odd[:3] = (np.inf, -1.0, 0.0)
    many = rng.integers(0, 70_000, keys.size)  # keys too far apart for a plain index: sorted groups
    with kernel_threads(threads):
        for k, r in ((keys, rms), (keys, odd), (many, rms), (keys[:1], rms[:1])):
            n = r.size
            low, floor = channel_levels(k, r, last[:n], mean[:n])
            np.testing.assert_array_equal(low, recheck_levels(k, r, last[:n]))
            np.testing.assert_array_equal(floor, walk_floor(k, r, mean[:n]))
        empty = channel_levels(keys[:0], rms[:0], last[:0], mean[:0])
    assert [a.size for a in empty] == [0, 0]


@pytest.mark.parametrize("threads", [1, 2])
def test_store_baselines_is_numpys_assignment(threads):
    st, _ = synthesize(n_channels=2, n_waveforms=30_000, n_samples=40, noise_sigma=3.0, seed=5)
    baseline = np.random.default_rng(1).normal(1000.0, 50.0, len(st))
    rms = np.abs(np.random.default_rng(2).normal(3.0, 1.0, len(st)))
    rms[:4] = (np.nan, np.inf, 1e40, -0.0)  # float64 into the float32 field: numpy's casts
    want = st.copy()
    want["baseline"] = baseline
    with np.errstate(over="ignore"):  # 1e40 is inf in float32
        want["baseline_rms"] = rms
    with kernel_threads(threads):
        store_baselines(st, baseline, rms)
    for name in st.dtype.names:  # field by field: a copy of records leaves their padding undefined
        np.testing.assert_array_equal(st[name], want[name])
    np.testing.assert_array_equal(st["baseline_rms"].view(np.uint32), want["baseline_rms"].view(np.uint32))
    no_rms = np.zeros(3, [("baseline", "f8"), ("channel", "i2")])
    store_baselines(no_rms, np.arange(3.0), np.ones(3))
    np.testing.assert_array_equal(no_rms["baseline"], np.arange(3.0))
    with np.errstate(over="ignore"):
        tail = rms.astype(np.float32)[::-1]
    with kernel_threads(threads):
        store_baselines(st, baseline, rms, tail)
    want["tail_rms"] = tail
    for name in st.dtype.names:
        np.testing.assert_array_equal(st[name], want[name])


@pytest.mark.parametrize("baseline_samples", [None, 40, 12])
def test_set_baselines_fills_tail_rms_with_the_rms_of_the_last_40_samples(baseline_samples):
    # the re-check's last window is baseline_samples long; tail_rms is always 40 samples
    st, _ = synthesize(n_channels=2, n_waveforms=800, n_samples=120, noise_sigma=3.0, seed=11)
    st["length"] = np.random.default_rng(4).integers(1, 121, len(st))
    set_baselines(st, baseline_samples)
    for r in range(len(st)):
        L = st["length"][r]
        tail = st["wave"][r, max(L - 40, 0) : L].astype(np.float64)
        assert st["tail_rms"][r] == pytest.approx(np.float32(tail.std()), rel=2e-7, abs=1e-6)


@pytest.mark.parametrize("threads", [1, 2])
def test_set_baselines_fills_the_fields_as_baseline_stats_and_store_baselines(threads):
    """set_baselines writes the fields in the pass that reads the records, then the rows the
    re-check and the second walk changed: the same as baseline_stats + store_baselines,
    with records re-judged (pulses in the window) and windows walked again (slow swings)."""
    st, _ = synthesize(n_channels=3, n_waveforms=3000, n_samples=300, noise_sigma=3.0, seed=3,
                       baseline_pulse_fraction=0.2, amplitude_range=(10.0, 1000.0))
    rng = np.random.default_rng(5)
    slow = st["channel"] == 1
    t = np.arange(300)
    swing = 6 * np.sin(2 * np.pi * (t[None, :] / 90.0 + rng.random((slow.sum(), 1))))
    st["wave"][slow] = (st["wave"][slow] + swing).round().astype(np.int16)
    st["length"][::17] = rng.integers(1, 300, st["length"][::17].size)
    want = st.copy()
    with kernel_threads(threads):
        baseline, rms, contaminated = baseline_stats(want)
        store_baselines(want, baseline, rms, end_window_stats(want)[4])
        set_baselines(st)
    assert contaminated.sum() > 50
    mean, first, last, ends, _ = end_window_stats(st)
    low, floor = channel_levels(record_channel_keys(st), first, last, mean)
    assert ((ends < window_caps(st)) & (floor > 0)).sum() > 50  # windows walked again
    for name in st.dtype.names:
        np.testing.assert_array_equal(st[name], want[name])
    one = want[:1].copy()  # one record: the fields are stored after the phases
    set_baselines(one)
    np.testing.assert_array_equal(one["baseline"], compute_baselines(want[:1]))


def test_the_walks_block_of_eight_tests_is_the_sample_by_sample_test():
    # the walk tests 8 samples at once in one vector (their running sums from a prefix sum):
    # bit for bit the scalar test |x_j j - s_j| > near_j[j], for any 16-bit samples; the
    # first lane that fails it and the running sum there
    import numba

    from waveform_analysis.processing._vector_kernels import quiet8

    @numba.njit
    def both(row, j, s, near_j):
        first, total, before = quiet8(row, j, s, near_j)
        want, run, at = 8, s, s
        for i in range(8):
            x = np.int64(row[j + i])
            if want == 8 and abs(x * (j + i) - run) > near_j[j + i]:
                want, at = i, run
            run += x
        return (first, total, before if first < 8 else 0), (want, run - s, at if want < 8 else 0)

    rng = np.random.default_rng(0)
    for it in range(4000):
        ns = int(rng.integers(8, 400))
        if it % 3 == 0:
            row = rng.integers(-32768, 32768, ns).astype(np.int16)
        else:
            row = np.rint(15000 + rng.normal(0, 3, ns)).astype(np.int16)
        j = int(rng.integers(0, ns - 7))
        s = int(rng.integers(-2**40, 2**40)) if it % 5 == 0 else int(row[:j].astype(np.int64).sum())
        near = np.floor((float(rng.choice([0.5, 8, 20])) - 1e-6) * np.arange(ns)).astype(np.int64)
        got, want = both(row, j, s, near)
        assert got == want, (it, j)


def test_the_walks_last_block_does_not_count_samples_after_its_end():
    # the last block of 8 may reach past the walk's end (and the record's valid samples):
    # what lies there does not move a window
    st, _ = synthesize(n_channels=2, n_waveforms=400, n_samples=120, noise_sigma=3.0, seed=8,
                       baseline_pulse_fraction=0.3)
    rng = np.random.default_rng(9)
    st["length"] = rng.integers(4, 120, len(st))
    noisy = st.copy()
    cols = np.arange(120)
    past = cols[None, :] >= st["length"][:, None]
    noisy["wave"][past] = rng.integers(-32768, 32768, int(past.sum()))
    quiet = st.copy()
    quiet["wave"][past] = 15000
    for kw in ({}, {"pretrigger": 60}):
        a, b = end_window_stats(noisy, **kw), end_window_stats(quiet, **kw)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("length", [120, 30, 47])
def test_the_walk_ends_the_window_before_a_pulse_at_every_sample(length):
    # a pulse starting at any sample the walk reaches, in any lane of its blocks of 8
    # (the last one partly past the walk's end), ends the window 3 samples before it
    from waveform_analysis.dtypes import st_waveforms_dtype

    starts = np.arange(12, min(43, length - 2))  # (before 12: the first noise estimate sees it)
    st = np.zeros(len(starts), dtype=st_waveforms_dtype(120))
    st["wave"] = 1000
    st["length"] = length
    for i, p in enumerate(starts):
        st["wave"][i, p:p + 6] = 900
    ends = end_window_stats(st)[3]
    np.testing.assert_array_equal(ends, np.maximum(np.minimum(starts - 3, 40), 4))
