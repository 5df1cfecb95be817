"""Record layouts of the standard chain, with units in every field title.

Each layout is a numpy structured dtype; field titles carry the unit so that
``dtype.fields[name][2]`` documents the data (strax's convention).
"""

from __future__ import annotations

import numpy as np


def _field(name: str, title: str, kind: str | np.dtype, shape: tuple[int, ...] = ()) -> tuple:
    return ((title, name), kind, shape) if shape else ((title, name), kind)


RAW_FILES_DTYPE = np.dtype(
    [
        _field("channel", "Digitizer channel", np.int16),
        _field("board", "Digitizer board", np.int16),
        _field("segment", "File segment number, read in increasing order", np.int32),
        _field("path", "File path relative to data_root", "U512"),
        _field("size", "File size when listed (readers stop there; -1: read to the end) [bytes]", np.int64),
        _field("mtime", "File modification time when listed (0: not recorded) [ns since epoch]", np.int64),
    ]
)


def time_fields() -> list[tuple]:
    """When a digitizer trigger came: ``time`` (ns) and the digitizer's own ``timestamp`` (ps)."""
    return [
        _field(
            "time",
            "Trigger time: since the Unix epoch when the run's start is known"
            " (run_info's time_reference), else since the start of the acquisition [ns]",
            np.int64,
        ),
        _field("timestamp", "Trigger time tag as written by the digitizer [ps]", np.int64),
    ]


def channel_fields() -> list[tuple]:
    """Which input: ``board`` and ``channel``."""
    return [
        _field("board", "Digitizer board", np.int16),
        _field("channel", "Digitizer channel", np.int16),
    ]


def energy_fields() -> list[tuple]:
    """The firmware's numbers per trigger, NaN where the format has none."""
    return [
        _field("energy", "Firmware energy (CoMPASS ENERGY, Qlong), NaN if none [ADC channels]",
               np.float32),
        _field("energy_short", "Firmware short-gate energy (CoMPASS ENERGYSHORT), NaN if none"
               " [ADC channels]", np.float32),
        _field("energy_calibrated", "Energy calibrated by the digitizer software or with the"
               " run's calibration c0 + c1 E + c2 E^2, NaN if none [keV, or the calibration's"
               " unit]", np.float64),
    ]


def flag_fields() -> list[tuple]:
    """The digitizer's flag word of a trigger."""
    return [_field("flags", "Digitizer flags of the record (CoMPASS FLAGS), 0 if none", np.uint32)]


def st_waveforms_dtype(n_samples: int) -> np.dtype:
    """Structured waveforms of one run, ``n_samples`` int16 samples per record.

    The layout is aligned (``align=True``): every field at its natural offset and
    the record size a multiple of 8, so the kernels read ``wave`` rows in place
    (an odd record size would force a copy of every sample)."""
    return np.dtype(
        [
            *time_fields(),
            *channel_fields(),
            _field(
                "baseline",
                "Mean of the baseline window (before the trigger and the record's first pulse,"
                " at most baseline_samples without a stated pre-trigger), or of the quiet"
                " windows when a pulse is in it [ADC]",
                np.float64,
            ),
            _field("dt", "Sample period, from the run's settings or board model [ns]", np.float64),
            _field("length", "Number of valid samples in wave", np.int32),
            _field("wave", "Samples as digitized [ADC]", np.int16, (n_samples,)),
            _field("baseline_rms", "RMS of the baseline window [ADC]", np.float32),
            _field("tail_rms", "RMS of the record's last 40 samples (the hit threshold's second"
                   " estimate of the record's own noise), 0 if not computed [ADC]", np.float32),
            *flag_fields(),
            _field(
                "saturated",
                "A sample at the ADC limit or a digitizer saturation flag",
                np.bool_,
            ),
            *energy_fields(),
        ],
        align=True,
    )


TRIGGERS_DTYPE = np.dtype(
    [
        *time_fields(),
        *channel_fields(),
        *energy_fields(),
        *flag_fields(),
        _field("pileup", "Pile-up flagged by the firmware (FLAGS 0x8000)", np.bool_),
        _field(
            "saturated",
            "Saturation flagged by the firmware (FLAGS 0x80 or 0x400) or a sample at the ADC limit",
            np.bool_,
        ),
        _field(
            "fake",
            "Not a particle: a fake event the firmware made (FLAGS 0x8, 0x80000, 0x100000,"
            " 0x200000); kept, marked",
            np.bool_,
        ),
    ],
    align=True,
)


PEAKS_DTYPE = np.dtype(
    [
        _field("record_i", "Index of the waveform in the run's st_waveforms", np.int64),
        _field("channel", "Digitizer channel", np.int16),
        _field("time", "Time of the left bound since start of run [ns]", np.int64),
        _field("position", "Sample of the extremum", np.int32),
        _field("left", "First sample of the peak", np.int32),
        _field("right", "One past the last sample of the peak", np.int32),
        _field("height", "Extremum above baseline, sign removed [ADC]", np.float32),
        _field("area", "Sum over the peak above baseline, sign removed [ADC x samples]", np.float32),
        _field("width", "right - left [samples]", np.int32),
        _field("board", "Digitizer board", np.int16),
        _field("saturated", "A sample of the peak is at the ADC limit (0 or 2^14 - 1)", np.bool_),
    ]
)


BASIC_FEATURES_DTYPE = np.dtype(
    [
        _field("record_i", "Index of the waveform in the run's st_waveforms", np.int64),
        _field("timestamp", "Trigger time tag as written by the digitizer [ps]", np.int64),
        _field("time", "Trigger time since start of run [ns]", np.int64),
        _field("channel", "Digitizer channel", np.int16),
        _field("height", "Largest excursion above baseline in the waveform [ADC]", np.float32),
        _field("area", "Sum above baseline over the whole waveform [ADC x samples]", np.float32),
        _field("amplitude", "Largest excursion above baseline in the feature window [ADC]", np.float32),
        _field("window_area", "Sum above baseline in the feature window [ADC x samples]", np.float32),
        _field("n_peaks", "Number of peaks found in the waveform", np.int32),
        _field(
            "charge_long",
            "Signal summed over the long gate, which opens pre_gate before the trigger"
            " [ADC x samples]",
            np.float32,
        ),
        _field("charge_short", "Signal summed over the short gate [ADC x samples]", np.float32),
        _field("psd", "(charge_long - charge_short) / charge_long; 0 when charge_long <= 0",
               np.float32),
        _field(
            "energy_calibrated",
            "Calibration polynomial of the firmware energy, else of charge_long (the unit the"
            " calibration names, keV by default); uncalibrated without a calibration",
            np.float32,
        ),
    ]
)


EVENTS_DTYPE = np.dtype(
    [
        _field("time", "Time of the first peak of the event [ns]", np.int64),
        _field("endtime", "Time of the last peak of the event [ns]", np.int64),
        _field("n_peaks", "Number of peaks in the event", np.int32),
        _field("n_channels", "Number of distinct (board, channel) pairs with a peak", np.int32),
        _field("area", "Summed peak area [ADC x samples]", np.float32),
        _field("first_peak", "Index of the first peak in the run's peaks", np.int64),
    ]
)


# The 14-bit boards read here (VX2730, V1725, V1730, DT5730) digitize 0 ... ADC_MAX_14BIT;
# a sample at either end is a clipped input (the saturation checks and the st_waveforms
# ``adc_max`` option start from these).
ADC_MIN = 0
ADC_MAX_14BIT = (1 << 14) - 1  # 16383
