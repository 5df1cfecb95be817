"""CAEN V1725 raw binary, DAW firmware: the adapter, its layout (:mod:`.layout`) and kernels."""

from __future__ import annotations

from .layout import FLAG_BOARD_FAIL, TICK_NS
from .reader import V1725Adapter

__all__ = ["FLAG_BOARD_FAIL", "TICK_NS", "V1725Adapter"]
