"""The standard plugin chain: raw_files -> st_waveforms -> peaks -> basic_features, events."""

from __future__ import annotations

from .basic_features import BasicFeaturesPlugin
from .coincidences import CoincidencesPlugin
from .events import EventsPlugin
from .peaks import PeaksPlugin
from .raw_files import RawFilesPlugin
from .st_waveforms import StWaveformsPlugin

__all__ = [
    "BasicFeaturesPlugin",
    "CoincidencesPlugin",
    "EventsPlugin",
    "PeaksPlugin",
    "RawFilesPlugin",
    "StWaveformsPlugin",
    "standard_plugins",
]


def standard_plugins() -> list:
    """Fresh instances of the five standard plugins, in dependency order."""
    return [
        RawFilesPlugin(),
        StWaveformsPlugin(),
        PeaksPlugin(),
        BasicFeaturesPlugin(),
        EventsPlugin(),
    ]
