"""``st_waveforms``: every record of a run as one structured array, with baselines."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..core.plugin import Option, Plugin
from ..errors import ConfigError, NoDataError
from ..saturation import ADC_MAX_14BIT, saturated
from .raw_files import adapter_for, run_info_for

__all__ = ["StWaveformsPlugin", "adapter_for", "adc_max_for"]


def adc_max_for(context, info) -> int:
    """The ``adc_max`` option of ``st_waveforms``, or the run's ADC limit when it is None."""
    try:
        adc_max = context.get_config("st_waveforms", "adc_max")
    except Exception:  # noqa: BLE001 - a context without the st_waveforms plugin
        adc_max = None
    if adc_max is None:
        adc_max = (1 << info.adc_bits) - 1 if info.adc_bits else ADC_MAX_14BIT
    return int(adc_max)


class _EndWindows:
    """Per-record end-window statistics (the first phase of the baselines), taken by the
    staging's callbacks while each block the reader puts is in the CPU cache."""

    def __init__(self, baseline_samples: int) -> None:
        self.baseline_samples = baseline_samples
        self.mean = self.rms = self.last = None

    def begin(self, n_rows: int) -> None:
        self.mean = np.zeros(n_rows, np.float64)
        self.rms = np.zeros(n_rows, np.float64)
        self.last = np.zeros(n_rows, np.float64)

    def block(self, records: np.ndarray, rows: slice) -> None:
        from ..processing.hits import end_window_stats

        self.mean[rows], self.rms[rows], self.last[rows] = end_window_stats(
            records, self.baseline_samples
        )


class StWaveformsPlugin(Plugin):
    """Reads the run's files; fills ``baseline`` and ``baseline_rms`` from the baseline window.

    ``baseline_rms`` is the RMS of the first ``baseline_samples`` samples. A
    record whose window holds a pulse (RMS above twice its channel's noise)
    is handled and stays visible: its baseline comes from its quietest
    window, its ``baseline_rms`` still reports the first one. ``saturated``
    marks records with a valid sample at 0 or ``adc_max``, or a CoMPASS
    saturation flag (see :mod:`waveform_analysis.saturation`). ``dt`` is the run's
    sample period and ``energy``, ``energy_short``, ``energy_calibrated`` the
    firmware's numbers (NaN where the format has none). A list-mode run (no
    waveforms) is a :class:`NoDataError` that points to ``triggers``.
    """

    provides = "st_waveforms"
    depends_on = ("raw_files",)
    version = "2.0.0"
    options = {
        "baseline_samples": Option(
            default=40,
            type=int,
            help="Samples at the start of each record averaged for the baseline and its RMS",
        ),
        "adc_max": Option(
            default=None,
            type=(int, type(None)),
            help="Upper ADC limit; a sample at it (or at 0) marks the record saturated"
            " (None: 2^adc_bits - 1 of the run's board, else 2^14 - 1)",
        ),
    }

    def compute(self, context, run_id: str, raw_files: np.ndarray) -> np.ndarray:
        """The whole run in one array (what :meth:`compute_chunks` yields, joined)."""
        from ..core.chunks import RunChunks

        chunks = RunChunks(self.provides, {"raw_files": raw_files}, None, 1 << 62)
        return np.concatenate(list(self.compute_chunks(context, run_id, chunks)))

    def compute_chunks(self, context, run_id: str, chunks) -> Iterator[np.ndarray]:
        """The run in time order, a memory budget of records at a time.

        The adapter puts the records it parses into a staging (memory, or a
        scratch file past the budget) with each record's end-window statistics;
        the run-wide channel statistics then decide which baselines to
        re-judge, and each chunk gets its baselines and saturation on its way out."""
        from ..core.memory import trim_memory
        from ..daq.base import check_has_waveforms, read_run
        from ..daq.staging import RecordStaging
        from ..processing.hits import channel_keys, finish_baselines, recheck_levels

        (chunk,) = chunks
        nb = context.get_config(self, "baseline_samples")
        if nb < 1:
            raise ConfigError(f"baseline_samples must be >= 1, got {nb}")
        files = chunk.inputs["raw_files"]
        adapter, info = run_info_for(context, run_id, files)
        check_has_waveforms(info, run_id)
        adc_max = adc_max_for(context, info)
        ends = _EndWindows(nb)
        with RecordStaging(chunks.budget_bytes, chunks.scratch_prefix, ends.block, ends.begin) as staging:
            read_run(adapter, context.data_root, files, run_id, staging, info)
            trim_memory()  # the readers' block buffers
            order = staging.order()
            if order.size == 0:
                raise NoDataError(f"run {run_id!r}: the files of the run hold no records")
            # run-wide statistics in file order (a percentile does not depend on the order),
            # so that no whole-run copy in time order is made; only valid rows count
            kept = None if order.size == staging.n_rows else np.flatnonzero(staging.valid)
            keys = channel_keys(staging.board, staging.channel)
            if kept is None:
                low = recheck_levels(keys, ends.rms, ends.last)
            else:
                low = np.zeros(staging.n_rows)
                low[kept] = recheck_levels(keys[kept], ends.rms[kept], ends.last[kept])
            del keys, kept
            staging.drop_keys()  # what sorting needed is no longer needed
            ends.last = None
            step = max(1, chunks.budget_bytes // staging.dtype.itemsize)
            for a in range(0, order.size, step):
                rows = order[a : a + step]
                records = staging.gather(rows)
                rms = ends.rms[rows]
                baseline = ends.mean[rows]
                finish_baselines(records, nb, baseline, rms, low[rows])
                records["baseline"] = baseline
                if "baseline_rms" in records.dtype.names:
                    records["baseline_rms"] = rms
                records["saturated"] = saturated(records, adc_max=adc_max)
                info.fill_absent(records)
                yield records
                del records
