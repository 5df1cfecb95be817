"""What a Context, a plan and a batch result show in Jupyter (``_repr_html_``)."""

from __future__ import annotations

from waveform_analysis import BatchProcessor, Context, standard_plugins
from waveform_analysis.synthetic import generate_runs


def test_context_plan_and_batch_result_show_as_html_tables(tmp_path):
    generate_runs(tmp_path / "DAQ", ["r1", "r2"], n_waveforms=50, n_samples=128)
    ctx = Context(storage_dir=tmp_path / "c", config={"data_root": str(tmp_path / "DAQ"), "peaks": {"threshold": 20.0}})
    ctx.register(standard_plugins())
    html = ctx._repr_html_()
    assert "<table>" in html and "peaks" in html and "threshold=20.0" in html and str(tmp_path / "c") in html
    plan = ctx.explain("r1", "peaks")._repr_html_()
    assert "st_waveforms" in plan and "would run" in plan
    res = BatchProcessor(ctx).process_runs(["r1", "r2", "nope"], "peaks", show_progress=False)
    assert isinstance(res, dict) and set(res) == {"results", "errors", "meta", "ordered_run_ids"}
    table = res._repr_html_()
    assert "2 of 3 runs succeeded" in table and "RunNotFoundError" in table
