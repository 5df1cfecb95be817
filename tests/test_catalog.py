"""Context.list_runs, data_info and show_config."""

from __future__ import annotations

import pytest

from waveform_analysis import Context, Plugin, standard_plugins
from waveform_analysis.errors import UnknownDataError
from waveform_analysis.synthetic import generate_runs


@pytest.fixture
def ctx(tmp_path):
    generate_runs(tmp_path / "DAQ", ["run_001", "run_002"], n_waveforms=20)
    (tmp_path / "DAQ" / "notes").mkdir()  # not a run: no RAW folder
    c = Context(storage_dir=tmp_path / "cache", config={"data_root": str(tmp_path / "DAQ"), "peaks": {"threshold": 20.0}})
    c.register(standard_plugins())
    return c


def test_list_runs(ctx):
    ctx.get_data("run_001", "peaks")
    runs = ctx.list_runs()
    assert [r["run_id"] for r in runs] == ["run_001", "run_002"]
    assert runs[0]["adapter"] == "compass" and runs[0]["folder"] == "RAW" and runs[0]["channels"] == 2
    assert "peaks" in runs[0]["cached"] and runs[1]["cached"] == ""
    assert "run_002" in str(runs)


def test_data_info_units(ctx):
    info = ctx.data_info("peaks")
    by_field = {r["field"]: r for r in info}
    assert by_field["area"]["unit"] == "ADC x samples" and by_field["time"]["unit"] == "ns"
    assert by_field["height"]["type"] == "float32"
    assert "PeaksPlugin" in str(info)
    assert {r["field"] for r in ctx.data_info("st_waveforms")} >= {"time", "wave", "baseline"}
    with pytest.raises(UnknownDataError):
        ctx.data_info("peak")


def test_data_info_from_a_run_for_plugins_without_a_layout(ctx):
    import numpy as np

    class Doubled(Plugin):
        provides = "doubled"
        depends_on = ("peaks",)
        version = "1"

        def compute(self, context, run_id, peaks):
            return np.zeros(len(peaks), [(("Twice the area [ADC x samples]", "area2"), "f4")])

    ctx.register(Doubled)
    with pytest.raises(ValueError, match="pass a run_id"):
        ctx.data_info("doubled")
    assert ctx.data_info("doubled", "run_001")[0]["unit"] == "ADC x samples"


def test_show_config_marks_changed_options(ctx):
    rows = {r["option"]: r for r in ctx.show_config("peaks")}
    default = ctx.plugins["peaks"].options["threshold"].default
    assert rows["threshold"]["current"] == "20.0 *" and rows["threshold"]["default"] == repr(float(default))
    assert rows["polarity"]["current"] == "'negative'"
    assert {r["plugin"] for r in ctx.show_config()} >= {"peaks", "st_waveforms", "raw_files"}
