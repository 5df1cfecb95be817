"""``triggers``: one row per digitizer trigger, with the firmware's energies and flags, for every run.

For a run with waveforms, row *i* is record *i* of ``st_waveforms``: the reader
puts the same records in the same order into a staging that keeps only the
trigger fields, and the staging sorts both the same way. For a list-mode run
(no waveforms) the reader gives the trigger rows itself.
"""

from __future__ import annotations

import numpy as np

from ..core.plugin import Option, Plugin
from ..daq.compass.layout import FAKE_FLAGS, FLAG_PILEUP, SATURATION_FLAGS
from ..dtypes import TRIGGERS_DTYPE
from ..errors import NoDataError
from ..saturation import ADC_MAX_14BIT
from .raw_files import run_info_for
from .st_waveforms import saturated_by_board

__all__ = ["TriggersPlugin", "decode_flags", "to_triggers"]


def decode_flags(rows: np.ndarray) -> None:
    """Set ``pileup``, ``fake`` and (or-ed in) ``saturated`` of trigger rows from ``flags``."""
    flags = rows["flags"]
    rows["pileup"] = (flags & np.uint32(FLAG_PILEUP)) != 0
    rows["fake"] = (flags & np.uint32(FAKE_FLAGS)) != 0
    rows["saturated"] |= (flags & np.uint32(SATURATION_FLAGS)) != 0


def to_triggers(records: np.ndarray, adc_max: int | None = ADC_MAX_14BIT,
                limit=None) -> np.ndarray:
    """Trigger rows of ``records`` (``st_waveforms`` fields); ``saturated`` also marks a sample
    at 0 or ``adc_max`` (None: flags only); ``limit(records)``, when given, does that instead
    (each board at its own ADC limit)."""
    out = np.zeros(len(records), TRIGGERS_DTYPE)
    for name in TRIGGERS_DTYPE.names:
        if name in records.dtype.names and name not in ("saturated", "pileup", "fake"):
            out[name] = records[name]
    if limit is not None and "wave" in records.dtype.names:
        out["saturated"] = limit(records)
    elif adc_max is not None and "wave" in records.dtype.names:
        from ..saturation import saturated

        out["saturated"] = saturated(records, adc_max=adc_max, flag_mask=0)
    decode_flags(out)
    return out


class _TriggerSink:
    """Between a reader and a staging: records in, trigger rows stored."""

    def __init__(self, staging, limit) -> None:
        self.staging = staging
        self.limit = limit  # records -> saturated at their ADC limit
        self.records = True

    def in_memory(self, nbytes: int) -> bool:
        return self.staging.in_memory(nbytes)

    def begin(self, n_rows: int, dtype: np.dtype) -> None:
        self.records = np.dtype(dtype) != TRIGGERS_DTYPE
        self.staging.begin(n_rows, TRIGGERS_DTYPE)

    def put(self, row0: int, rows: np.ndarray) -> None:
        if self.records:
            rows = to_triggers(rows, limit=self.limit)
        else:
            rows = rows.copy()
            decode_flags(rows)
        self.staging.put(row0, rows)


class TriggersPlugin(Plugin):
    """Every trigger of the run: ``time``, ``timestamp``, ``board``, ``channel``, the firmware's
    ``energy``, ``energy_short`` and ``energy_calibrated`` (NaN where the format has none),
    ``flags`` and the booleans ``pileup`` (0x8000), ``saturated`` (0x80, 0x400, or a sample at
    the ADC limit when there are waveforms) and ``fake`` (0x8, 0x80000, 0x100000, 0x200000).

    ``energy_calibrated`` is the ``calibration`` option applied to ``energy`` when set, else
    the run's calibration (settings.xml / run.info, per channel, applied by the reader) or the
    files' own calibrated energy; NaN where there is no energy or no calibration."""

    provides = "triggers"
    depends_on = ("raw_files",)
    version = "1.1.0"
    dtype = TRIGGERS_DTYPE
    # the ADC limit is st_waveforms' adc_max, so both say the same
    options = {
        "calibration": Option(
            default=None, type=(list, tuple, type(None)),
            help="[c0, c1, c2]: energy_calibrated = c0 + c1 E + c2 E^2 of the firmware energy"
            " (None: the run's calibration, else the files' own, else NaN)",
        ),
    }

    def compute(self, context, run_id: str, raw_files: np.ndarray) -> np.ndarray:
        from ..daq.base import read_run
        from ..daq.staging import RecordStaging

        adapter, info = run_info_for(context, run_id, raw_files)
        def limit(records):
            return saturated_by_board(context, info, records, flag_mask=0)

        with RecordStaging() as staging:
            read_run(adapter, context.data_root, raw_files, run_id, _TriggerSink(staging, limit),
                     info)
            if staging.dtype is None or not staging.valid.any():
                raise NoDataError(f"run {run_id!r}: the files of the run hold no triggers")
            out = staging.records()
        info.fill_absent(out)
        calibration = context.get_config(self, "calibration")
        if calibration is not None:
            from ..processing.calibration import calibrate

            out["energy_calibrated"] = calibrate(out["energy"], calibration)
        return out
