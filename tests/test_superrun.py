"""Many runs as one: get_array / get_df over runs, selected run by run, with run_id."""

from __future__ import annotations

import numpy as np
import pytest

from waveform_analysis import Context, standard_plugins
from waveform_analysis.errors import ConfigError, RunNotFoundError
from waveform_analysis.synthetic import generate_runs

RUNS = ["run_001", "run_002", "run_003"]


@pytest.fixture
def ctx(tmp_path):
    generate_runs(tmp_path / "DAQ", RUNS, n_channels=2, n_waveforms=40, n_samples=200, seed=3)
    c = Context(storage_dir=tmp_path / "cache", config={"data_root": str(tmp_path / "DAQ")})
    c.register(standard_plugins())
    return c


def test_one_array_over_runs_equals_the_runs_selected_one_by_one(ctx):
    sel = "area > 50 & channel == 1"
    got = ctx.get_array("run_00*", "peaks", selection=sel)
    assert got.dtype.names[-1] == "run_id" and got.dtype.fields["area"][2:] == ctx.get_data("run_001", "peaks").dtype.fields["area"][2:]
    for run in RUNS:
        p = ctx.get_data(run, "peaks")
        want = p[(p["area"] > 50) & (p["channel"] == 1)]
        mine = got[got["run_id"] == run]
        for field in p.dtype.names:
            np.testing.assert_array_equal(mine[field], want[field])
    assert list(dict.fromkeys(got["run_id"])) == RUNS


def test_a_summed_spectrum_is_the_sum_of_the_runs_spectra(ctx):
    bins = np.linspace(0, 3000, 31)
    total = np.histogram(ctx.get_array(RUNS, "peaks")["area"], bins)[0]
    each = sum(np.histogram(ctx.get_data(r, "peaks")["area"], bins)[0] for r in RUNS)
    np.testing.assert_array_equal(total, each)


def test_runs_are_read_through_a_clone_that_lets_each_go(ctx, monkeypatch):
    held = ctx.get_data("run_002", "peaks")
    calls = []
    real_clone = type(ctx).clone

    def clone(self, **kw):
        new = real_clone(self, **kw)
        get, release = new.get_data, new.release
        new.get_data = lambda run, name: (calls.append(("get", run)), get(run, name))[1]
        new.release = lambda run: (calls.append(("release", run)), release(run))
        return new

    monkeypatch.setattr(type(ctx), "clone", clone)
    ctx.runner = False  # no batch first: every run computed as it is read
    ctx.get_array(RUNS, "peaks", seconds_range=(0, 1e-3))
    # each run let go before the next was loaded: the reader held one run at a time
    assert calls == [(what, r) for r in RUNS for what in ("get", "release")]
    assert ctx.get_data("run_002", "peaks") is held  # the caller's memory is as it was


def test_ranges_and_callables_and_a_dataframe_with_run_id(ctx):
    pytest.importorskip("pandas")
    arr = ctx.get_array(["run_003", "run_001"], "peaks", lambda a: a["height"] > 30,
                        time_range=(0, 50_000))
    assert np.all(arr["height"] > 30) and np.all(arr["time"] < 50_000)
    df = ctx.get_df(["run_003", "run_001"], "peaks", columns=["run_id", "height"],
                    selection=lambda a: a["height"] > 30, time_range=(0, 50_000))
    assert list(df.columns) == ["run_id", "height"] and len(df) == len(arr)
    one = ctx.get_df("run_001", "peaks", selection="height > 30")
    assert "run_id" not in one.columns and np.all(one["height"] > 30)


def test_bad_names_are_errors_naming_them(ctx):
    with pytest.raises(RunNotFoundError, match="no run matches 'nope_\\*'"):
        ctx.get_array("nope_*", "peaks")
    with pytest.raises(ConfigError, match="did you mean 'area'"):
        ctx.get_array(RUNS, "peaks", selection="aera > 1")


def test_runs_of_different_layouts_are_not_joined(tmp_path):
    generate_runs(tmp_path / "DAQ", ["run_a"], n_channels=1, n_waveforms=5, n_samples=100)
    generate_runs(tmp_path / "DAQ", ["run_b"], n_channels=1, n_waveforms=5, n_samples=120)
    c = Context(storage_dir=tmp_path / "cache", config={"data_root": str(tmp_path / "DAQ")})
    c.register(standard_plugins())
    both = c.get_array(["run_a", "run_b"], "peaks")  # peaks: one layout whatever the record length
    assert len(both) == len(c.get_data("run_a", "peaks")) + len(c.get_data("run_b", "peaks"))
    with pytest.raises(ConfigError, match="'st_waveforms' of run 'run_b' has the layout"):
        c.get_array(["run_a", "run_b"], "st_waveforms")


def test_uncached_runs_are_computed_in_one_batch_by_the_context_s_runner(tmp_path):
    """get_array / export hand the runs not yet cached to the Context's runner in one call
    (by default a BatchProcessor on all cores) before reading them one at a time."""
    from waveform_analysis import BatchProcessor

    generate_runs(tmp_path / "DAQ", RUNS, n_channels=2, n_waveforms=20, n_samples=200, seed=4)
    calls = []

    def runner(context, run_ids, data_name):
        calls.append((list(run_ids), data_name))
        BatchProcessor(context).process_runs(run_ids, data_name, show_progress=False)

    c = Context(storage_dir=tmp_path / "cache", config={"data_root": str(tmp_path / "DAQ")}, runner=runner)
    c.register(standard_plugins())
    c.get_data("run_002", "peaks")
    got = c.get_array(RUNS, "peaks")
    assert calls == [(["run_001", "run_003"], "peaks")]
    assert all(c.is_cached(r, "peaks") for r in RUNS) and len(got)
    c.get_array(RUNS, "peaks", selection="area > 10")
    assert len(calls) == 1  # all cached now: no batch
    assert c.clone().runner is runner

    default = Context(storage_dir=tmp_path / "cache2", config={"data_root": str(tmp_path / "DAQ")})
    default.register(standard_plugins())
    default.export(RUNS, "peaks", tmp_path / "p.csv")  # the default runner: a BatchProcessor
    assert all(default.is_cached(r, "peaks") for r in RUNS)
    off = Context(storage_dir=tmp_path / "cache3", config={"data_root": str(tmp_path / "DAQ")}, runner=False)
    off.register(standard_plugins())
    np.testing.assert_array_equal(off.get_array(RUNS, "peaks"), got)  # each run as it is read


def test_fields_keep_only_the_columns_asked_for_after_the_selection(ctx):
    """fields= keeps a few columns (what a summed spectrum needs), so the rows held over many
    runs are a few bytes each; the selection still sees every field."""
    full = ctx.get_array(RUNS, "peaks", selection="width > 3")
    got = ctx.get_array(RUNS, "peaks", selection="width > 3", fields=["area", "channel"])
    assert got.dtype.names == ("area", "channel", "run_id") and got.itemsize < full.itemsize / 2
    for f in got.dtype.names:
        np.testing.assert_array_equal(got[f], full[f])
    assert got.dtype.fields["area"][2:] == full.dtype.fields["area"][2:]  # titles (units) kept
    df = ctx.get_df(RUNS, "peaks", columns=["run_id", "area"])
    assert list(df.columns) == ["run_id", "area"] and len(df) == len(ctx.get_array(RUNS, "peaks"))
    with pytest.raises(ConfigError, match="'aera'.*area"):
        ctx.get_array(RUNS, "peaks", fields=["aera"])
