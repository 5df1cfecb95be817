"""Digitizer format readers ("adapters") and their registry.

Built-ins: ``"vx2730"`` (CAEN CoMPASS CSV, the default) and ``"v1725"``
(CAEN raw binary, DAW firmware). Add a format by subclassing
:class:`DAQAdapter` and calling :func:`register_adapter`.
"""

from __future__ import annotations

from .base import DAQAdapter
from .registry import available_adapters, get_adapter, register_adapter
from .v1725 import V1725Adapter
from .vx2730 import VX2730Adapter

DEFAULT_ADAPTER = "vx2730"

register_adapter(VX2730Adapter(), replace=True)
register_adapter(V1725Adapter(), replace=True)

__all__ = [
    "DAQAdapter",
    "DEFAULT_ADAPTER",
    "V1725Adapter",
    "VX2730Adapter",
    "available_adapters",
    "get_adapter",
    "register_adapter",
]
