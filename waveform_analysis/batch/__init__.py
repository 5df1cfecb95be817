"""The batch: one data type over many runs, planned and booked here, executed by celestialflow.

``processor.py`` (BatchProcessor and its three seed methods), ``plan.py`` (which
plugins become stages: one list for the run and its drawing), ``ledger.py``
(BatchOptions, the Ledger of run statuses, a celestialflow Hook), ``workers.py``
(how a worker gets its Context, the stage functions), ``progress.py`` (the
progress bar, a Hook too), ``signals.py`` (SIGTERM during a batch; worker signal setup),
``drawing.py`` (the chain a batch runs, for ``waveform-analysis graph``),
``pools.py`` (the workers behind the engine's priority gate, warmed up, which
the chain gets as ``TaskGraph(shared_workers=...)``)
and ``preload.py`` (imported by a Dask forkserver to load the kernels once).
The gate, process pools and Dask clusters themselves are the engine's
(:mod:`celestialflow.backends`). The seed import path
``waveform_analysis.core.data.batch_processor`` re-exports this package.
"""

from typing import Any

from .ledger import RunCancelled, RunSkipped
from .processor import BatchProcessor

__all__ = ["BatchProcessor", "RunCancelled", "RunSkipped", "compute_runs"]


def compute_runs(context: Any, run_ids: list[str], data_name: str, show_progress: bool = False) -> dict:
    """The Context's default runner (``Context(runner=...)``): ``data_name`` of the runs into
    the cache in one batch, on threads over all cores. A run that fails is reported by
    the batch and raises its own error when it is read."""
    return BatchProcessor(context).process_runs(list(run_ids), data_name, show_progress=show_progress)
