"""The command line over many runs: plot --sum over a glob, --selection, export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("click")
pytest.importorskip("matplotlib")

from click.testing import CliRunner  # noqa: E402

from waveform_analysis import Context, standard_plugins  # noqa: E402
from waveform_analysis.cli import main  # noqa: E402


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli_analysis") / "DAQ"
    assert invoke("generate", root, "--runs", "3", "--waveforms", "150").exit_code == 0
    return root


def test_plot_spectrum_summed_over_a_glob_with_a_selection(data, tmp_path):
    cache = tmp_path / "cache"
    out = tmp_path / "sum.png"
    r = invoke("plot", data, "run_00*", "--what", "spectrum", "--sum", "--selection", "channel == 1",
               "-o", out, "--cache", cache)
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:4] == b"\x89PNG"
    r = invoke("plot", data, "run_00*", "--what", "spectrum", "-o", out, "--cache", cache)
    assert r.exit_code == 2 and "pass --sum" in r.output
    r = invoke("plot", data, "run_001", "--what", "rate", "--selection", "area >", "-o", out, "--cache", cache)
    assert r.exit_code == 2 and "expected a field name or a number" in r.output


def test_plot_psd_draws_basic_features_and_refuses_data_without_psd(data, tmp_path):
    out = tmp_path / "p.png"
    r = invoke("plot", data, "run_001", "--what", "psd", "-o", out, "--cache", tmp_path / "c")
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:4] == b"\x89PNG"
    r = invoke("plot", data, "run_001", "--what", "psd", "--target", "peaks", "-o", out,
               "--cache", tmp_path / "c")
    assert r.exit_code == 2 and "needs a 'psd' field" in r.output


def test_run_counts_the_selected_rows(data, tmp_path):
    cache = tmp_path / "cache"
    r = invoke("run", data, "run_001", "run_002", "--selection", "area > 500", "--cache", cache)
    assert r.exit_code == 0, r.output
    assert "peaks selected" in r.output
    ctx = Context(storage_dir=cache, config={"data_root": str(data)})
    ctx.register(standard_plugins())
    n = int(np.sum(ctx.get_data("run_002", "peaks")["area"] > 500))
    line = next(x for x in r.output.splitlines() if x.startswith("run_002"))
    assert line.split()[-1] == str(n)


def test_export_command_writes_what_the_context_writes(data, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    cache = tmp_path / "cache"
    out = tmp_path / "peaks.parquet"
    r = invoke("export", data, "run_001", "run_003", "--target", "peaks", "--selection", "channel == 0",
               "-o", out, "--cache", cache)
    assert r.exit_code == 0, r.output
    assert "2 runs of peaks" in r.output
    ctx = Context(storage_dir=cache, config={"data_root": str(data)})
    ctx.register(standard_plugins())
    want = ctx.get_array(["run_001", "run_003"], "peaks", selection="channel == 0")
    table = pq.read_table(out)
    for field in want.dtype.names:
        np.testing.assert_array_equal(table.column(field).to_numpy(), want[field])
    r = invoke("export", data, "run_001", "--target", "peak", "-o", out, "--cache", cache)
    assert r.exit_code == 2 and "did you mean 'peaks'" in r.output


def test_waveform_plot_draws_the_level_a_hit_must_cross_not_the_threshold_floor(tmp_path):
    """A hit starts beyond max(threshold, threshold_sigma x noise), the noise raised to a noisy
    record's own: the line drawn is that level, so a record whose samples cross the line has
    a peak and one that stays inside has none (scintillator records, noise drawn per record)."""
    from waveform_analysis.cli.common import waveform_plot_settings
    from waveform_analysis.synthetic import generate_run

    generate_run(tmp_path / "DAQ", "sci", shape="scintillator", n_waveforms=300, seed=4)
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(tmp_path / "DAQ")})
    ctx.register(standard_plugins())
    st = ctx.get_data("sci", "st_waveforms")
    level = waveform_plot_settings(ctx, "sci", st)["threshold"]
    assert np.all(level >= 8.0) and level.max() > level.min() + 1  # the records' noise differs
    beyond = (st["baseline"] - st["wave"].min(axis=1)) > level + 1  # clear of the rounding
    inside = (st["baseline"] - st["wave"].min(axis=1)) < level - 1
    n_peaks = np.bincount(ctx.get_data("sci", "peaks")["record_i"], minlength=len(st))
    assert np.all(n_peaks[beyond] > 0) and np.all(n_peaks[inside] == 0)
    assert beyond.sum() > 100 and inside.sum() > 10


def test_plot_of_a_list_mode_run_draws_its_triggers(tmp_path):
    """A list-mode run (no waveforms) has no peaks: its spectrum and rate are drawn from its
    triggers without --target, instead of an error telling to pass one."""
    root = tmp_path / "DAQ"
    assert invoke("generate", root, "--runs", "1", "--waveforms", "50", "--format", "compass-bin",
                  "--list-mode").exit_code == 0
    for what in ("spectrum", "rate"):
        out = tmp_path / f"{what}.png"
        r = invoke("plot", root, "run_001", "--what", what, "-o", out, "--cache", tmp_path / "cache")
        assert r.exit_code == 0, r.output
        assert out.read_bytes()[:4] == b"\x89PNG"


def test_spectrum_counts_records_of_basic_features_not_basic_features(data, tmp_path):
    """The axis and legend name what a row is: a record of basic_features, a pair of
    coincidences (not "4000 basic_features")."""
    from waveform_analysis.cli.analysis import row_noun

    assert [row_noun(n) for n in ("peaks", "triggers", "basic_features", "st_waveforms",
                                  "coincidences", "events", "mine")] == [
        "peaks", "triggers", "records", "records", "pairs", "events", "rows of mine"]
