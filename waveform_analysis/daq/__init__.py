"""Digitizer format readers ("adapters"), one sub-package per format family, and their registry.

Built-ins: ``"compass"`` (CAEN CoMPASS CSV and BIN, 1.x and 2.x, with or
without waveforms; ``"vx2730"`` is its alias for the VX2730 boards) and
``"v1725"`` (CAEN raw binary, DAW firmware). ``daq_adapter="auto"``
(:data:`DEFAULT_ADAPTER`, the one place the default is written) recognises
each run's format from its files. Add a format by subclassing
:class:`DAQAdapter` (see :mod:`.base` for the interface) and calling
:func:`register_adapter`.
"""

from __future__ import annotations

import sys

from .base import DAQAdapter, RunInfo
from .compass import CompassAdapter, VX2730Adapter
from .compass import csv_reader as vx2730
from .registry import (
    AUTO,
    available_adapters,
    detect_adapter,
    get_adapter,
    register_adapter,
    resolve_adapter,
)
from .v1725 import V1725Adapter

DEFAULT_ADAPTER = AUTO

# the CSV reader's module under its old name (``waveform_analysis.daq.vx2730``)
sys.modules[f"{__name__}.vx2730"] = vx2730

register_adapter(CompassAdapter(), replace=True)
register_adapter(VX2730Adapter(), replace=True)
register_adapter(V1725Adapter(), replace=True)

__all__ = [
    "AUTO",
    "CompassAdapter",
    "DAQAdapter",
    "DEFAULT_ADAPTER",
    "RunInfo",
    "V1725Adapter",
    "VX2730Adapter",
    "available_adapters",
    "detect_adapter",
    "get_adapter",
    "register_adapter",
    "resolve_adapter",
]
