"""Coincidence energies: calibrated, else firmware, else ``basic_features``' charge_long."""

from __future__ import annotations

import numpy as np
import pytest

from waveform_analysis import Context, standard_plugins
from waveform_analysis.synthetic import generate_run

RUN = "run_001"


def _ctx(data, tmp_path, config=None) -> Context:
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(data), **(config or {})})
    ctx.register(standard_plugins())
    return ctx


@pytest.fixture(scope="module")
def wavedump(tmp_path_factory):
    root = tmp_path_factory.mktemp("wd") / "DAQ"
    generate_run(root, RUN, n_channels=2, n_waveforms=150, n_samples=200, seed=5, fmt="wavedump")
    return root


def test_coincidence_energy_falls_back_to_charge_long(wavedump, tmp_path):
    data = wavedump  # WaveDump files hold no energy
    ctx = _ctx(data, tmp_path, {"coincidences": {"window_ns": 2000.0}})
    tr = ctx.get_data(RUN, "triggers")
    assert np.all(np.isnan(tr["energy"])) and np.all(np.isnan(tr["energy_calibrated"]))
    got = ctx.get_data(RUN, "coincidences")
    bf = ctx.get_data(RUN, "basic_features")
    assert len(got) > 0 and np.array_equal(tr["timestamp"], ctx.get_data(RUN, "st_waveforms")["timestamp"])
    np.testing.assert_array_equal(got["energy"], bf["charge_long"][got["index"]].astype(np.float64))
    np.testing.assert_array_equal(got["ref_energy"], bf["charge_long"][got["ref_index"]].astype(np.float64))
    # the energies come from basic_features: its gates enter the key
    gated = _ctx(data, tmp_path, {"coincidences": {"window_ns": 2000.0}, "gate_long_ns": 100.0})
    assert gated.key_for(RUN, "coincidences") != ctx.key_for(RUN, "coincidences")
    # a calibration of basic_features calibrates them
    cal = _ctx(data, tmp_path, {"coincidences": {"window_ns": 2000.0},
                                "basic_features": {"calibration": [0.0, 2.0]}}).get_data(RUN, "coincidences")
    np.testing.assert_allclose(cal["energy"], 2.0 * got["energy"])


def test_list_mode_coincidences_do_not_need_waveforms(tmp_path):
    from waveform_analysis.synthetic import synthesize, write_compass_bin

    st, _ = synthesize(n_channels=2, n_waveforms=50, n_samples=64, seed=7)
    st = st[np.argsort(st["timestamp"], kind="stable")]
    raw = tmp_path / "DAQ" / "lm" / "RAW"
    raw.mkdir(parents=True)
    write_compass_bin(raw, st, run_name="lm", samples=False)
    ctx = _ctx(tmp_path / "DAQ", tmp_path, {"dt_ns": 2.0, "coincidences": {"window_ns": 1e6}})
    got = ctx.get_data("lm", "coincidences")
    assert len(got) and np.all(np.isfinite(got["energy"]))
    assert not ctx.is_cached("lm", "basic_features")
    gated = _ctx(tmp_path / "DAQ", tmp_path, {"dt_ns": 2.0, "gate_long_ns": 100.0,
                                               "coincidences": {"window_ns": 1e6}})
    assert gated.key_for("lm", "coincidences") == ctx.key_for("lm", "coincidences")
