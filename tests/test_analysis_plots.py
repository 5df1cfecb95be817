"""PSD and time-of-flight pictures: figures with labelled axes, written only when given a path."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from waveform_analysis import plotting  # noqa: E402
from waveform_analysis.errors import ConfigError  # noqa: E402
from waveform_analysis.processing.coincidences import find_coincidences  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_coincidences import _tof  # noqa: E402


def _features(n: int = 20_000, seed: int = 2) -> np.ndarray:
    """Gammas (PSD about 0.12) and neutrons (about 0.28) over a falling energy spectrum."""
    rng = np.random.default_rng(seed)
    d = np.zeros(n, [("channel", np.int16), ("energy_calibrated", np.float64), ("psd", np.float32)])
    e = rng.exponential(400.0, n) + 20
    neutron = rng.random(n) < 0.3
    d["energy_calibrated"] = e
    d["psd"] = np.where(neutron, 0.28, 0.12) + rng.normal(0, 0.01 + 0.5 / np.sqrt(e), n)
    return d


def test_psd_plot_draws_the_two_bands_and_takes_a_selection(tmp_path):
    d = _features()
    fig = plotting.plot_psd(d, selection="energy_calibrated > 50", path=tmp_path / "psd.png")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "energy_calibrated" and "psd" in ax.get_ylabel()
    assert str(int(np.sum(d["energy_calibrated"] > 50))) in ax.get_title()
    assert (tmp_path / "psd.png").read_bytes()[:4] == b"\x89PNG"
    # the unit the run's settings name for the calibration labels the axis
    assert plotting.plot_psd(d, units={"energy_calibrated": "MeV"}).axes[0].get_xlabel() == (
        "energy_calibrated [MeV]")
    spectrum = plotting.plot_spectrum(d, "energy_calibrated", units={"energy_calibrated": "keV"})
    assert spectrum.axes[0].get_xlabel() == "energy_calibrated [keV]"
    with pytest.raises(ConfigError, match="needs a 'psd' field"):
        plotting.plot_psd(d[["channel", "energy_calibrated"]])


def test_tof_plot_has_one_histogram_per_channel_pair(tmp_path):
    co = find_coincidences(_tof(3000), 100.0, "0:0")
    fig = plotting.plot_tof(co, path=tmp_path / "tof.png")
    labels = [t.get_text().split(" (")[0] for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["0:1 - 0:0", "1:3 - 0:0"]
    fig = plotting.plot_tof(co, selection="channel == 1")
    assert len(fig.axes[0].get_legend().get_texts()) == 1
    assert "[ns]" in fig.axes[0].get_xlabel()


def test_psd_axis_shows_the_bands_not_the_noise_triggers_far_outside_0_to_1():
    """Triggers of nearly no charge have a ratio anywhere (-5 on the legend and scintillator
    runs): the axis keeps to the physical range of tail / total, so the bands stay visible,
    and says how many entries fall outside it."""
    d = _features()
    rng = np.random.default_rng(3)
    d["psd"][:600] = rng.uniform(-5.0, -1.0, 600)
    d["energy_calibrated"][:600] = rng.uniform(0.0, 30.0, 600)
    fig = plotting.plot_psd(d)
    lo, hi = fig.axes[0].get_ylim()
    assert 0.0 <= lo < 0.1 and 0.28 < hi <= 1.0
    assert any("outside the psd range" in t.get_text() and int(t.get_text().split()[0]) >= 600
               for t in fig.axes[0].texts)
