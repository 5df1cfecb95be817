"""``st_waveforms``: every record of a run as one structured array, with baselines."""

from __future__ import annotations

import numpy as np

from ..core.plugin import Option, Plugin
from ..errors import NoDataError
from ..saturation import ADC_MAX_14BIT, saturated

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
    saturation flag (see :mod:`waveform_analysis.saturation`).
    """

    provides = "st_waveforms"
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
        from ..processing.hits import set_baselines

        adapter = adapter_for(context)
        records = adapter.read(context.data_root, raw_files, run_id)
        if len(records) == 0:
            raise NoDataError(f"run {run_id!r}: the files of the run hold no records")
        records = set_baselines(records, context.get_config(self, "baseline_samples"))
        records["saturated"] = saturated(records, adc_max=context.get_config(self, "adc_max"))
        return records
