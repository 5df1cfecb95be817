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
    """

    provides = "coincidences"
    dtype = COINCIDENCES_DTYPE
    depends_on = ("triggers",)
    version = "1.0.0"
    #: ``channels`` is the config's per-channel settings table (core/channels.py)
    renamed_options = {"channels": "partners"}
    options = {
        "window_ns": Option(
            default=100.0, type=float, minimum=0.001,
            help="Largest |time difference| of a pair, after the channel offsets [ns]",
        ),
        "reference": Option(
            default="all", type=(str, int),
            help="'board:channel' whose triggers are the references, or 'all' (each pair once)",
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

    def compute(self, context, run_id: str, triggers: np.ndarray) -> np.ndarray:
        from ..core.channels import channel_offsets
        from ..processing.coincidences import find_coincidences

        channels = context.get_config(self, "partners")
        return find_coincidences(
            triggers,
            context.get_config(self, "window_ns"),
            reference=context.get_config(self, "reference"),
            channels=list(channels) if channels else None,
            time_offset_ns=channel_offsets(context, self, run_id, triggers),
        )
