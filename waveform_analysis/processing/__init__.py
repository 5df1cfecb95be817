"""Numeric kernels of the standard chain, one module per physics concept.

Arrays in, arrays out: no files, no Context. ``rows`` (how kernels see the
records), ``noise`` (per-channel noise), ``baselines``, ``hits``
(``find_peaks``), ``saturation``, ``features``, ``events``. Each module's
numba kernels sit beside it in ``_<module>_kernels.py`` and are imported on
the first call, so importing this package never imports numba; the kernels
use the threads :mod:`waveform_analysis.parallel` allows.
"""

from __future__ import annotations

from .baselines import baseline_stats, compute_baselines, set_baselines
from .events import group_events
from .features import basic_features
from .hits import find_peaks
from .noise import channel_noise

__all__ = [
    "baseline_stats",
    "basic_features",
    "channel_noise",
    "compute_baselines",
    "find_peaks",
    "group_events",
    "set_baselines",
]
