"""Spectra per channel, summed over runs: the energy-like field a spectrum uses, and its histograms.

A spectrum histograms the first of :data:`ENERGY_FIELDS` the data has with a finite
value (calibrated energy, the firmware's energy, the long-gate charge, the peak
area), ``bins`` equal bins from 0 (or the smallest value, when negative) to the
largest, the same edges for every channel.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import ConfigError
from .selection import Selection
from .superrun import iter_selected

__all__ = ["ENERGY_FIELDS", "Spectra", "energy_field", "spectra"]

#: Energy-like fields, most physical first: what a spectrum or a PSD plot uses by default.
ENERGY_FIELDS = ("energy_calibrated", "energy", "charge_long", "area")


def energy_field(data: np.ndarray) -> str:
    """The first of :data:`ENERGY_FIELDS` that ``data`` has with a finite value."""
    names = data.dtype.names or ()
    for f in ENERGY_FIELDS:
        if f in names and (len(data) == 0 or np.isfinite(data[f]).any()):
            return f
    raise ConfigError(f"the data has no energy field (one of {', '.join(ENERGY_FIELDS)}); fields: {names}")


class Spectra:
    """Per-channel values of the spectrum field, gathered piece by piece (one float32 a row)."""

    def __init__(self) -> None:
        self.field: str | None = None
        self.values: dict[tuple[int, int], list[np.ndarray]] = {}

    def add(self, piece: np.ndarray) -> None:
        names = piece.dtype.names or ()
        if self.field is None:
            if not len(piece) or not set(ENERGY_FIELDS) & set(names):
                return
            self.field = energy_field(piece)
        if "channel" not in names:
            return
        board = piece["board"] if "board" in names else np.zeros(len(piece), np.int16)
        value = piece[self.field].astype(np.float32)
        key = (board.astype(np.int64) << 16) | (piece["channel"].astype(np.int64) & 0xFFFF)
        for k in np.unique(key):
            self.values.setdefault((int(k) >> 16, int(k) & 0xFFFF), []).append(value[key == k])

    def histograms(self, bins: int) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
        """``{(board, channel): (edges, counts)}`` over one common range."""
        joined = {k: np.concatenate(v) for k, v in sorted(self.values.items())}
        finite = [v[np.isfinite(v)] for v in joined.values()]
        finite = [v for v in finite if len(v)]
        if not finite:
            return {}
        lo = min(0.0, min(float(v.min()) for v in finite))
        hi = max(float(v.max()) for v in finite)
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
        return {k: (edges, np.histogram(v[np.isfinite(v)], edges)[0]) for k, v in joined.items()}


def spectra(
    context: Any, runs: str | Iterable[str], name: str, selection: Selection = None, bins: int = 1024
) -> tuple[str | None, dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]]:
    """``(field, {(board, channel): (edges, counts)})``: each channel's spectrum summed over runs."""
    acc = Spectra()
    for _, piece in iter_selected(context, runs, name, selection):
        acc.add(piece)
    return acc.field, acc.histograms(bins)
