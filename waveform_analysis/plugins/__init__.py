"""The standard plugin chain: raw_files -> st_waveforms -> peaks -> basic_features, events;
raw_files -> triggers."""

from __future__ import annotations

from .basic_features import BasicFeaturesPlugin
from .events import EventsPlugin
from .peaks import PeaksPlugin
from .raw_files import RawFilesPlugin
from .st_waveforms import StWaveformsPlugin
from .triggers import TriggersPlugin

__all__ = [
    "BasicFeaturesPlugin",
    "EventsPlugin",
    "PeaksPlugin",
    "RawFilesPlugin",
    "StWaveformsPlugin",
    "TriggersPlugin",
    "standard_plugins",
]


def standard_plugins() -> list:
    """Fresh instances of the standard plugins, in dependency order."""
    return [
        RawFilesPlugin(),
        StWaveformsPlugin(),
        TriggersPlugin(),
        PeaksPlugin(),
        BasicFeaturesPlugin(),
        EventsPlugin(),
    ]
