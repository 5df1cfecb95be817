"""Coincidences between digitizer channels: pairs of triggers closer in time than a window.

The triggers of every channel are shifted by that channel's offset, merged into one
time order (a stable sort, fast on channels that are each already in time order),
and one numba pass walks the merged list: for each reference trigger it looks at its
neighbours while they are inside the window, so the work grows with the number of
triggers and of pairs, never with triggers x triggers. Times are kept in integer ps
(the digitizer's fine time stamp) until ``delta_t`` is taken, so the difference has
the stamp's full resolution.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import ConfigError

__all__ = ["COINCIDENCES_DTYPE", "channel_key", "find_coincidences", "parse_channel"]


def _f(name: str, title: str, kind: type) -> tuple:
    return ((title, name), kind)


COINCIDENCES_DTYPE = np.dtype(
    [
        _f("time", "Time of the reference trigger since start of run [ns]", np.int64),
        _f("ref_board", "Digitizer board of the reference trigger", np.int16),
        _f("ref_channel", "Digitizer channel of the reference trigger", np.int16),
        _f("board", "Digitizer board of the partner trigger", np.int16),
        _f("channel", "Digitizer channel of the partner trigger", np.int16),
        _f("delta_t", "Partner minus reference time, channel offsets applied [ns]", np.float64),
        _f("ref_index", "Row of the reference trigger in the run's triggers", np.int64),
        _f("index", "Row of the partner trigger in the run's triggers", np.int64),
        _f("ref_energy", "Energy of the reference trigger: calibrated where known, else the firmware's,"
           " else charge_long [calibrated unit, ADC channels or ADC x samples]", np.float64),
        _f("energy", "Energy of the partner trigger: calibrated where known, else the firmware's,"
           " else charge_long [calibrated unit, ADC channels or ADC x samples]", np.float64),
    ]
)


def parse_channel(text: str | int, option: str = "reference") -> tuple[int, int]:
    """``(board, channel)`` from ``"board:channel"`` or a bare channel (board 0)."""
    try:
        if isinstance(text, int) and not isinstance(text, bool):
            return 0, int(text)
        board, _, channel = str(text).strip().rpartition(":")
        return int(board or 0), int(channel)
    except ValueError:
        raise ConfigError(
            f"option {option!r}: {text!r} is not a channel; write 'board:channel' (e.g. '0:4') "
            "or a channel number on board 0"
        ) from None


def channel_key(board: np.ndarray | int, channel: np.ndarray | int) -> np.ndarray | int:
    """One int64 per (board, channel) pair."""
    return (np.asarray(board, np.int64) << 16) | (np.asarray(channel, np.int64) & 0xFFFF)


def _energy(triggers: np.ndarray, rows: np.ndarray, fallback: np.ndarray | None = None
            ) -> np.ndarray:
    """Calibrated energy of ``rows`` where known, else the firmware's energy, else
    ``fallback`` (one per trigger, e.g. ``charge_long``), else NaN."""
    names = triggers.dtype.names or ()
    out = np.full(len(rows), np.nan) if fallback is None else fallback[rows].astype(np.float64)
    for field in ("energy", "energy_calibrated"):
        if field in names:
            value = triggers[field][rows].astype(np.float64)
            known = np.isfinite(value)
            out[known] = value[known]
    return out


def find_coincidences(
    triggers: np.ndarray,
    window_ns: float,
    reference: str | int = "all",
    channels: list[str | int] | None = None,
    time_offset_ns: Mapping[str, float] | None = None,
    energy_fallback: np.ndarray | None = None,
) -> np.ndarray:
    """One ``COINCIDENCES_DTYPE`` row per (reference, partner) pair closer than ``window_ns``.

    ``triggers`` needs ``timestamp`` (ps), ``time`` (ns), ``board`` and ``channel``.
    ``reference`` is ``"board:channel"`` (its triggers against every other channel's,
    before and after) or ``"all"`` (every pair of triggers of two different channels
    once, the lower ``(board, channel)`` as reference whichever came first, so that
    ``delta_t`` of a channel pair has one sign convention and its time-of-flight
    histogram is one distribution). ``channels`` restricts the partners (and, with
    ``"all"``, both sides). ``time_offset_ns`` maps ``"board:channel"`` to an offset
    added to that channel's times before comparing. Rows come in reference order, then
    partner order (both by shifted time). ``energy_fallback`` (one per trigger, NaN where
    unknown) is the energy of triggers with neither a calibrated nor a firmware energy.
    """
    if not window_ns > 0:
        raise ConfigError(f"option 'window_ns' must be > 0 ns, got {window_ns!r}")
    n = len(triggers)
    key = channel_key(triggers["board"], triggers["channel"])
    t = np.array(triggers["timestamp"], np.int64)
    for name, offset in (time_offset_ns or {}).items():
        b, c = parse_channel(name, "time_offset_ns")
        t[key == channel_key(b, c)] += int(round(float(offset) * 1000))
    order = np.argsort(t, kind="stable")
    t_sorted, key_sorted = t[order], key[order]
    if channels:
        wanted = np.array([channel_key(*parse_channel(c, "channels")) for c in channels], np.int64)
        is_partner = np.isin(key_sorted, wanted)
    else:
        is_partner = np.ones(n, bool)
    all_pairs = isinstance(reference, str) and reference.strip().lower() == "all"
    if all_pairs:
        is_ref = is_partner
    else:
        is_ref = key_sorted == channel_key(*parse_channel(reference))
    from ._coincidences_kernels import pair_positions  # numba compiles on first use

    window = int(round(float(window_ns) * 1000))
    empty = np.zeros(0, np.int64)
    count = pair_positions(t_sorted, key_sorted, is_ref, is_partner, window, all_pairs, empty, empty, False)
    ref_pos, partner_pos = np.empty(count, np.int64), np.empty(count, np.int64)
    pair_positions(t_sorted, key_sorted, is_ref, is_partner, window, all_pairs, ref_pos, partner_pos, True)
    if all_pairs:  # the walk pairs each trigger with later ones: put the lower channel first
        swap = key_sorted[ref_pos] > key_sorted[partner_pos]
        ref_pos[swap], partner_pos[swap] = partner_pos[swap], ref_pos[swap]
        if swap.any():
            back = np.argsort(ref_pos, kind="stable")  # references in time order again
            ref_pos, partner_pos = ref_pos[back], partner_pos[back]
    ref, partner = order[ref_pos], order[partner_pos]
    out = np.empty(count, COINCIDENCES_DTYPE)
    out["time"] = triggers["time"][ref]
    out["ref_board"], out["ref_channel"] = triggers["board"][ref], triggers["channel"][ref]
    out["board"], out["channel"] = triggers["board"][partner], triggers["channel"][partner]
    out["delta_t"] = (t[partner] - t[ref]) / 1000.0
    out["ref_index"], out["index"] = ref, partner
    out["ref_energy"] = _energy(triggers, ref, energy_fallback)
    out["energy"] = _energy(triggers, partner, energy_fallback)
    return out
