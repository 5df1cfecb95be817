"""Which plugins become the stages of a batch: one rule, for the run and for its drawing.

A stage hands the next one run ids and the data goes through the disk cache,
so each *cached* plugin the target needs is a stage, dependencies first, and the
target is always last. Without a shared cache to hand data over (``per_worker``,
``readonly``), or when the target itself is not cached, a run's whole chain is
one stage. ``waveform-analysis graph --batch`` draws exactly this list.

On Dask (``fused=True``) a run's whole chain is one stage too, so one Dask task:
each stage would otherwise pay a scheduler round trip per run, as Dask itself
fuses linear chains. Runs still stream: while one run is computed, the next
starts on another worker.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import networkx as nx

__all__ = ["stages_for"]


def stages_for(
    context: Any,
    target: str,
    runs: Iterable[str] | None = None,
    strategy: str = "shared",
    fused: bool = False,
) -> list[str]:
    """The stage names a batch of ``runs`` runs for ``target`` (``runs=None``: as if nothing were
    cached); ``fused``: the whole chain as one stage (a Dask batch)."""
    plugins = context.plugins
    if fused or strategy != "shared" or not plugins[target].save_to_cache:
        return [target]
    lineage = context.lineage(target)
    if runs is None:
        needed = nx.ancestors(lineage, target)
    else:
        needed = set()
        for run in runs:
            try:
                needed.update(context.plan(run, target))
            except Exception:  # a bad run fails in its own stage, with its own error
                needed.update(nx.ancestors(lineage, target))
    order = nx.topological_sort(lineage)
    return [n for n in order if n in needed and n != target and plugins[n].save_to_cache] + [target]
