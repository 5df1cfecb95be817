"""Context.get_df: a run's data as a pandas DataFrame."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from waveform_analysis import Context, Plugin, standard_plugins
from waveform_analysis.synthetic import generate_run

pd = pytest.importorskip("pandas")


@pytest.fixture
def ctx(tmp_path):
    generate_run(tmp_path / "DAQ", "run_001", n_channels=2, n_waveforms=30, n_samples=200)
    c = Context(storage_dir=tmp_path / "cache", config={"data_root": str(tmp_path / "DAQ")})
    c.register(standard_plugins())
    return c


def test_peaks_as_a_dataframe_with_units(ctx):
    peaks = ctx.get_data("run_001", "peaks")
    df = ctx.get_df("run_001", "peaks")
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == list(peaks.dtype.names) and len(df) == len(peaks)
    np.testing.assert_array_equal(df["area"].to_numpy(), peaks["area"])
    assert df["area"].dtype == np.float32
    assert df.attrs["units"]["area"] == "ADC x samples" and df.attrs["units"]["time"] == "ns"
    assert df.attrs["units"]["channel"] == ""


def test_waveforms_keep_one_array_per_row(ctx):
    st = ctx.get_data("run_001", "st_waveforms")
    df = ctx.get_df("run_001", "st_waveforms")
    assert len(df) == len(st)
    first = df["wave"].iloc[0]
    assert isinstance(first, np.ndarray) and first.shape == (st["wave"].shape[1],)
    np.testing.assert_array_equal(first, st["wave"][0])
    assert df.attrs["units"]["wave"] == "ADC"


def test_columns_select_and_a_typo_names_the_close_field(ctx):
    df = ctx.get_df("run_001", "st_waveforms", columns=["time", "channel", "baseline"])
    assert list(df.columns) == ["time", "channel", "baseline"]
    with pytest.raises(ValueError, match=r"no field 'baselin'.*did you mean 'baseline'"):
        ctx.get_df("run_001", "st_waveforms", columns=["baselin"])


def test_unstructured_data_is_refused_with_a_pointer_to_get_data(ctx):
    class Plain(Plugin):
        provides = "plain"
        depends_on = ("peaks",)
        version = "1"

        def compute(self, context, run_id, peaks):
            return np.asarray(peaks["area"], dtype=np.float64)

    ctx.register(Plain)
    with pytest.raises(TypeError, match="not a structured array.*ctx.get_data"):
        ctx.get_df("run_001", "plain")


def test_missing_pandas_names_the_extra(ctx, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    with pytest.raises(ImportError, match=r"celestialflow\[pandas\]"):
        ctx.get_df("run_001", "peaks")


def test_import_stays_free_of_pandas():
    code = "import sys, waveform_analysis; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
