"""Spectra per channel, summed over runs: the energy-like field a spectrum uses, and its histograms.

A spectrum histograms the first of :data:`ENERGY_FIELDS` the data has with a finite
value (calibrated energy, the firmware's energy, the long-gate charge, the peak
area), ``bins`` equal bins from 0 (or the smallest value, when negative) to the
largest, the same edges for every channel. The range is known only once every row
has been seen, so a spectrum takes two passes over the pieces (a chunk of a run at a
time): the first finds the field and the range, the second counts. Memory is one
histogram per channel, however many rows the runs hold.
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
    """Each channel's spectrum of one field, in two passes: :meth:`scan` every piece (the
    field and the common range), :meth:`bin`, then :meth:`fill` every piece again."""

    def __init__(self) -> None:
        self.field: str | None = None
        self.lo, self.hi = np.inf, -np.inf
        self.edges: np.ndarray | None = None
        self.counts: dict[tuple[int, int], np.ndarray] = {}

    def scan(self, piece: np.ndarray) -> None:
        """Pass 1: the field (from the first piece with rows) and the range of its finite values."""
        names = piece.dtype.names or ()
        if self.field is None:
            if not len(piece) or not set(ENERGY_FIELDS) & set(names):
                return
            self.field = energy_field(piece)
        if "channel" not in names or not len(piece):
            return
        value = np.asarray(piece[self.field], np.float64)
        value = value[np.isfinite(value)]
        if len(value):
            self.lo, self.hi = min(self.lo, float(value.min())), max(self.hi, float(value.max()))

    def bin(self, bins: int) -> None:
        """``bins`` equal bins from ``min(0, smallest)`` to the largest value scanned."""
        if self.hi >= self.lo:
            lo = min(0.0, self.lo)
            self.edges = np.linspace(lo, self.hi if self.hi > lo else lo + 1.0, bins + 1)

    def fill(self, piece: np.ndarray) -> None:
        """Pass 2: count the piece's rows, per (board, channel), on the common edges."""
        names = piece.dtype.names or ()
        if self.edges is None or "channel" not in names or not len(piece):
            return
        board = piece["board"] if "board" in names else np.zeros(len(piece), np.int16)
        key = (board.astype(np.int64) << 16) | (piece["channel"].astype(np.int64) & 0xFFFF)
        value = np.asarray(piece[self.field], np.float64)
        for k in np.unique(key):
            v = value[key == k]
            counts = np.histogram(v[np.isfinite(v)], self.edges)[0]
            name = (int(k) >> 16, int(k) & 0xFFFF)
            self.counts[name] = self.counts[name] + counts if name in self.counts else counts

    def histograms(self) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
        """``{(board, channel): (edges, counts)}`` over one common range."""
        return {k: (self.edges, c) for k, c in sorted(self.counts.items())}


def spectra(
    context: Any, runs: str | Iterable[str], name: str, selection: Selection = None, bins: int = 1024
) -> tuple[str | None, dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]]:
    """``(field, {(board, channel): (edges, counts)})``: each channel's spectrum summed over
    runs, in two passes over the runs' selected rows."""
    acc = Spectra()
    for _, piece in iter_selected(context, runs, name, selection):
        acc.scan(piece)
    return acc.field, fill_spectra(acc, context, runs, name, selection, bins)


def fill_spectra(acc: Spectra, context: Any, runs: str | Iterable[str], name: str,
                 selection: Selection, bins: int) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    """Pass 2 of a scanned ``acc`` over the same runs and selection: the histograms."""
    acc.bin(bins)
    if acc.edges is not None:
        for _, piece in iter_selected(context, runs, name, selection):
            acc.fill(piece)
    return acc.histograms()
