"""Per-channel noise (processing/noise.py): the median baseline_rms of each (board, channel)."""

from __future__ import annotations

import numpy as np

from waveform_analysis.dtypes import st_waveforms_dtype
from waveform_analysis.processing.noise import channel_noise, noise_from, per_channel_stat
from waveform_analysis.processing.rows import channel_keys, record_channel_keys


def records(board, channel, rms):
    st = np.zeros(len(rms), dtype=st_waveforms_dtype(4))
    st["board"] = board
    st["channel"] = channel
    st["baseline_rms"] = rms
    return st


def test_median_per_board_and_channel():
    st = records([0, 0, 0, 1, 1, 0], [2, 2, 2, 2, 2, 3], [1.0, 50.0, 3.0, 7.0, 9.0, 4.0])
    # one record with a pulse in its window (50) does not move its channel's noise;
    # CH2 of board 1 is another channel than CH2 of board 0
    np.testing.assert_allclose(channel_noise(st), [3.0, 3.0, 3.0, 8.0, 8.0, 4.0])
    keys = channel_keys(st["board"], st["channel"])
    np.testing.assert_array_equal(keys, record_channel_keys(st))
    np.testing.assert_array_equal(noise_from(keys, st["baseline_rms"]), channel_noise(st))


def test_values_that_are_not_finite_or_missing_count_as_zero():
    st = records(0, 1, [np.nan, np.inf, 0.0, 2.0])
    np.testing.assert_allclose(channel_noise(st), 0.0)  # median of 0, 0, 0, 2
    no_rms = np.zeros(3, dtype=[("channel", np.int16), ("wave", np.int16, 4)])
    np.testing.assert_array_equal(channel_noise(no_rms), np.zeros(3))
    assert channel_noise(st[:0]).size == 0


def test_percentiles_over_keys_far_apart():
    # keys spanning more than 2^16 take the sorting path; the result is the same
    keys = np.array([0, 5, 0, 5, 1 << 40, 1 << 40], np.int64)
    values = np.array([1.0, 10.0, 3.0, 30.0, 100.0, 300.0])
    np.testing.assert_allclose(per_channel_stat(keys, values), [2.0, 20.0, 2.0, 20.0, 200.0, 200.0])
    np.testing.assert_allclose(per_channel_stat(keys[:4], values[:4], 25.0), [1.5, 15.0, 1.5, 15.0])


def test_histogram_percentile_has_the_bits_of_the_sorting_one():
    # enough records per group for the histogram path; ties, zeros and a wide span of
    # values, medians of odd and even counts, and values only the sorting path takes
    from waveform_analysis.processing._noise_kernels import _sorted_percentile, group_percentile

    rng = np.random.default_rng(7)
    n = 100_003
    inv = rng.integers(0, 3, n).astype(np.int64)
    cases = [np.round(rng.gamma(3.0, 1.0, n), 2), rng.gamma(3.0, 1.0, n),
             np.where(rng.random(n) < 0.3, 0.0, rng.normal(3.0, 0.3, n).clip(0.1)),
             np.exp(rng.uniform(-30, 30, n)), np.full(n, 2.5),
             rng.normal(0.0, 1.0, n), np.where(rng.random(n) < 0.01, np.nan, 1.0)]
    for values in cases:
        for q in (0.0, 12.5, 25.0, 50.0, 99.0, 100.0):
            fast, ref = np.empty(n), np.empty(n)
            group_percentile(inv, values, 3, q, fast)
            _sorted_percentile(inv, values, 3, q, ref)
            assert fast.tobytes() == ref.tobytes(), q
    counts = np.bincount(inv)  # medians of both kinds: the middle value, the mean of two
    assert (counts % 2 == 0).any() and (counts % 2 == 1).any()


def test_the_spread_of_successive_baselines_adds_to_the_windows_rms():
    from waveform_analysis.processing.noise import MAD_GAP, baseline_spread

    n = 1000
    st = records(0, 1, np.full(n, 3.0))
    st["baseline"] = np.where(np.arange(n) % 2, 1002.0, 1000.0)  # every gap is 2 ADC
    expected = np.sqrt(9.0 + 2.0 * (2.0 / MAD_GAP) ** 2)
    np.testing.assert_allclose(channel_noise(st), expected)
    keys = record_channel_keys(st)
    np.testing.assert_allclose(noise_from(keys, st["baseline_rms"], st["baseline"]), expected)
    np.testing.assert_allclose(noise_from(keys, st["baseline_rms"]), 3.0)  # the windows alone
    np.testing.assert_allclose(baseline_spread(keys, st["baseline"]), 2.0 / MAD_GAP)
    # a slow drift over the run cancels out of the gaps
    st["baseline"] = np.linspace(1000.0, 1100.0, n)
    assert channel_noise(st)[0] < 3.01


def test_gaps_are_taken_within_a_channel_and_a_long_run_is_sampled():
    from waveform_analysis.processing.noise import MAD_GAP, baseline_spread

    rng = np.random.default_rng(3)
    n = 60_000  # > 4,096 gaps per channel: every k-th is taken
    channel = np.tile([0, 1], n // 2)
    base = np.where(channel == 0, 100.0, 5000.0) + rng.normal(0.0, np.where(channel == 0, 1.0, 4.0))
    keys = channel_keys(np.zeros(n, np.int16), channel.astype(np.int16))
    spread = baseline_spread(keys, base)
    # interleaved channels: no gap between a 100 and a 5000; each near its own sigma
    assert abs(spread[0] - 1.0) < 0.05 and abs(spread[1] - 4.0) < 0.2
    full = [np.median(np.abs(np.diff(base[channel == c]))) / MAD_GAP for c in (0, 1)]
    np.testing.assert_allclose(spread[:2], full, rtol=0.04)
    # one record of a channel, or baselines that are not finite, give no gap: spread 0
    assert baseline_spread(keys[:1], base[:1])[0] == 0.0
    assert baseline_spread(keys[:4], np.array([np.nan, 1.0, np.nan, 1.0]))[0] == 0.0


def test_a_channels_noise_depends_only_on_its_own_records_in_order():
    # property: however the records of two channels interleave, each channel's noise is the
    # one its own sequence gives alone; a constant offset of a channel changes nothing
    from hypothesis import given, settings
    from hypothesis import strategies as hs

    @settings(max_examples=60, deadline=None)
    @given(hs.lists(hs.booleans(), min_size=2, max_size=300), hs.integers(0, 2**32 - 1),
           hs.floats(-1e4, 1e4))
    def check(which, seed, offset):
        rng = np.random.default_rng(seed)
        n = len(which)
        channel = np.asarray(which, np.int16)
        base = rng.normal(0.0, 2.0, n) + np.cumsum(rng.normal(0.0, 0.1, n))
        rms = rng.gamma(9.0, 0.4, n)
        keys = channel_keys(np.zeros(n, np.int16), channel)
        got = noise_from(keys, rms, base)
        for c in (0, 1):
            mine = channel == c
            if not mine.any():
                continue
            alone = noise_from(keys[mine], rms[mine], base[mine])
            assert np.array_equal(got[mine], alone)
            shifted = noise_from(keys[mine], rms[mine], base[mine] + offset)
            np.testing.assert_allclose(shifted, alone, rtol=1e-6, atol=1e-6)

    check()


def test_two_percentiles_from_one_histogram_are_those_of_two():
    # the baselines' re-check level (25 %) and the median RMS come from one histogram when
    # the RMS are finite and >= 0; otherwise nothing is computed and each is taken apart
    from waveform_analysis.processing._noise_kernels import group_quantiles, group_stats
    from waveform_analysis.processing.noise import quantile_and_noise

    rng = np.random.default_rng(8)
    n = 60_001
    inv = rng.integers(0, 3, n).astype(np.int64)
    plain = [np.round(rng.gamma(3.0, 1.0, n), 2), np.where(rng.random(n) < 0.3, 0.0, 3.0),
             np.exp(rng.uniform(-30, 30, n))]
    for values in plain:
        for q1, q2 in ((25.0, 50.0), (0.0, 100.0), (12.5, 99.0)):
            ok, a, b = group_quantiles(inv, values, 3, q1, q2)
            assert ok
            assert a.tobytes() == group_stats(inv, values, 3, q1).tobytes()
            assert b.tobytes() == group_stats(inv, values, 3, q2).tobytes()
    for values in (rng.normal(0.0, 1.0, n), np.where(rng.random(n) < 0.01, np.nan, 1.0)):
        assert not group_quantiles(inv, values, 3, 25.0, 50.0)[0]
    assert not group_quantiles(inv[:10], plain[0][:10], 3, 25.0, 50.0)[0]  # histograms too big
    # quantile_and_noise is per_channel_stat and noise_from, NaN and negatives included
    keys = inv * 7 + 1
    baseline = 1000 + rng.normal(0, 0.5, n)
    for values in (*plain, np.where(rng.random(n) < 0.01, np.nan, plain[0]), -plain[0]):
        at_q, noise = quantile_and_noise(keys, values, baseline, 25.0, 1.5)
        assert at_q.tobytes() == per_channel_stat(keys, values, 25.0).tobytes()
        assert noise.tobytes() == noise_from(keys, values, baseline, 1.5).tobytes()
