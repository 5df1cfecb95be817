"""Drawings of a batch: the chain a batch runs, and writing DOT or a rendered picture.

A batch only runs the plugins that still have to be computed, so the graph of
a batch over cached runs has a single stage. :func:`batch_chain` gives the
chain a batch runs when nothing is cached, with the stage list of
:func:`~waveform_analysis.batch.plan.stages_for` (the run's own rule).
``write_drawing`` is the engine's (:func:`celestialflow.dot.write_drawing`),
re-exported here for the seed's import path.
"""

from __future__ import annotations

from typing import Any

from celestialflow.dot import write_drawing

__all__ = ["batch_chain", "write_drawing"]


def _stage_func(name: str) -> Any:
    def compute_stage(run_id: str) -> str:  # drawn only, never run
        return run_id

    compute_stage.__qualname__ = f"compute_stage[{name}]"  # as a real batch's stages are labelled
    return compute_stage


def batch_chain(context: Any, target: str) -> Any:
    """The TaskChain ``BatchProcessor.process_runs(..., target)`` runs on uncached runs."""
    from celestialflow import TaskChain, TaskManager

    from .plan import stages_for

    stages = [TaskManager(_stage_func(n), name=n, log_to_file=False) for n in stages_for(context, target)]
    return TaskChain(stages, name=f"batch {target}", record_failures=False)
