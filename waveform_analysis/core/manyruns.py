"""The Context's methods over many runs as one: ``get_df``, ``get_array``, ``export``.

They delegate to :mod:`waveform_analysis.analysis` and first hand the runs whose data is
not yet cached to the Context's ``runner`` in one call, so that many uncached runs are
computed together (on all cores) rather than one after the other as they are read.

The runner is injected: ``Context(runner=f)`` with ``f(context, run_ids, data_name)``
computing the runs into the cache; ``runner=False`` computes each run as it is read.
The default, :func:`waveform_analysis.batch.compute_runs` (a ``BatchProcessor`` on
threads), lives in the layer above the Context and is imported here only when it runs,
as ``Context.watch`` does for online processing: the analysis layer itself never
imports the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ManyRuns", "Runner"]

#: ``runner(context, run_ids, data_name)``: computes ``data_name`` of the runs into the cache.
Runner = Callable[[Any, list[str], str], Any]


class ManyRuns:
    """Mixed into :class:`~waveform_analysis.core.context.Context` (see the module)."""

    runner: Runner | bool | None

    def compute_missing(self, runs: str | Iterable[str], data_name: str) -> list[str]:
        """Hand the runs whose ``data_name`` is not cached to the runner, in one call (two
        runs or more, and a Context that writes its cache); returns the runs handed over."""
        from ..analysis.superrun import missing_runs

        runner = self.runner
        if runner is False or self.readonly:
            return []
        missing = missing_runs(self, runs, data_name)
        if len(missing) < 2:
            return []
        if runner is None or runner is True:
            from ..batch import compute_runs as runner
        runner(self, missing, data_name)
        for run_id in missing:
            self.release(run_id)
        return missing

    def get_df(
        self,
        run_id: str | Iterable[str],
        data_name: str,
        columns: list[str] | None = None,
        selection: Any = None,
        time_range: tuple[float, float] | None = None,
        seconds_range: tuple[float, float] | None = None,
    ) -> Any:
        """``get_data`` as a pandas DataFrame (optional ``pandas`` extra); units in ``df.attrs["units"]``.

        A field with a shape per record (``wave``) is a column of one numpy array
        per row; pass ``columns=`` to keep only the fields you need. A list of runs
        or a glob (``"run_0*"``) gives :meth:`get_array`'s rows, with ``run_id``;
        ``selection``, ``time_range`` and ``seconds_range`` as there.
        """
        from ..analysis.superrun import selected_rows
        from .catalog import to_frame

        self.compute_missing(run_id, data_name)
        data = selected_rows(self, run_id, data_name, selection, time_range, seconds_range, columns)
        which = f"run {run_id!r}" if isinstance(run_id, str) else f"runs {list(run_id)!r}"
        return to_frame(data, f"{data_name!r} of {which}", columns)

    def get_array(
        self,
        runs: str | Iterable[str],
        data_name: str,
        selection: Any = None,
        time_range: tuple[float, float] | None = None,
        seconds_range: tuple[float, float] | None = None,
        fields: list[str] | None = None,
    ) -> np.ndarray:
        """``data_name`` of many runs as one array with a ``run_id`` field, selected run by run.

        ``runs``: a name, a glob (``"run_0*"``) or a list. ``selection``: a string such
        as ``"area > 100 & channel == 0"`` (parsed, never evaluated as Python) or a
        function of the array returning a bool mask; ``time_range=(t0, t1)`` in ns and
        ``seconds_range=(a, b)`` since the run's start; ``fields``: only these columns (the
        selection sees them all), for small rows over many runs. Runs not cached are computed first
        by the runner, in one batch; then each run is loaded, selected and let go; see
        :mod:`waveform_analysis.analysis.superrun`.
        """
        from ..analysis.superrun import get_array

        self.compute_missing(runs, data_name)
        return get_array(self, runs, data_name, selection, time_range, seconds_range, fields)

    def export(
        self, runs: str | Iterable[str], data_name: str, path: str | Path, selection: Any = None
    ) -> Path:
        """Write ``data_name`` of ``runs`` to ``path``: ``.root``, ``.h5``/``.hdf5``, ``.parquet``
        or ``.csv`` (spectra), run by run; see :mod:`waveform_analysis.analysis.export`."""
        from ..analysis.export import export

        self.compute_missing(runs, data_name)
        return export(self, runs, data_name, path, selection=selection)
