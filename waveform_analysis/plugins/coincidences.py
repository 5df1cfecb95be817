"""``coincidences``: pairs of triggers of different channels closer in time than a window."""

from __future__ import annotations

import numpy as np

from ..core.plugin import Option, Plugin
from ..processing.coincidences import COINCIDENCES_DTYPE

__all__ = ["CoincidencesPlugin"]


class CoincidencesPlugin(Plugin):
    """One row per (reference, partner) pair of ``triggers`` within ``window_ns``.

    Built on ``triggers``, so it works for list-mode runs (no waveforms) too. The
    whole run's triggers are merged at once: a pair may straddle any chunk boundary,
    and a trigger row is small (a run of 10 M triggers is about 0.5 GB).

    ``ref_energy`` / ``energy``: the trigger's calibrated energy where known, else its
    firmware energy; a run with waveforms whose files hold neither takes
    ``basic_features``' ``energy_calibrated`` (its ``charge_long``, calibrated where a
    calibration is set). That run's key then holds ``basic_features``' key (it is
    a :meth:`run_input <run_inputs>`), so changing a gate changes it; other runs do not
    read the waveforms at all.
    """

    provides = "coincidences"
    dtype = COINCIDENCES_DTYPE
    depends_on = ("triggers",)
    version = "1.2.0"  # 1.1: charge_long where a run with waveforms has no firmware energy;
    # 1.2: with "all", the lower channel of a pair is its reference
    #: ``channels`` is the config's per-channel settings table (core/channels.py)
    renamed_options = {"channels": "partners"}
    options = {
        "window_ns": Option(
            default=100.0, type=float, minimum=0.001,
            help="Largest |time difference| of a pair, after the channel offsets [ns]",
        ),
        "reference": Option(
            default="all", type=(str, int),
            help="'board:channel' whose triggers are the references, or 'all' (each pair once,"
            " the lower board:channel as reference)",
        ),
        "partners": Option(
            default=None, type=(list, tuple, type(None)),
            help="Partner channels ('board:channel' or a channel of board 0); None: every channel",
        ),
        "time_offset_ns": Option(
            default={}, type=(dict, float, int), per_channel=True,
            help="Offset added to each channel's times [ns] (cable delays): per channel in the"
            " channels table, or {'board:channel': ns}",
        ),
    }

    def run_inputs(self, context, run_id: str) -> tuple[str, ...]:
        """``basic_features`` where the energies come from it (see the class)."""
        return ("basic_features",) if self._charge_energy(context, run_id) else ()

    def compute(self, context, run_id: str, triggers: np.ndarray) -> np.ndarray:
        from ..core.channels import channel_offsets
        from ..processing.coincidences import find_coincidences

        channels = context.get_config(self, "partners")
        fallback = None
        if self.run_inputs(context, run_id):
            fallback = _per_trigger(triggers, context.get_data(run_id, "basic_features"),
                                    "energy_calibrated")
        return find_coincidences(
            triggers,
            context.get_config(self, "window_ns"),
            reference=context.get_config(self, "reference"),
            channels=list(channels) if channels else None,
            time_offset_ns=channel_offsets(context, self, run_id, triggers),
            energy_fallback=fallback,
        )

    @staticmethod
    def _charge_energy(context, run_id: str) -> bool:
        """Whether the run has waveforms but its files no energy (nor a calibrated one)."""
        from .raw_files import run_info_for

        if "basic_features" not in context.plugins:
            return False
        info = run_info_for(context, run_id)[1]
        return bool(info.has_waveforms) and not {"energy", "energy_calibrated"} & set(info.energy_fields)


def _per_trigger(triggers: np.ndarray, records: np.ndarray, field: str) -> np.ndarray:
    """``records[field]`` for each trigger: the record of its (board, channel, timestamp);
    NaN for a trigger without one. Both are in time order, usually row for row."""
    from ..processing.coincidences import channel_key

    out = np.full(len(triggers), np.nan)
    board = triggers["board"] if "board" in triggers.dtype.names else np.zeros(len(triggers))
    rboard = records["board"] if "board" in records.dtype.names else np.zeros(len(records))
    tkey, rkey = channel_key(board, triggers["channel"]), channel_key(rboard, records["channel"])
    if len(records) == len(triggers) and np.array_equal(tkey, rkey) and np.array_equal(
            triggers["timestamp"], records["timestamp"]):
        return np.asarray(records[field], np.float64)
    for k in np.unique(tkey):
        t_rows, r_rows = np.flatnonzero(tkey == k), np.flatnonzero(rkey == k)
        r_rows = r_rows[np.argsort(records["timestamp"][r_rows], kind="stable")]
        stamps = records["timestamp"][r_rows]
        at = np.minimum(np.searchsorted(stamps, triggers["timestamp"][t_rows]), max(len(stamps) - 1, 0))
        if len(stamps):
            hit = stamps[at] == triggers["timestamp"][t_rows]
            out[t_rows[hit]] = records[field][r_rows[at[hit]]]
    return out
