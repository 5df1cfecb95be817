"""``basic_features``: per-record height, area, windowed amplitude/area, peak count, gated
charges, PSD and calibrated energy."""

from __future__ import annotations

import numpy as np

from ..core.plugin import Option, Plugin
from ..dtypes import BASIC_FEATURES_DTYPE
from .peaks import POLARITY

__all__ = ["BasicFeaturesPlugin", "record_gates"]


def record_gates(context, run_id: str, st_waveforms: np.ndarray) -> np.ndarray:
    """Per record of ``st_waveforms``, ``[open, trigger, short end, long end]`` (samples) of the
    gates ``basic_features`` sums, from the same settings (for the waveform plot)."""
    from ..processing.features import gate_bounds

    plugin = context.plugins.get("basic_features") or BasicFeaturesPlugin()
    return gate_bounds(st_waveforms, **plugin._gates(context, run_id, st_waveforms))


class BasicFeaturesPlugin(Plugin):
    """One row per record of ``st_waveforms``; ``n_peaks`` counts its ``peaks``.

    The gates of ``charge_long`` / ``charge_short`` / ``psd`` and the trigger
    they open from come from the options, else the run's settings (CoMPASS
    ``SRV_PARAM_CH_GATE`` / ``GATESHORT`` / ``GATEPRE`` and ``PRETRG``), else
    300 / 80 / 50 ns and the record's first threshold crossing. The
    calibration of ``energy_calibrated`` is the ``calibration`` option, else
    the run's (settings.xml / run.info, per channel where it gives one).
    """

    provides = "basic_features"
    dtype = BASIC_FEATURES_DTYPE
    depends_on = ("st_waveforms", "peaks")
    version = "1.1.0"
    chunked = True
    options = {
        "polarity": POLARITY,
        "window_start": Option(default=0, type=int, help="First sample of the feature window"),
        "window_stop": Option(
            default=None,
            type=(int, type(None)),
            help="One past the last sample of the feature window (None: end of record)",
        ),
        "gate_long_ns": Option(
            default=None, per_channel=True, type=(float, int, type(None)),
            help="Long gate [ns] (None: the run's settings, else 300 ns)",
        ),
        "gate_short_ns": Option(
            default=None, per_channel=True, type=(float, int, type(None)),
            help="Short gate [ns] (None: the run's settings, else 80 ns)",
        ),
        "pre_gate_ns": Option(
            default=None, per_channel=True, type=(float, int, type(None)),
            help="The gates open this long before the trigger [ns] (None: the run's settings,"
            " else 50 ns)",
        ),
        "calibration": Option(
            default=None, per_channel=True, type=(list, tuple, type(None)),
            help="[c0, c1, c2]: energy_calibrated = c0 + c1 E + c2 E^2 of the firmware energy,"
            " else of charge_long (None: the run's calibration, else uncalibrated)",
        ),
    }

    def compute(
        self, context, run_id: str, st_waveforms: np.ndarray, peaks: np.ndarray
    ) -> np.ndarray:
        from ..processing.features import basic_features

        start = context.get_config(self, "window_start")
        stop = context.get_config(self, "window_stop")
        if stop is None:
            stop = st_waveforms["wave"].shape[1]
        return basic_features(
            st_waveforms,
            peaks,
            window=(start, stop),
            **self._gates(context, run_id, st_waveforms),
        )

    def _gates(self, context, run_id: str, st_waveforms: np.ndarray) -> dict:
        """Gates, trigger sample and calibration per record: each channel's settings
        (core/channels.py: the channels table, the options, else the run's settings)."""
        from ..core.channels import channel_settings
        from ..processing import features as f
        from .raw_files import run_info_for

        info = run_info_for(context, run_id)[1]
        names = ("polarity", "gate_long_ns", "gate_short_ns", "pre_gate_ns", "calibration")
        missing = {"gate_long_ns": f.GATE_LONG_NS, "gate_short_ns": f.GATE_SHORT_NS,
                   "pre_gate_ns": f.PRE_GATE_NS}
        out = channel_settings(context, self, run_id, st_waveforms, dict.fromkeys(names), info, missing)
        parts = info.by_board(st_waveforms["board"]) if hasattr(info, "by_board") else [(info, None)]
        if len(parts) == 1:
            out["trigger_sample"] = getattr(info, "pretrigger_samples", None) or None
        else:  # each board's pre-trigger (-1: found from the record)
            trig = np.full(len(st_waveforms), -1, np.int64)
            for one, rows in parts:
                trig[rows] = one.pretrigger_samples or -1
            out["trigger_sample"] = trig
        return out

