"""Pictures of the analysis layer: PSD against energy, time of flight per channel pair.

Like :mod:`waveform_analysis.plotting` (which re-exports these), each function returns
a Figure and writes a file only when given ``path``; each takes a ``selection``
(a string or a callable, see :mod:`waveform_analysis.analysis.selection`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import ConfigError
from .selection import Selection, apply_selection

__all__ = ["energy_field", "plot_psd", "plot_tof"]

#: Energy-like fields, most physical first: what a spectrum or a PSD plot uses by default.
ENERGY_FIELDS = ("energy_calibrated", "energy", "charge_long", "area")


def energy_field(data: np.ndarray) -> str:
    """The first of :data:`ENERGY_FIELDS` that ``data`` has with a finite value."""
    names = data.dtype.names or ()
    for f in ENERGY_FIELDS:
        if f in names and (len(data) == 0 or np.isfinite(data[f]).any()):
            return f
    raise ConfigError(f"the data has no energy field (one of {', '.join(ENERGY_FIELDS)}); fields: {names}")


def _label(data: np.ndarray, field: str) -> str:
    title = data.dtype.fields[field][2] if len(data.dtype.fields[field]) > 2 else None
    unit = str(title).rsplit("[", 1)[-1].rstrip("]") if title and "[" in str(title) else ""
    return f"{field} [{unit}]" if unit else field


def plot_psd(
    data: np.ndarray,
    *,
    energy: str | None = None,
    psd: str = "psd",
    selection: Selection = None,
    bins: tuple[int, int] = (200, 120),
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """2-D histogram of PSD (tail over total charge) against energy, log colour scale:
    neutrons and gammas fall on two bands. Needs a ``psd`` field (``basic_features``
    with charge gates); ConfigError naming what is missing otherwise."""
    from ..plotting import _figure, save

    names = data.dtype.names or ()
    if psd not in names:
        raise ConfigError(
            f"a PSD plot needs a {psd!r} field; this data has {', '.join(names)} "
            "(basic_features carries psd when the charge gates are computed)"
        )
    data = apply_selection(data, selection)
    energy = energy or energy_field(data)
    x = np.asarray(data[energy], np.float64)
    y = np.asarray(data[psd], np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    fig = _figure(7.0, 4.8)
    ax = fig.subplots()
    if len(x) == 0:
        ax.text(0.5, 0.5, "no entries", transform=ax.transAxes, ha="center")
    else:
        from matplotlib.colors import LogNorm

        x_hi = float(np.percentile(x, 99.5)) or 1.0
        y_lo, y_hi = (float(v) for v in np.percentile(y, [0.5, 99.5]))
        counts, xe, ye = np.histogram2d(x, y, bins=bins, range=[[min(0.0, x.min()), x_hi],
                                                                [y_lo, y_hi if y_hi > y_lo else y_lo + 1]])
        mesh = ax.pcolormesh(xe, ye, np.where(counts > 0, counts, np.nan).T, norm=LogNorm(), cmap="viridis")
        fig.colorbar(mesh, ax=ax, label="entries per bin")
    ax.set_xlabel(_label(data, energy))
    ax.set_ylabel(f"{psd} (tail / total charge)")
    ax.set_title(title or f"PSD against energy ({len(x)} entries)", fontsize=10)
    save(fig, path)
    return fig


def plot_tof(
    coincidences: np.ndarray,
    *,
    selection: Selection = None,
    bins: int = 200,
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """Histograms of ``delta_t`` (partner minus reference, offsets applied) per channel pair."""
    from ..plotting import _figure, save

    data = apply_selection(coincidences, selection)
    fig = _figure(7.0, 4.0)
    ax = fig.subplots()
    if len(data) == 0:
        ax.text(0.5, 0.5, "no coincidences", transform=ax.transAxes, ha="center")
    else:
        dt = data["delta_t"]
        edges = np.linspace(float(dt.min()), float(dt.max()) if dt.max() > dt.min() else float(dt.min()) + 1, bins + 1)
        pairs = np.unique(data[["ref_board", "ref_channel", "board", "channel"]])
        for rb, rc, b, c in pairs.tolist():
            mask = (data["ref_board"] == rb) & (data["ref_channel"] == rc) & (data["board"] == b) & (data["channel"] == c)
            counts, _ = np.histogram(dt[mask], edges)
            ax.stairs(counts, edges, lw=1.2, label=f"{b}:{c} - {rb}:{rc} ({int(mask.sum())} pairs)")
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8, frameon=False)
    ax.set_xlabel("delta_t, partner - reference [ns]")
    ax.set_ylabel("pairs per bin")
    ax.set_title(title or "Time of flight between channels", fontsize=10)
    save(fig, path)
    return fig
