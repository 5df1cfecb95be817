"""Per-waveform features: height and area over the record and a window, gated charges, PSD.

The gated charges reproduce what a CAEN DPP-PSD firmware reports per trigger:
``charge_long`` / ``charge_short`` (its ENERGY / ENERGYSHORT, up to its charge
sensitivity) sum the signal over the long and short gates, which open
``pre_gate`` samples before the trigger, on the baseline measured before the
trigger; ``psd = (charge_long - charge_short) / charge_long``. docs/physics.md
has the comparison with the firmware on real files.
"""

from __future__ import annotations

import numpy as np

from ..dtypes import BASIC_FEATURES_DTYPE
from ..errors import ConfigError
from ..parallel import row_parts, thread_map
from ._common import negative_rows
from .calibration import calibrate
from .rows import flat_rows

GATE_LONG_NS = 300.0  # CoMPASS DPP-PSD values of a real run (legend-testdata's settings.xml)
GATE_SHORT_NS = 80.0
PRE_GATE_NS = 50.0
TRIGGER_FLOOR = 8.0  # ADC: the trigger where the run does not say, as the hit finder's floor
TRIGGER_SIGMA = 5.0  # ... and its noise-following level
BLOCK = 32  # quiet samples skipped at a time looking for the first crossing


def basic_features(
    st_waveforms: np.ndarray,
    peaks: np.ndarray | None = None,
    polarity: str | np.ndarray = "negative",
    window: tuple[int, int] | None = None,
    gate_long_ns: float | np.ndarray = GATE_LONG_NS,
    gate_short_ns: float | np.ndarray = GATE_SHORT_NS,
    pre_gate_ns: float | np.ndarray = PRE_GATE_NS,
    trigger_sample: int | np.ndarray | None = None,
    calibration: np.ndarray | None = None,
) -> np.ndarray:
    """One ``BASIC_FEATURES_DTYPE`` row per record of ``st_waveforms``.

    ``height``/``area``: largest excursion and sum above baseline (sign
    removed by ``polarity``) over the whole record; ``amplitude`` /
    ``window_area``: the same over ``window=(start, stop)`` samples (stop
    exclusive, clipped to the record; ``None`` = whole record); ``n_peaks``
    counts the rows of ``peaks`` per record (0 when ``peaks`` is None).
    Heights are never negative: a record with no excursion has height 0.

    ``charge_long`` / ``charge_short``: the signal summed over the gates of
    ``gate_long_ns`` / ``gate_short_ns`` (converted with each record's
    ``dt``), which open ``pre_gate_ns`` before the trigger: sample
    ``trigger_sample`` (the run's pre-trigger) when given, else the
    record's first sample beyond ``max(8 ADC, 5 x baseline_rms)``; a record
    that never crosses gets charges 0. ``psd`` is ``(charge_long -
    charge_short) / charge_long`` (0 when ``charge_long <= 0``: no NaN, so
    that results compare equal). ``energy_calibrated`` applies
    ``calibration`` (``[c0, c1, c2, ...]``, one polynomial, or one row per
    record) to the record's firmware ``energy`` where it has one (the field
    present and > 0), else to ``charge_long``; without a calibration it is
    that energy uncalibrated (ADC channels, or ADC x samples). ``polarity``
    and the gates may be one value per record (per-channel settings).
    """
    n = len(st_waveforms)
    negs = negative_rows(polarity, n)
    ns = st_waveforms["wave"].shape[1] if n else 0
    if window is None:
        w0, w1 = 0, ns
    else:
        try:
            w0, w1 = (int(window[0]), int(window[1]))
        except (TypeError, ValueError, IndexError):
            raise ConfigError(f"window must be (start, stop) samples, got {window!r}") from None
        if w0 < 0 or w1 < w0:
            raise ConfigError(f"window must satisfy 0 <= start <= stop, got {window!r}")
    out = np.zeros(n, dtype=BASIC_FEATURES_DTYPE)
    if n == 0:
        return out
    for name, value in (("gate_long_ns", gate_long_ns), ("gate_short_ns", gate_short_ns),
                        ("pre_gate_ns", pre_gate_ns)):
        if not np.all(np.asarray(value) >= 0):
            raise ConfigError(f"{name} must be >= 0 ns, got {value!r}")
    dt = np.maximum(np.asarray(st_waveforms["dt"], np.float64), 1e-9)
    names = st_waveforms.dtype.names or ()
    has_rms = "baseline_rms" in names
    trig = _trigger_rows(trigger_sample, n)
    from ._features_kernels import features

    flat, stride, offset = flat_rows(st_waveforms)
    gates = (np.rint(pre_gate_ns / dt).astype(np.int64), np.rint(gate_long_ns / dt).astype(np.int64),
             np.rint(gate_short_ns / dt).astype(np.int64))
    # the kernel reads the records' fields in place and writes the rows' fields
    fields = [out[f] for f in ("record_i", "timestamp", "time", "channel", "height", "area",
                               "amplitude", "window_area", "charge_long", "charge_short", "psd")]

    def run(bounds):
        features(flat, stride, offset, ns, st_waveforms["length"], st_waveforms["baseline"],
                 st_waveforms["baseline_rms"] if has_rms else st_waveforms["baseline"], has_rms,
                 negs, w0, w1, trig, *gates, TRIGGER_FLOOR, TRIGGER_SIGMA, BLOCK, bounds[0],
                 bounds[1], st_waveforms["timestamp"], st_waveforms["time"],
                 st_waveforms["channel"], *fields)

    thread_map(run, row_parts(n))
    q_long = out["charge_long"]
    out["energy_calibrated"] = calibrate(_energy_source(st_waveforms, q_long), calibration)
    if peaks is not None and len(peaks):
        out["n_peaks"] = np.bincount(peaks["record_i"], minlength=n)[:n]
    return out


def _trigger_rows(trigger_sample: int | np.ndarray | None, n: int) -> np.ndarray:
    """The trigger sample of each record (-1: found from the data), from one value or one per
    record (each board's pre-trigger)."""
    if trigger_sample is None:
        return np.full(n, -1, np.int64)
    return np.broadcast_to(np.asarray(trigger_sample, np.int64), (n,)).copy()


def gate_bounds(
    st_waveforms: np.ndarray,
    polarity: str | np.ndarray = "negative",
    gate_long_ns: float | np.ndarray = GATE_LONG_NS,
    gate_short_ns: float | np.ndarray = GATE_SHORT_NS,
    pre_gate_ns: float | np.ndarray = PRE_GATE_NS,
    trigger_sample: int | np.ndarray | None = None,
    **_: object,
) -> np.ndarray:
    """Per record, ``[open, trigger, short gate end, long gate end]`` in samples, as
    :func:`basic_features` sums them (the gates open ``pre_gate_ns`` before the trigger; -1
    where the record never crosses: no gates); the same arguments (others, such as
    ``calibration``, are ignored), for drawing the gates."""
    n = len(st_waveforms)
    out = np.full((n, 4), -1, np.int64)
    if n == 0:
        return out
    ns = st_waveforms["wave"].shape[1]
    length = np.minimum(np.asarray(st_waveforms["length"], np.int64), ns)
    first = _trigger_rows(trigger_sample, n)
    if first.min() < 0:
        known = first.copy()
        from ._features_kernels import first_crossings

        names = st_waveforms.dtype.names or ()
        rms = (np.nan_to_num(np.asarray(st_waveforms["baseline_rms"], np.float64), posinf=0.0)
               if "baseline_rms" in names else np.zeros(n))
        flat, stride, offset = flat_rows(st_waveforms)
        first = np.empty(n, np.int64)
        first_crossings(flat, stride, offset, ns, np.ascontiguousarray(length),
                        np.ascontiguousarray(st_waveforms["baseline"], dtype=np.float64), rms,
                        negative_rows(polarity, n), TRIGGER_FLOOR, TRIGGER_SIGMA, BLOCK, first)
        first = np.where(known >= 0, known, first)
    dt = np.maximum(np.asarray(st_waveforms["dt"], np.float64), 1e-9)
    g0 = np.clip(first - np.rint(pre_gate_ns / dt).astype(np.int64), 0, length)
    short = np.minimum(g0 + np.rint(gate_short_ns / dt).astype(np.int64), length)
    long_ = np.minimum(g0 + np.rint(gate_long_ns / dt).astype(np.int64), length)
    found = first >= 0
    out[found] = np.stack([g0, np.minimum(first, length), short, long_], axis=1)[found]
    return out


def _energy_source(st_waveforms: np.ndarray, charge_long: np.ndarray) -> np.ndarray:
    """The firmware energy of each record where it has one (> 0), else its ``charge_long``."""
    if "energy" not in (st_waveforms.dtype.names or ()):
        return charge_long.astype(np.float64)
    energy = np.asarray(st_waveforms["energy"], np.float64)
    return np.where(energy > 0, energy, charge_long)
