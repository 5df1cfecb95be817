"""Numeric kernels of the standard chain: hits, features, events."""

from __future__ import annotations

from .events import group_events
from .features import basic_features
from .hits import baseline_stats, channel_noise, compute_baselines, find_peaks, set_baselines

__all__ = [
    "baseline_stats",
    "basic_features",
    "channel_noise",
    "compute_baselines",
    "find_peaks",
    "group_events",
    "set_baselines",
]
