import json

import numpy as np
import pytest

from waveform_analysis.errors import ConfigError
from waveform_analysis.synthetic import (
    TRUTH_DTYPE,
    generate_run,
    generate_runs,
    load_truth,
    synthesize,
)


def test_truth_beside_raw(tmp_path):
    run = generate_run(tmp_path, "run_a", n_waveforms=200, n_samples=400, seed=1)
    assert run == tmp_path / "run_a"
    assert (run / "truth.npy").is_file() and (run / "truth.json").is_file()
    assert sorted(p.name for p in (run / "RAW").iterdir()) == [
        "DataR_CH0@V2730_0.CSV", "DataR_CH1@V2730_0.CSV"]
    truth = load_truth(run)
    assert truth.dtype == TRUTH_DTYPE
    meta = json.loads((run / "truth.json").read_text())
    assert meta["n_waveforms"] == 200 and meta["fmt"] == "vx2730" and meta["seed"] == 1
    assert meta["n_pulses"] == len(truth) and meta["n_records"] == 400
    assert meta["n_noise_only_records"] == 80  # 20 % of 400


def test_model_properties():
    st, truth = synthesize(n_channels=2, n_waveforms=2000, seed=7)
    assert len(st) == 4000
    assert np.all(np.diff(st["time"]) >= 0)
    # sorted by time then channel
    order = np.lexsort((st["channel"], st["time"]))
    assert np.array_equal(order, np.arange(len(st)))
    with_pulse = np.unique(truth["record_i"])
    assert len(st) - with_pulse.size == 800
    assert 1.35 < len(truth) / len(st) < 1.65
    assert truth["amplitude"].min() >= 15 and truth["amplitude"].max() <= 1250
    assert np.all(truth["area"] > truth["amplitude"])
    assert np.all(truth["channel"] == st["channel"][truth["record_i"]])
    # pulses sit after the baseline region and are well separated within a record
    assert truth["left"].min() >= 50
    same = np.diff(truth["record_i"]) == 0
    assert np.all(np.diff(truth["position"])[same] >= 50)
    # coincidences: trigger pulses of the two channels of one event are correlated
    rec = truth["record_i"]
    trig = truth[(truth["position"] > 150) & (truth["position"] < 200)]
    ev = trig["record_i"] // 2
    a0 = np.full(2000, np.nan)
    a1 = np.full(2000, np.nan)
    a0[ev[trig["channel"] == 0]] = trig["amplitude"][trig["channel"] == 0]
    a1[ev[trig["channel"] == 1]] = trig["amplitude"][trig["channel"] == 1]
    both = ~np.isnan(a0) & ~np.isnan(a1)
    assert both.sum() > 500
    assert np.corrcoef(np.log(a0[both]), np.log(a1[both]))[0, 1] > 0.8
    # pulses are negative: the waveform minimum near the truth position
    r = rec[0]
    assert st["wave"][r].min() < 15000 - 10
    assert st["wave"].max() <= 16383


def test_deterministic_and_runs(tmp_path):
    a, ta = synthesize(n_waveforms=50, seed=3)
    b, tb = synthesize(n_waveforms=50, seed=3)
    assert np.array_equal(a, b) and np.array_equal(ta, tb)
    runs = generate_runs(tmp_path, ["r0", "r1"], n_waveforms=20, n_samples=200, fmt="v1725")
    assert [r.name for r in runs] == ["r0", "r1"]
    assert (runs[1] / "RAW" / "raw_b0_seg0.bin").is_file()
    assert json.loads((runs[1] / "truth.json").read_text())["seed"] == 1


def test_bad_parameters(tmp_path):
    with pytest.raises(ConfigError):
        generate_run(tmp_path, "x", fmt="nope")
    with pytest.raises(ConfigError):
        synthesize(noise_only_fraction=1.5)


@pytest.mark.parametrize("fmt", ["vx2730", "v1725"])
def test_scintillator_shape_written_with_its_truth(tmp_path, fmt):
    # defect: scintillator pulses existed in memory only, no run could be written of them
    from waveform_analysis.daq import get_adapter
    from waveform_analysis.processing import find_peaks, set_baselines
    from waveform_analysis.synthetic import SHAPE_TRUTH_DTYPE, scintillator_run

    run = generate_run(tmp_path, "sc", fmt=fmt, shape="scintillator", n_waveforms=150,
                       n_samples=300, tau_slow=150.0, neutron_fraction=0.3,
                       afterpulse_prob=0.2, drift=5.0, seed=4)
    truth = load_truth(run)
    meta = json.loads((run / "truth.json").read_text())
    assert truth.dtype == SHAPE_TRUTH_DTYPE and len(truth) == 300
    assert meta["shape"] == "scintillator" and meta["tau_slow"] == 150.0
    a = get_adapter(fmt)
    st = a.read(tmp_path, a.list_files(tmp_path, "sc"), "sc")
    ref, ref_truth = scintillator_run(n_channels=2, n_waveforms=150, seed=4, n_samples=300,
                                      tau_slow=150.0, neutron_fraction=0.3, afterpulse_prob=0.2,
                                      drift=5.0, dt=meta["dt"])
    assert np.array_equal(st["wave"], ref["wave"]) and np.array_equal(truth, ref_truth)
    assert np.array_equal(st["channel"][truth["record_i"]], truth["channel"])
    # the particle mix is in the truth, and each big pulse is found where the truth says
    assert 0.2 < truth["particle"].mean() < 0.4
    set_baselines(st)
    peaks = find_peaks(st)
    big = truth["amplitude"] >= 100
    at = np.zeros(len(st), bool)
    hit = (peaks["left"] <= truth["position"][peaks["record_i"]]) & (
        truth["position"][peaks["record_i"]] < peaks["right"])
    at[peaks["record_i"][hit]] = True
    assert at[truth["record_i"][big]].mean() >= 0.99


def test_unknown_shape_and_shape_options(tmp_path):
    with pytest.raises(ConfigError, match="unknown shape"):
        generate_run(tmp_path, "x", shape="nope")
    with pytest.raises(ConfigError, match="tau_range"):
        generate_run(tmp_path, "y", shape="scintillator", tau_range=(1, 2))


def test_generate_command_writes_the_scintillator_shape(tmp_path):
    from click.testing import CliRunner

    from waveform_analysis.cli import main

    r = CliRunner().invoke(main, ["generate", str(tmp_path), "--runs", "1", "--waveforms", "20",
                                  "--shape", "scintillator", "--set", "tau_slow=150",
                                  "--set", "noise=2,5", "--set", "n_samples=300"])
    assert r.exit_code == 0, r.output
    meta = json.loads((tmp_path / "run_001" / "truth.json").read_text())
    assert meta["shape"] == "scintillator" and meta["tau_slow"] == 150
    assert meta["noise"] == [2, 5] and meta["n_records"] == 40
    r = CliRunner().invoke(main, ["generate", str(tmp_path / "b"), "--runs", "1",
                                  "--shape", "scintillator", "--set", "tau_slow"])
    assert r.exit_code != 0 and "KEY=VALUE" in r.output


def test_scintillator_truth_has_the_light_the_noise_lets_be_seen():
    from waveform_analysis.synthetic import scintillator

    st, quiet = scintillator(n=300, n_samples=600, tau_slow=150.0, noise=0.01, seed=5)
    _, noisy = scintillator(n=300, n_samples=600, tau_slow=150.0, noise=5.0, seed=5)
    # right_visible bounds that light: the same pulses' samples, summed from 2 before the
    # light starts, give area_visible (to the samples' rounding)
    light = 13000.0 - st["wave"].astype(np.float64)
    first = np.floor(noisy["t0"]).astype(np.int64) - 2
    summed = [light[r, a:b].sum() for r, (a, b) in enumerate(zip(first, noisy["right_visible"]))]
    assert np.allclose(summed, noisy["area_visible"], atol=30.0)
    assert np.all((noisy["right_visible"] >= first) & (noisy["right_visible"] <= 600))
    assert np.allclose(quiet["area_visible"], quiet["area"], rtol=0.01)
    assert np.all(noisy["area_visible"] <= noisy["area"] + 1e-3)
    big = noisy["amplitude"] >= 100
    # a 150-sample slow component spreads part of the light thinner than 5 ADC of noise
    assert 0.9 < np.median(noisy["area_visible"][big] / noisy["area"][big]) < 0.999


def test_delay_ns_writes_a_two_detector_time_of_flight_run(tmp_path):
    """--set delay_ns=0,37.512: channel 1 fires 37.512 ns after channel 0, in the files' time
    tags (ps), so the coincidences of the written run show that flight time; the truth still
    indexes the records the reader gives."""
    from click.testing import CliRunner

    from waveform_analysis import Context, standard_plugins
    from waveform_analysis.cli import main

    r = CliRunner().invoke(main, ["generate", str(tmp_path / "DAQ"), "--runs", "1", "--waveforms", "300",
                                  "--format", "compass-bin", "--set", "delay_ns=0,37.512"])
    assert r.exit_code == 0, r.output
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(tmp_path / "DAQ")})
    ctx.register(standard_plugins())
    ctx.set_config({"coincidences": {"window_ns": 100, "reference": "0:0"}})
    co = ctx.get_data("run_001", "coincidences")
    assert len(co) == 300 and np.allclose(co["delta_t"], 37.512)
    st = ctx.get_data("run_001", "st_waveforms")
    truth = load_truth(tmp_path / "DAQ" / "run_001")
    np.testing.assert_array_equal(st["channel"][truth["record_i"]], truth["channel"])
    with pytest.raises(ConfigError, match="delay_ns"):
        generate_run(tmp_path / "v", "r", fmt="v1725", delay_ns=[0, 5.0], n_waveforms=5)


def test_scintillator_low_frequency_noise():
    # noise whose power is at low frequencies: a large RMS, small successive differences
    from waveform_analysis.synthetic import scintillator

    st, truth = scintillator(n=400, n_samples=800, noise=3.0, noise_lf=20.0, noise_only=True, seed=1)
    w = st["wave"].astype(np.float64)
    rms = w.std(axis=1).mean()
    diff = (np.diff(w, axis=1).std(axis=1) / np.sqrt(2)).mean()
    assert np.allclose(truth["noise"], np.hypot(3.0, 20.0))
    assert 17.0 < rms < 21.0  # a record spans a few of its swings
    assert diff < 0.25 * rms
    # off by default: the records and truth are those of before the option
    a, ta = scintillator(n=50, seed=3)
    b, tb = scintillator(n=50, seed=3, noise_lf=0.0)
    assert np.array_equal(a, b) and np.array_equal(ta, tb)


@pytest.mark.parametrize("opts", [{"noise_lf": -1.0}, {"noise_lf": 5.0, "noise_lf_samples": 0.0}])
def test_scintillator_low_frequency_noise_bad_options(opts):
    from waveform_analysis.synthetic import scintillator

    with pytest.raises(ConfigError, match="noise_lf"):
        scintillator(n=5, **opts)
