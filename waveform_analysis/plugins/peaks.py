"""``peaks``: hits above threshold in every record, with position, height, area and width."""

from __future__ import annotations

import numpy as np

from ..core.plugin import Option, Plugin

__all__ = ["PeaksPlugin", "POLARITY"]

POLARITY = Option(
    default="negative",
    type=str,
    choices=("negative", "positive"),
    help="Pulse direction relative to the baseline",
)


class PeaksPlugin(Plugin):
    """Runs of samples more than ``threshold`` ADC beyond the baseline, merged and extended."""

    provides = "peaks"
    depends_on = ("st_waveforms",)
    version = "1.0.0"
    options = {
        "threshold": Option(
            default=15.0, type=float, help="ADC above baseline (~5 sigma of noise)"
        ),
        "polarity": POLARITY,
        "merge_gap": Option(default=10, type=int, help="Runs closer than this many samples merge"),
        "left_extension": Option(default=2, type=int, help="Samples added before a peak"),
        "right_extension": Option(default=20, type=int, help="Samples added after a peak (tail)"),
        "min_width": Option(
            default=1, type=int, help="Shortest run above threshold kept [samples]"
        ),
    }

    def compute(self, context, run_id: str, st_waveforms: np.ndarray) -> np.ndarray:
        from ..processing.hits import find_peaks

        opt = {name: context.get_config(self, name) for name in self.options}
        return find_peaks(st_waveforms, **opt)
