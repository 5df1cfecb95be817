"""``basic_features``: per-record height, area, windowed amplitude/area and peak count."""

from __future__ import annotations

import numpy as np

from ..core.plugin import Option, Plugin
from ..dtypes import BASIC_FEATURES_DTYPE
from .peaks import POLARITY

__all__ = ["BasicFeaturesPlugin"]


class BasicFeaturesPlugin(Plugin):
    """One row per record of ``st_waveforms``; ``n_peaks`` counts its ``peaks``."""

    provides = "basic_features"
    dtype = BASIC_FEATURES_DTYPE
    depends_on = ("st_waveforms", "peaks")
    version = "1.0.0"
    chunked = True
    options = {
        "polarity": POLARITY,
        "window_start": Option(default=0, type=int, help="First sample of the feature window"),
        "window_stop": Option(
            default=None,
            type=(int, type(None)),
            help="One past the last sample of the feature window (None: end of record)",
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
            polarity=context.get_config(self, "polarity"),
            window=(start, stop),
        )
