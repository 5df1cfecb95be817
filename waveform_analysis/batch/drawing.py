"""Drawings of a batch: the chain a batch runs, and writing DOT or a rendered picture.

A batch only runs the plugins that still have to be computed, so the graph of
a batch over cached runs has a single stage. :func:`batch_chain` gives the
chain a batch runs when nothing is cached, with the stage list of
:func:`~waveform_analysis.batch.plan.stages_for` (the run's own rule);
:func:`write_drawing` writes DOT or renders it, falling back to DOT when
Graphviz's ``dot`` program is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def write_drawing(dot: str, output: str | Path) -> tuple[Path, str | None]:
    """Write DOT text (``.dot``/``.gv``) or render it (``.svg``, ``.png`` ...); ``(path, note)``.

    Without Graphviz's ``dot`` program the DOT text goes next to ``output`` with
    a ``.dot`` suffix and ``note`` says so; otherwise ``note`` is None.
    """
    from celestialflow.dot import dot_available, render_dot

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix.lower() in (".dot", ".gv", ""):
        path = output if output.suffix else output.with_suffix(".dot")
        path.write_text(dot)
        return path, None
    if not dot_available():
        path = output.with_suffix(".dot")
        path.write_text(dot)
        return path, (
            f"Graphviz's 'dot' program is not installed, so {output.name} was not drawn; "
            f"wrote the DOT text to {path} instead (apt-get install graphviz, then rerun)"
        )
    return render_dot(dot, output), None
