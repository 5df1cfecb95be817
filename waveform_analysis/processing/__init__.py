"""Numeric kernels of the standard chain: hits, features, events."""

from __future__ import annotations

from .events import group_events
from .features import basic_features
from .hits import compute_baselines, find_peaks

__all__ = ["basic_features", "compute_baselines", "find_peaks", "group_events"]
