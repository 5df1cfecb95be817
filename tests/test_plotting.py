"""Pictures: each function returns a Figure and writes a file only when given a path."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from waveform_analysis import plotting  # noqa: E402
from waveform_analysis.dtypes import PEAKS_DTYPE  # noqa: E402
from waveform_analysis.processing.hits import compute_baselines, find_peaks  # noqa: E402
from waveform_analysis.synthetic import synthesize  # noqa: E402


@pytest.fixture(scope="module")
def run():
    st, _ = synthesize(n_channels=2, n_waveforms=100, n_samples=400, noise_sigma=3.0, baseline=15000.0,
                       pulse_mean=1.5, noise_only_fraction=0.2, amplitude_range=(20.0, 1000.0), seed=1,
                       sample_ns=2)  # fmt: skip
    st["baseline"] = compute_baselines(st, 40)
    return st, find_peaks(st, threshold=15.0)


def test_figures_without_files(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    st, peaks = run
    for fig in (
        plotting.plot_waveforms(st, peaks, threshold=15.0),
        plotting.plot_spectrum(peaks),
        plotting.plot_rate(peaks),
    ):
        assert fig.axes and all(ax.get_xlabel() for ax in fig.axes if ax.axison)
        assert all("[" in ax.get_xlabel() for ax in fig.axes if ax.axison)  # units
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("what", ["waveforms", "spectrum", "rate"])
def test_png_written(run, tmp_path, what):
    st, peaks = run
    path = tmp_path / f"{what}.png"
    if what == "waveforms":
        plotting.plot_waveforms(st, peaks, threshold=15.0, path=path)
    elif what == "spectrum":
        plotting.plot_spectrum(peaks, path=path)
    else:
        plotting.plot_rate(peaks, path=path)
    raw = path.read_bytes()
    assert raw[:4] == b"\x89PNG" and 10_000 < len(raw) < 2_000_000


def test_empty_peaks_still_draw(run, tmp_path):
    st, _ = run
    none = np.zeros(0, PEAKS_DTYPE)
    plotting.plot_spectrum(none, path=tmp_path / "s.png")
    plotting.plot_rate(none, path=tmp_path / "r.png")
    plotting.plot_waveforms(st, none, path=tmp_path / "w.png")
    assert all(p.stat().st_size > 1000 for p in tmp_path.iterdir())


def test_peaks_of_several_boards_are_drawn_per_board_and_channel():
    import numpy as np

    from waveform_analysis import plotting
    from waveform_analysis.dtypes import PEAKS_DTYPE

    peaks = np.zeros(40, PEAKS_DTYPE)
    peaks["board"] = np.repeat([0, 1], 20)
    peaks["channel"] = np.tile([0, 1], 20)
    peaks["area"] = np.arange(40) + 1.0
    peaks["height"] = np.arange(40) + 1.0
    peaks["time"] = np.arange(40) * 1000
    for fig in (plotting.plot_spectrum(peaks), plotting.plot_rate(peaks)):
        labels = {t.get_text().split(" (")[0] for ax in fig.axes for t in ax.get_legend().get_texts()}
        assert labels == {"board 0 channel 0", "board 0 channel 1", "board 1 channel 0", "board 1 channel 1"}


def test_gates_are_those_basic_features_sums_and_are_drawn(run, tmp_path):
    from waveform_analysis.processing.features import basic_features, gate_bounds

    st, peaks = run
    gates = dict(gate_long_ns=np.where(st["channel"] == 1, 200.0, 300.0), gate_short_ns=60.0,
                 pre_gate_ns=20.0)
    bounds = gate_bounds(st, **gates)
    feats = basic_features(st, peaks, **gates)
    has = bounds[:, 0] >= 0
    assert has.sum() > len(st) // 2 and np.all(feats["charge_long"][~has] == 0)
    for r in np.flatnonzero(has):
        g0, trig, short, long_ = bounds[r]
        assert trig - g0 == 10 or g0 == 0
        w = st["wave"][r].astype(np.float64) - st["baseline"][r]
        np.testing.assert_allclose(feats["charge_long"][r], -w[g0:long_].sum(), rtol=1e-5, atol=0.5)
        np.testing.assert_allclose(feats["charge_short"][r], -w[g0:short].sum(), rtol=1e-5, atol=0.5)
    assert np.array_equal(gate_bounds(st, trigger_sample=50, **gates)[:, 1], np.full(len(st), 50))
    path = tmp_path / "g.png"
    fig = plotting.plot_waveforms(st, peaks, threshold=15.0, gates=bounds, path=path)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert {"pre-gate", "short gate", "long gate", "trigger"} <= set(labels)
    assert path.stat().st_size > 1000


def test_plot_waveforms_from_the_command_line_draws_the_gates(tmp_path):
    from click.testing import CliRunner

    from waveform_analysis.cli import main
    from waveform_analysis.synthetic import generate_run

    data, RUN = tmp_path / "DAQ", "run_001"
    generate_run(data, RUN, n_channels=2, n_waveforms=60, n_samples=200, seed=5)
    out = tmp_path / "w.png"
    result = CliRunner().invoke(main, ["plot", str(data), RUN, "--what", "waveforms", "-o", str(out),
                                       "--cache", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000


@pytest.mark.parametrize("polarity", ["negative", "positive"])
def test_peak_markers_sit_at_the_peak_s_height_beyond_the_baseline(polarity):
    """The marker is drawn at (position, baseline -/+ height): at the extremum's level. The sample
    at the position (where the 3-sample average peaks) can be a swing to the other side beside a
    one-sample spike, which put the marker below the baseline of a positive peak (the WaveDump
    TPB run: samples 7705 7699 7730 7689 7702, baseline 7704.5, position on the 7699)."""
    st, _ = synthesize(n_channels=1, n_waveforms=4, n_samples=200, seed=3, noise_only_fraction=1.0)
    sign = -1 if polarity == "negative" else 1
    rng = np.random.default_rng(1)
    for r in range(4):
        st["wave"][r] = 7704 + rng.integers(-2, 3, 200)
        st["wave"][r, 98:103] = 7704 + sign * np.array([1, -5, 26, -15, -2])
    st["baseline"] = compute_baselines(st, 40)
    peaks = find_peaks(st, threshold=15.0, polarity=polarity)
    peaks["position"] = 99  # as the TPB run's: the swing before the spike
    fig = plotting.plot_waveforms(st, peaks, np.arange(4), threshold=15.0, polarity=polarity)
    for ax, r in zip(fig.axes, range(4)):
        (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "peak"]
        want = st["baseline"][r] + sign * peaks["height"][peaks["record_i"] == r]
        np.testing.assert_allclose(line.get_ydata(), want, rtol=1e-6)
        assert sign * (line.get_ydata()[0] - st["baseline"][r]) > 20  # on the peak's side


def test_rate_of_several_runs_is_per_run_where_their_times_overlap():
    """Runs without a stated start all count time from their own start: summed over two such
    runs the plot drew twice each run's rate. Each time bin's count is divided by the runs
    that cover it: two runs at 100 Hz read 100 Hz; runs one after the other, their own rates."""
    from waveform_analysis.analysis.superrun import with_run_id

    rng = np.random.default_rng(0)
    dtype = with_run_id(np.dtype([("time", np.int64), ("channel", np.int16)]), 5)

    def run(name, t0_ns, hz):
        n = int(10 * hz)
        out = np.zeros(n, dtype)
        out["time"] = np.sort(rng.uniform(0, 10e9, n)).astype(np.int64) + t0_ns
        out["run_id"] = name
        return out

    both = np.concatenate([run("a", 0, 100.0), run("b", 0, 100.0)])
    values = plotting.plot_rate(both, bins=10).axes[0].patches[0].get_data().values
    np.testing.assert_allclose(values, 100.0, rtol=0.25)
    after = np.concatenate([run("a", 0, 100.0), run("b", int(10e9), 300.0)])
    values = plotting.plot_rate(after, bins=10).axes[0].patches[0].get_data().values
    assert np.all(np.abs(values[:4] - 100) < 30) and np.all(np.abs(values[-4:] - 300) < 60)
