"""Peak finding outside the easy regime: noise-following threshold, hysteresis, baselines.

The validation grid of bench/validate_physics.py is checked here at two of
its corners on a small sample (fixed seeds, so the figures are reproducible).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

from waveform_analysis.dtypes import PEAKS_DTYPE, st_waveforms_dtype
from waveform_analysis.plugins import PeaksPlugin, StWaveformsPlugin
from waveform_analysis.processing import (
    channel_noise,
    find_peaks,
    group_events,
    set_baselines,
)
from waveform_analysis.synthetic import synthesize

VALIDATE = Path(__file__).resolve().parents[1] / "bench" / "validate_physics.py"


@pytest.fixture(scope="module")
def validate():
    spec = importlib.util.spec_from_file_location("validate_physics", VALIDATE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("tau, noise", [(60, 5), (4, 2), (40, 4)])
def test_targets_hold_at_grid_corners(validate, tau, noise):
    r = validate.score_isolated(tau, noise, n=800, seed=5)
    assert r["eff"] >= 0.99
    assert r["split"] <= 0.01
    assert abs(r["area_med"]) <= 0.01
    assert r["area_p95"] <= 0.05
    assert r["pos"] >= 0.95
    b = validate.score_baseline_window(tau, noise, n=300, seed=5)
    assert b["base"] >= 0.95
    assert b["handled"] >= 0.95  # handled, not only visible


@pytest.mark.parametrize("noise", [2.0, 5.0])
def test_false_peaks_follow_the_noise(validate, noise):
    assert validate.false_peaks(noise, n=4000, seed=3) <= 1.0


def _records(waves, baseline=1000.0, rms=0.0, board=0, channel=0):
    waves = np.atleast_2d(np.asarray(waves))
    st = np.zeros(len(waves), dtype=st_waveforms_dtype(waves.shape[1]))
    st["wave"] = np.rint(waves).astype(np.int16)
    st["baseline"] = baseline
    st["baseline_rms"] = rms
    st["length"] = waves.shape[1]
    st["dt"] = 2
    st["board"] = board
    st["channel"] = channel
    return st


def _tail(n=800, t0=100, amp=200.0, tau=60.0):
    t = np.arange(n) - t0
    return np.where(t >= 0, amp * np.exp(-np.maximum(t, 0) / tau), 0.0)


def test_hysteresis_keeps_a_long_noisy_tail_in_one_peak():
    rng = np.random.default_rng(0)
    sig = 4.0
    pulse = _tail(amp=200.0, tau=60.0)
    waves = 1000.0 - pulse[None, :] + rng.normal(0, sig, (200, 800))
    st = _records(waves, rms=sig)
    st["baseline"] = 1000.0
    peaks = find_peaks(st)
    assert np.array_equal(np.bincount(peaks["record_i"], minlength=200), np.ones(200))
    # the peak runs until well past where the tail meets the noise (t = tau ln(A / sigma))
    assert np.all(peaks["right"] >= 100 + 60 * np.log(200 / sig))
    np.testing.assert_allclose(np.median(peaks["area"]), pulse.sum(), rtol=0.01)
    # with the hysteresis and the derived extension switched off, noise splits the tail
    old = find_peaks(st, 20.0, threshold_sigma=0.0, release_sigma=5.0, merge_gap=10,
                     right_extension=20)
    assert len(old) > 1.3 * len(st)


def test_a_resolvable_second_pulse_on_the_tail_is_its_own_peak():
    # its own fast rise, above half the first's height and the tail it sits on
    rng = np.random.default_rng(2)
    first = _tail(amp=300.0, tau=60.0)
    second = _tail(t0=115, amp=250.0, tau=60.0)
    waves = 1000.0 - (first + second)[None, :] + rng.normal(0, 3.0, (100, 800))
    st = _records(waves, rms=3.0)
    peaks = find_peaks(st)
    assert np.array_equal(np.bincount(peaks["record_i"], minlength=100), np.full(100, 2))
    # both rise within one sample: the 3-sample average puts the top one sample late
    assert np.all(np.abs(peaks["position"][::2] - 100) <= 1)
    assert np.all(np.abs(peaks["position"][1::2] - 115) <= 1)
    assert np.all(peaks["right"][::2] == peaks["left"][1::2])
    assert np.all(peaks["left"][1::2] >= 110)
    # split_sigma=0: one peak for the pair
    assert len(find_peaks(st, split_sigma=0.0)) == 100


def test_right_extension_follows_the_tail_constant():
    for tau in (4.0, 40.0):
        st = _records(1000.0 - _tail(amp=500.0, tau=tau), rms=2.0)
        (p,) = find_peaks(st)
        # released at 1 sigma (tau ln(500/2) after t0), then 2 x area / height ~ 2 tau more
        assert p["right"] - 100 == pytest.approx(tau * (np.log(250) + 2), rel=0.15, abs=3)


def test_threshold_follows_each_channels_noise():
    rng = np.random.default_rng(1)
    quiet = 1000.0 + rng.normal(0, 2.0, (50, 800))
    loud = 1000.0 + rng.normal(0, 6.0, (50, 800))
    st = np.concatenate([_records(quiet, channel=0), _records(loud, channel=1)])
    set_baselines(st)
    noise = channel_noise(st)
    assert noise[:50] == pytest.approx(2.0, rel=0.05)
    assert noise[50:] == pytest.approx(6.0, rel=0.05)
    assert len(find_peaks(st)) == 0
    # a fixed 8 ADC threshold fires all over the loud channel
    assert len(find_peaks(st, 8.0, threshold_sigma=0.0)) > 100
    # a 16 ADC pulse is 8 sigma on the quiet channel, 2.7 sigma on the loud one
    st["wave"][:, 300] -= 16
    peaks = find_peaks(st, noise_guard=0.0)  # the channel's level alone, no per-record margin
    assert set(range(50)) <= set(peaks["record_i"])
    assert np.sum(peaks["record_i"] >= 50) <= 3
    # the threshold option stays a floor under the noise-following level
    assert not np.any(find_peaks(st, 25.0)["record_i"] < 50)


def test_saturated_peaks_at_both_adc_limits():
    low = 15000.0 - _tail(amp=20000.0, tau=4.0)
    st = _records(np.clip(low, 0, 16383), baseline=15000.0, rms=3.0)
    (p,) = find_peaks(st)
    assert p["saturated"] and p["height"] == 15000.0
    high = 1000.0 + _tail(amp=20000.0, tau=4.0)
    st = _records(np.clip(high, 0, 16383), baseline=1000.0, rms=3.0)
    (p,) = find_peaks(st, polarity="positive")
    assert p["saturated"]
    st = _records(1000.0 - _tail(amp=500.0, tau=4.0), rms=3.0)
    (p,) = find_peaks(st)
    assert not p["saturated"]


def test_board_in_peaks_and_events_by_board_and_channel():
    pulse = 1000.0 - _tail(n=200, t0=50, amp=300.0, tau=4.0)
    st = np.concatenate([_records(pulse, board=b, channel=0, rms=2.0) for b in (0, 1, 0)])
    st["time"] = [0, 0, 10_000]
    peaks = find_peaks(st)
    assert peaks.dtype == PEAKS_DTYPE
    assert list(peaks["board"]) == [0, 1, 0]
    ev = group_events(peaks, 100)
    assert list(ev["n_channels"]) == [2, 1]  # CH0 of two boards are two channels
    assert list(ev["n_peaks"]) == [2, 1]


def test_plugins_declare_the_new_options_and_versions():
    opts = PeaksPlugin.options
    for name in ("threshold", "threshold_sigma", "release_sigma", "tail_extension",
                 "position_sigma", "split_sigma", "merge_gap", "right_extension", "left_extension"):
        assert opts[name].help
    assert PeaksPlugin.version != "1.0.0" and StWaveformsPlugin.version != "1.0.0"
    assert opts["merge_gap"].default is None and opts["right_extension"].default is None


def test_synthesize_hard_regime_truth():
    st, truth = synthesize(n_channels=1, n_waveforms=300, pulse_mean=1.0,
                           noise_only_fraction=0.0, tau_range=(4.0, 60.0),
                           pileup_fraction=0.5, baseline_pulse_fraction=0.2, seed=2)
    assert truth["tau"].min() >= 4.0 and truth["tau"].max() <= 60.0
    p = truth["partner"]
    has = p >= 0
    assert 200 < has.sum() < 400 and has.sum() % 2 == 0  # both rows of ~150 pairs
    assert np.array_equal(p[p[has]], np.flatnonzero(has))
    gap = np.abs(truth["position"][has] - truth["position"][p[has]])
    assert gap.min() >= 4 and gap.max() <= 31
    assert np.all(truth["record_i"][has] == truth["record_i"][p[has]])
    inb = truth["in_baseline"]
    assert 30 < inb.sum() < 90 and truth["position"][inb].max() < 40
    # defaults: none of it
    _, plain = synthesize(n_waveforms=50, seed=2)
    assert np.all(plain["partner"] == -1) and not plain["in_baseline"].any()
    assert np.all(plain["tau"] == 4.0) and not plain["clipped"].any()


def test_synthesize_clipping_is_in_the_truth():
    for polarity, base in (("negative", 15000.0), ("positive", 1000.0)):
        st, truth = synthesize(n_channels=1, n_waveforms=200, baseline=base, polarity=polarity,
                               amplitude_range=(5000.0, 30000.0), seed=3)
        limit = 0 if polarity == "negative" else 16383
        at_limit = (st["wave"] == limit).any(axis=1)
        assert truth["clipped"].any()
        assert np.all(at_limit[truth["record_i"][truth["clipped"]]])


@settings(max_examples=40, deadline=None)
@given(
    seed=hst.integers(0, 10_000),
    tau=hst.floats(2.0, 80.0),
    noise=hst.floats(0.5, 8.0),
    polarity=hst.sampled_from(["negative", "positive"]),
)
def test_peak_invariants(seed, tau, noise, polarity):
    st, _ = synthesize(n_channels=2, n_waveforms=20, n_samples=400, noise_sigma=noise,
                       tau_range=(tau, tau), baseline=8000.0, polarity=polarity, seed=seed,
                       pileup_fraction=0.3, baseline_pulse_fraction=0.2)
    set_baselines(st)
    p = find_peaks(st, polarity=polarity)
    assert np.all((p["left"] <= p["position"]) & (p["position"] < p["right"]))
    assert np.all(p["right"] <= st["length"][p["record_i"]])
    assert np.all(p["width"] == p["right"] - p["left"])
    same = np.diff(p["record_i"]) == 0
    assert np.all(np.diff(p["record_i"]) >= 0)
    assert np.all(p["left"][1:][same] >= p["right"][:-1][same])  # no overlap in a record
    thr = np.maximum(8.0, 5.0 * channel_noise(st))[p["record_i"]]
    assert np.all(p["height"] > thr - 1e-3)


def test_one_noisy_sample_on_the_top_does_not_move_the_position():
    # a pulse peaking at 101 (rise over 2 samples, slow tail), noise 2 ADC, and on 200
    # records one sample of its top 4-8 samples later raised by 4-6 sigma: the position
    # stays within one sample of 101 (the raw extremum, and the first sample within 3
    # sigma of it, would be the raised sample)
    rng = np.random.default_rng(4)
    n = 200
    t = np.arange(400) - 100.0
    pulse = np.where(t >= 1, 400.0 * np.exp(-np.maximum(t - 1, 0) / 60.0), 0.0)
    pulse[100] = 200.0
    waves = 1000.0 - pulse[None, :] + rng.normal(0, 2.0, (n, 400))
    at = 101 + rng.integers(4, 9, n)
    waves[np.arange(n), at] -= rng.uniform(8.0, 12.0, n) + (pulse[101] - pulse[at])
    st = _records(waves, rms=2.0)
    peaks = find_peaks(st)
    assert np.array_equal(np.bincount(peaks["record_i"], minlength=n), np.ones(n))
    assert np.mean(np.abs(peaks["position"] - 101) <= 1) >= 0.95
