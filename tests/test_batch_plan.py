"""One stage list for a batch's run and for its drawing (``waveform-analysis graph --batch``)."""

from __future__ import annotations

from waveform_analysis import BatchProcessor, Context, standard_plugins
from waveform_analysis.batch.drawing import batch_chain
from waveform_analysis.batch.plan import stages_for
from waveform_analysis.core.plugin import Plugin
from waveform_analysis.synthetic import generate_runs


class Uncached(Plugin):
    provides = "uncached_peaks"
    depends_on = ("peaks",)
    save_to_cache = False

    def compute(self, peaks):
        return peaks


def context(tmp_path):
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(tmp_path / "DAQ")})
    ctx.register(standard_plugins())
    ctx.register(Uncached())
    return ctx


def test_the_drawing_shows_the_stages_a_run_would_have(tmp_path):
    ctx = context(tmp_path)
    for target in ctx.plugins:
        assert list(batch_chain(ctx, target).stages) == stages_for(ctx, target), target
    assert stages_for(ctx, "uncached_peaks") == ["uncached_peaks"]  # one stage: nothing to hand over
    assert stages_for(ctx, "peaks", strategy="per_worker") == ["peaks"]
    assert stages_for(ctx, "peaks", fused=True) == ["peaks"]  # Dask: a run's chain is one task


def test_a_batch_on_uncached_runs_runs_the_drawn_chain(tmp_path):
    generate_runs(tmp_path / "DAQ", ["run_001", "run_002"], n_waveforms=50, n_samples=200)
    ctx = context(tmp_path)
    drawn = list(batch_chain(ctx, "peaks").stages)
    processor = BatchProcessor(ctx)
    result = processor.process_runs(["run_001", "run_002"], "peaks", max_workers=2, show_progress=False)
    assert sorted(result["results"]) == ["run_001", "run_002"]
    assert list(processor.last_graph.stages) == drawn
    assert stages_for(ctx, "peaks", ["run_001", "run_002"]) == ["peaks"]  # now cached: one stage left
