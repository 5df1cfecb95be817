"""Export round-trips: the written file, read back with the same library, equals the data field by field."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from waveform_analysis import Context, standard_plugins
from waveform_analysis.errors import ConfigError
from waveform_analysis.synthetic import generate_runs

RUNS = ["run_002", "run_001"]  # not sorted: run_index follows the order given
SEL = "height > 25"


@pytest.fixture
def ctx(tmp_path):
    generate_runs(tmp_path / "DAQ", RUNS, n_channels=2, n_waveforms=40, n_samples=200, seed=5)
    c = Context(storage_dir=tmp_path / "cache", config={"data_root": str(tmp_path / "DAQ"), "chunk_mb": 0.01})
    c.register(standard_plugins())
    return c


def _want(ctx, name, selection=None):
    return ctx.get_array(RUNS, name, selection=selection)


@pytest.mark.parametrize("name", ["peaks", "st_waveforms"])
def test_root_round_trip_with_fixed_length_wave_and_spectra(ctx, tmp_path, name):
    uproot = pytest.importorskip("uproot")
    path = ctx.export(RUNS, name, tmp_path / "out" / "data.root", selection=SEL if name == "peaks" else None)
    want = _want(ctx, name, SEL if name == "peaks" else None)
    with uproot.open(path) as f:
        tree = f[name]
        got = tree.arrays(library="np")
        assert tree.num_entries == len(want) > 0
        for field in want.dtype.names:
            if field == "run_id":
                runs = str(f[f"{name}_runs"]).split("\n")
                np.testing.assert_array_equal(np.array(runs)[got["run_index"]], want["run_id"])
            else:
                np.testing.assert_array_equal(got[field], want[field], err_msg=field)
        if name == "st_waveforms":
            assert got["wave"].shape == want["wave"].shape  # a fixed-length branch, not jagged
        else:
            spectra = [k.split(";")[0] for k in f.keys() if k.startswith("spectrum_")]
            assert sorted(spectra) == ["spectrum_b0_ch0", "spectrum_b0_ch1"]
            h = f["spectrum_b0_ch1"].to_hist()
            assert h.sum() == np.sum(want["channel"] == 1)


def test_hdf5_round_trip_with_units(ctx, tmp_path):
    h5py = pytest.importorskip("h5py")
    path = ctx.export(RUNS, "st_waveforms", tmp_path / "data.h5")
    want = _want(ctx, "st_waveforms")
    with h5py.File(path, "r") as f:
        d = f["st_waveforms"]
        got = d[:]
        for field in want.dtype.names:
            expect = want[field].astype("S") if field == "run_id" else want[field]
            np.testing.assert_array_equal(got[field], expect, err_msg=field)
        assert d.attrs["time.unit"] == "ns" and d.attrs["wave.unit"] == "ADC"
        assert d.attrs["runs"] == "run_002\nrun_001"


def test_parquet_round_trip_with_units(ctx, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    path = ctx.export(RUNS, "st_waveforms", tmp_path / "data.parquet", selection="channel == 0")
    want = _want(ctx, "st_waveforms", "channel == 0")
    table = pq.read_table(path)
    assert table.num_rows == len(want)
    for field in want.dtype.names:
        col = table.column(field)
        got = np.stack(col.to_numpy(zero_copy_only=False)) if field == "wave" else col.to_numpy()
        np.testing.assert_array_equal(got, want[field], err_msg=field)
    assert table.schema.field("time").metadata[b"unit"] == b"ns"


def test_csv_spectra_sum_to_the_selected_rows(ctx, tmp_path):
    path = ctx.export(RUNS, "peaks", tmp_path / "spectra.csv", selection=SEL)
    rows = np.loadtxt(path, delimiter=",", skiprows=2)
    want = _want(ctx, "peaks", SEL)
    for ch in (0, 1):
        mine = rows[rows[:, 1] == ch]
        assert mine[:, 4].sum() == np.sum(want["channel"] == ch)
        np.testing.assert_array_equal(mine[1:, 2], mine[:-1, 3])  # bins touch: low = previous high
        counts, _ = np.histogram(want["area"][want["channel"] == ch], np.append(mine[:, 2], mine[-1, 3]))
        np.testing.assert_array_equal(mine[:, 4], counts)


def test_bad_suffix_and_missing_library_are_named(ctx, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="suffix must be one of"):
        ctx.export(RUNS, "peaks", tmp_path / "x.xlsx")
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match="extra 'export'"):
        ctx.export(RUNS, "peaks", tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


def test_spectra_hold_one_histogram_per_channel_not_a_value_per_row(tmp_path):
    """A spectrum over many rows is counted in two passes (range, then counts), so the memory
    it takes does not grow with the rows: 200,000 triggers read a chunk at a time never hold
    their 0.8 MB of energies at once."""
    import tracemalloc

    from waveform_analysis.synthetic import generate_run

    generate_run(tmp_path / "DAQ", "big", fmt="compass-bin", samples=False, n_waveforms=100_000,
                 n_samples=16, seed=2)
    c = Context(storage_dir=tmp_path / "cache", config={"data_root": str(tmp_path / "DAQ"), "chunk_mb": 0.05})
    c.register(standard_plugins())
    triggers = np.array(c.get_data("big", "triggers"))
    c.release("big")
    tracemalloc.start()
    try:
        path = c.export("big", "triggers", tmp_path / "spectra.csv")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * len(triggers), f"{peak:,} bytes traced for {len(triggers):,} rows"
    rows = np.loadtxt(path, delimiter=",", skiprows=2)
    for ch in (0, 1):
        mine = rows[rows[:, 1] == ch]
        want = triggers["energy"][triggers["channel"] == ch]
        np.testing.assert_array_equal(mine[:, 4], np.histogram(want, np.append(mine[:, 2], mine[-1, 3]))[0])
