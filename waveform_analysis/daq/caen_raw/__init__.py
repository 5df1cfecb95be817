"""CAEN readout-buffer dumps (standard firmware, DPP-ZLE, DPP-PSD): the ``caen-raw`` adapter."""

from __future__ import annotations

from .reader import CaenRawAdapter, detect_firmware

__all__ = ["CaenRawAdapter", "detect_firmware"]
