"""``st_waveforms``: every record of a run as one structured array, with baselines."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..core.plugin import Option, Plugin
from ..dtypes import ADC_MAX_14BIT, st_waveforms_dtype
from ..errors import ConfigError, NoDataError
from ..processing.saturation import saturated

__all__ = ["StWaveformsPlugin", "adapter_for"]


def adapter_for(context):
    """The DAQ adapter configured for ``raw_files`` in ``context``."""
    from ..daq import get_adapter

    try:
        name = context.get_config("raw_files", "daq_adapter")
    except Exception:
        name = context.config.get("daq_adapter", "vx2730")
    return get_adapter(name)


class StWaveformsPlugin(Plugin):
    """Reads the run's files; fills ``baseline`` and ``baseline_rms`` from the baseline window.

    ``baseline_rms`` is the RMS of the first ``baseline_samples`` samples. A
    record whose window holds a pulse (RMS above twice its channel's noise)
    is handled and stays visible: its baseline comes from its quietest
    window, its ``baseline_rms`` still reports the first one. ``saturated``
    marks records with a valid sample at 0 or ``adc_max``, or a CoMPASS
    saturation flag (see :mod:`waveform_analysis.processing.saturation`).
    """

    provides = "st_waveforms"
    dtype = st_waveforms_dtype(1)  # the samples per record are the run's
    depends_on = ("raw_files",)
    version = "1.3.0"
    options = {
        "baseline_samples": Option(
            default=40,
            type=int,
            help="Samples at the start of each record averaged for the baseline and its RMS",
        ),
        "adc_max": Option(
            default=ADC_MAX_14BIT,
            type=int,
            help="Upper ADC limit; a sample at it (or at 0) marks the record saturated",
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
        from ..daq.staging import RecordStaging
        from ..processing.baselines import finish_baselines, recheck_levels
        from ..processing.rows import channel_keys

        (chunk,) = chunks
        nb = context.get_config(self, "baseline_samples")
        adc_max = context.get_config(self, "adc_max")
        if nb < 1:
            raise ConfigError(f"baseline_samples must be >= 1, got {nb}")
        adapter = adapter_for(context)
        with RecordStaging(chunks.budget_bytes, chunks.scratch_prefix, nb) as staging:
            adapter.read_into(context.data_root, chunk.inputs["raw_files"], run_id, staging)
            trim_memory()  # the readers' block buffers
            order = staging.order()
            if order.size == 0:
                raise NoDataError(f"run {run_id!r}: the files of the run hold no records")
            # run-wide statistics in file order (a percentile does not depend on the order),
            # so that no whole-run copy in time order is made; only valid rows count
            kept = None if order.size == staging.n_rows else np.flatnonzero(staging.valid)
            keys = channel_keys(staging.board, staging.channel)
            if kept is None:
                low = recheck_levels(keys, staging.rms, staging.last)
            else:
                low = np.zeros(staging.n_rows)
                low[kept] = recheck_levels(keys[kept], staging.rms[kept], staging.last[kept])
            del keys, kept
            staging.drop_keys()  # what sorting needed is no longer needed
            step = max(1, chunks.budget_bytes // staging.dtype.itemsize)
            for a in range(0, order.size, step):
                rows = order[a : a + step]
                records = staging.gather(rows)
                rms = staging.rms[rows]
                baseline = staging.mean[rows]
                finish_baselines(records, nb, baseline, rms, low[rows])
                records["baseline"] = baseline
                if "baseline_rms" in records.dtype.names:
                    records["baseline_rms"] = rms
                records["saturated"] = saturated(records, adc_max=adc_max)
                yield records
                del records
