"""Pictures of runs: waveforms with their peaks, spectra, rates, PSD against energy, time of flight.

Each function returns a :class:`matplotlib.figure.Figure` (a notebook shows it)
and writes a file only when given ``path`` (format from the suffix). Figures
are made without pyplot, so no GUI backend and no global figure state are
involved; files are written through matplotlib's Agg canvas.

Needs the optional extra ``plot`` (``pip install 'celestialflow[plot]'``)::

    from waveform_analysis import plotting
    fig = plotting.plot_waveforms(ctx.get_data(run, "st_waveforms"),
                                  ctx.get_data(run, "peaks"), threshold=15.0)
    plotting.plot_spectrum(ctx.get_data(run, "peaks"), path="area.png")
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import ConfigError

__all__ = ["energy_field", "plot_psd", "plot_rate", "plot_spectrum", "plot_tof", "plot_waveforms", "save"]

_MAX_BINS = 200


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "waveform_analysis.plotting needs matplotlib: pip install 'celestialflow[plot]'"
        ) from exc
    return Figure(figsize=(width, height), layout="constrained")


def save(fig: Any, path: str | os.PathLike[str] | None, dpi: int = 110) -> None:
    """Write ``fig`` to ``path`` through the Agg canvas (nothing when ``path`` is None)."""
    if path is None:
        return
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)


def _pick_records(st: np.ndarray, peaks: np.ndarray | None, n: int) -> np.ndarray:
    """Up to ``n`` record indices: one each with 1, 2, 3+ and 0 peaks, then more with peaks."""
    if peaks is None or len(peaks) == 0:
        return np.arange(min(n, len(st)))
    counts = np.bincount(peaks["record_i"], minlength=len(st))
    chosen: list[int] = []
    for mask in (counts == 1, counts == 2, counts >= 3, counts == 0):
        idx = np.flatnonzero(mask)
        if len(idx) and len(chosen) < n:
            chosen.append(int(idx[0]))
    with_peaks = np.setdiff1d(np.flatnonzero(counts > 0)[: 4 * n], chosen)
    rest = with_peaks[: max(0, n - len(chosen))]
    return np.sort(np.concatenate([np.array(chosen, dtype=np.int64), rest.astype(np.int64)]))


def plot_waveforms(
    st_waveforms: np.ndarray,
    peaks: np.ndarray | None = None,
    records: Any = None,
    *,
    threshold: float | np.ndarray | None = None,
    polarity: str | np.ndarray = "negative",
    max_waveforms: int = 6,
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
    selection: Any = None,
    gates: np.ndarray | None = None,
) -> Any:
    """A gallery of records: samples, baseline, threshold and the found peaks (shaded).

    ``records`` are indices into ``st_waveforms``; by default a few records
    with one, two, several and no peaks (among those ``selection`` keeps, a
    selection over ``st_waveforms``' fields). Time is in ns from the record start.
    ``threshold`` and ``polarity`` may be one per record of ``st_waveforms`` (per-channel
    settings). ``gates``: one row per record of ``st_waveforms``, ``[open, trigger, short end,
    long end]`` in samples (``basic_features.record_gates``), drawn as bars above the
    samples: the pre-gate, the short gate and the long gate.
    """
    if records is None and selection is not None:
        from .analysis.selection import selection_mask

        keep = selection_mask(st_waveforms, selection)
        kept_peaks = peaks[keep[peaks["record_i"]]] if peaks is not None and len(peaks) else peaks
        records = _pick_records(st_waveforms, kept_peaks, max_waveforms)
        records = records[keep[records]][:max_waveforms]
    idx = np.asarray(
        records if records is not None else _pick_records(st_waveforms, peaks, max_waveforms)
    )
    idx = idx[:max_waveforms] if records is None else idx
    n = max(1, len(idx))
    ncols = 2 if n > 1 else 1
    nrows = (n + ncols - 1) // ncols
    fig = _figure(6.0 * ncols, 2.3 * nrows + 0.6)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, i in zip(axes, idx):
        rec = st_waveforms[int(i)]
        sign = -1.0 if (polarity[int(i)] if np.ndim(polarity) else polarity) == "negative" else 1.0
        level = threshold[int(i)] if np.ndim(threshold) else threshold
        length = int(rec["length"]) or rec["wave"].shape[0]
        dt = float(rec["dt"]) or 1.0
        t = np.arange(length) * dt
        ax.plot(t, rec["wave"][:length], lw=0.8, color="0.2", label="samples")
        base = float(rec["baseline"])
        ax.axhline(base, color="tab:blue", lw=1.2, ls="--", label="baseline", zorder=3)
        if level is not None:
            ax.axhline(base + sign * float(level), color="tab:orange", lw=1.2, ls=":", label="threshold", zorder=3)
        n_found = 0
        if peaks is not None and len(peaks):
            mine = peaks[peaks["record_i"] == int(i)]
            n_found = len(mine)
            for p in mine:
                ax.axvspan(p["left"] * dt, p["right"] * dt, color="tab:red", alpha=0.18, lw=0)
            if n_found:
                # at the extremum's level: the sample at the position (where the 3-sample
                # average peaks) may be a swing beside a one-sample spike
                ax.plot(mine["position"] * dt, base + sign * mine["height"].astype(np.float64),
                        "v" if sign < 0 else "^", color="tab:red", ms=6, label="peak")
        if gates is not None:
            _draw_gates(ax, np.asarray(gates)[int(i)] * dt)
        ax.set_title(
            f"record {int(i)}, channel {int(rec['channel'])}: {n_found} peak(s)", fontsize=9
        )
        ax.set_xlabel("time in record [ns]")
        ax.set_ylabel("ADC counts")
        ax.margins(x=0)
    for ax in axes[len(idx) :]:
        ax.set_axis_off()
    handles, labels = axes[0].get_legend_handles_labels()
    if peaks is not None and "peak" not in labels:
        from matplotlib.patches import Patch

        handles.append(Patch(color="tab:red", alpha=0.18))
        labels.append("peak")
    fig.legend(handles, labels, loc="outside upper right", ncols=4, fontsize=8, frameon=False)
    fig.suptitle(title or "Waveforms with found peaks", fontsize=11, x=0.02, ha="left")
    save(fig, path)
    return fig


_GATES = (("pre-gate", 0, 1, 0.80, "0.45"), ("short gate", 0, 2, 0.87, "tab:purple"),
          ("long gate", 0, 3, 0.94, "tab:green"))


def _draw_gates(ax: Any, bounds: np.ndarray) -> None:
    """The gates of one record (``bounds`` as :func:`plot_waveforms` takes them, in ns) as bars
    in headroom above the samples and a line at the trigger; nothing for a record without
    gates."""
    if bounds[0] < 0:
        return
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi + 0.3 * (hi - lo))  # headroom above the samples for the bars
    where = ax.get_xaxis_transform()  # x in data, y in axes fraction
    for label, a, b, y, color in _GATES:
        ax.plot([bounds[a], bounds[b]], [y, y], transform=where, color=color, lw=3.0,
                solid_capstyle="butt", label=label)
    ax.axvline(bounds[1], color="0.45", lw=0.8, ls="-.", label="trigger")


def _bins(values: np.ndarray) -> np.ndarray:
    """Equal bins from 0 to the 99.9th percentile: the finer of Freedman-Diaconis and sqrt(n), 10 to 200."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.linspace(0.0, 1.0, 11)
    hi = float(np.percentile(values, 99.9)) or 1.0
    lo = min(0.0, float(values.min()))
    n_fd = len(np.histogram_bin_edges(values, bins="fd", range=(lo, hi))) - 1
    # FD alone is coarse for falling spectra (their IQR is small); sqrt(n) keeps the tail readable
    n = int(np.clip(max(n_fd, int(np.sqrt(values.size))), 10, _MAX_BINS))
    return np.linspace(lo, hi, n + 1)


_UNITS = {"area": "area [ADC x samples]", "height": "height [ADC]"}


def plot_spectrum(
    peaks: np.ndarray,
    fields: tuple[str, ...] | str = ("area", "height"),
    *,
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
    selection: Any = None,
    log: bool = True,
    noun: str = "peaks",
    units: Mapping[str, str] | None = None,
) -> Any:
    """Peak spectra per channel (per board and channel with several boards; step histograms,
    log y): one panel per field.

    Bins run from 0 to the 99.9th percentile of all channels (10 to 200 equal
    bins, see :func:`_bins`); peaks above it are counted in the legend. Works on any
    data with the fields (``energy_calibrated`` of many runs from ``ctx.get_array``);
    ``selection`` keeps rows first, ``log=False`` draws a linear y axis, ``noun`` names
    what is counted (``"triggers"``), ``units`` gives a field's unit for its axis
    (``{"energy_calibrated": "keV"}``, as the run's settings name it).
    """
    peaks = _select(peaks, selection)
    fields = (fields,) if isinstance(fields, str) else tuple(fields)
    fig = _figure(max(6.4, 5.2 * len(fields)), 3.8)
    axes = fig.subplots(1, len(fields), squeeze=False).ravel()
    channels = _groups(peaks)
    for ax, field in zip(axes, fields):
        values = np.asarray(peaks[field], dtype=np.float64)
        edges = _bins(values)
        for name, mask in channels:
            v = values[mask]
            counts, _ = np.histogram(v, edges)
            over = int(np.count_nonzero(v > edges[-1]))
            label = f"{name} ({len(v)} {noun}" + (f", {over} above range)" if over else ")")
            ax.stairs(counts, edges, label=label, lw=1.2)
        if log:
            ax.set_yscale("log")
        ax.set_ylim(bottom=0.7 if log else 0)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_xlabel(_label(peaks, field, units))
        ax.set_ylabel(f"{noun} per bin ({edges[1] - edges[0]:.3g} wide)")
        one = title is not None and len(fields) == 1
        ax.set_title(title if one else f"{field} spectrum", fontsize=10)
        if len(channels):
            ax.legend(fontsize=8, frameon=False)
        else:
            ax.text(0.5, 0.5, f"no {noun}", transform=ax.transAxes, ha="center")
    if title and len(fields) > 1:
        fig.suptitle(title, fontsize=11)
    save(fig, path)
    return fig


def _groups(peaks: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """``(label, mask)`` per channel, or per (board, channel) when the peaks come from several boards."""
    if len(peaks) == 0:
        return []
    boards = peaks["board"] if "board" in (peaks.dtype.names or ()) else np.zeros(len(peaks), np.int16)
    several = len(np.unique(boards)) > 1
    out = []
    for b, ch in sorted({(int(b), int(c)) for b, c in zip(boards.tolist(), peaks["channel"].tolist())}):
        mask = (peaks["channel"] == ch) & (boards == b)
        out.append((f"board {b} channel {ch}" if several else f"channel {ch}", mask))
    return out


def plot_rate(
    peaks: np.ndarray,
    *,
    bins: int = 50,
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
    selection: Any = None,
    noun: str = "peaks",
) -> Any:
    """Peak rate per channel (per board and channel with several boards) over the run
    (Hz, or kHz above 10 kHz), in ``bins`` equal time bins, of the rows ``selection`` keeps;
    ``noun`` names what is counted (``"triggers"``). Rows of several runs (a ``run_id``
    field): each bin's count is divided by the runs whose time span covers it, so runs that
    all count from their own start give the rate per run, not their sum."""
    peaks = _select(peaks, selection)
    fig = _figure(7.0, 3.6)
    ax = fig.subplots()
    if len(peaks) == 0:
        ax.text(0.5, 0.5, f"no {noun}", transform=ax.transAxes, ha="center")
    else:
        t = (peaks["time"] - peaks["time"].min()) * 1e-9
        span = float(t.max()) or 1e-9
        unit, scale = ("ms", 1e3) if span < 1.0 else ("s", 1.0)
        edges = np.linspace(0.0, span, bins + 1)
        width = edges[1] - edges[0]
        channels = _groups(peaks)
        per_bin = width * _runs_covering(peaks, t, edges)
        counts = [np.histogram(t[mask], edges)[0] / np.where(per_bin > 0, per_bin, np.inf)
                  for _, mask in channels]
        r_unit, r_scale = ("kHz", 1e-3) if max(c.max() for c in counts) >= 1e4 else ("Hz", 1.0)
        for (name, _), c in zip(channels, counts):
            ax.stairs(c * r_scale, edges * scale, label=name, lw=1.2)
        ax.set_xlim(0, span * scale)
        ax.set_ylim(bottom=0)
        ax.set_xlabel(f"time since the first of the {noun} [{unit}]")
        ax.set_ylabel(f"rate of {noun} [{r_unit}] (bins of {width * scale:.3g} {unit})")
        ax.legend(fontsize=8, frameon=False)
    ax.set_title(title or "Peak rate over the run", fontsize=10)
    save(fig, path)
    return fig


def _runs_covering(rows: np.ndarray, t: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Per time bin, how many runs' spans (first to last row, by ``run_id``) overlap it; 1 for
    rows without ``run_id``."""
    if "run_id" not in (rows.dtype.names or ()):
        return np.ones(len(edges) - 1)
    runs, inverse = np.unique(rows["run_id"], return_inverse=True)
    lo = np.full(len(runs), np.inf)
    hi = np.full(len(runs), -np.inf)
    np.minimum.at(lo, inverse, t)
    np.maximum.at(hi, inverse, t)
    return np.sum((lo[:, None] <= edges[None, 1:]) & (hi[:, None] >= edges[None, :-1]), axis=0).astype(float)


def _select(data: np.ndarray, selection: Any) -> np.ndarray:
    from .analysis.selection import apply_selection

    return apply_selection(data, selection)


def energy_field(data: np.ndarray) -> str:
    """The energy-like field a spectrum or a PSD plot of ``data`` uses (see
    :func:`waveform_analysis.analysis.spectra.energy_field`)."""
    from .analysis.spectra import energy_field

    return energy_field(data)


def _label(data: np.ndarray, field: str, units: Mapping[str, str] | None = None) -> str:
    """The axis label of ``field``: its unit from ``units``, else as the dtype's title ends."""
    if units and units.get(field):
        return f"{field} [{units[field]}]"
    if field in _UNITS:
        return _UNITS[field]
    title = data.dtype.fields[field][2] if len(data.dtype.fields[field]) > 2 else None
    unit = str(title).rsplit("[", 1)[-1].rstrip("]") if title and "[" in str(title) else ""
    return f"{field} [{unit}]" if unit else field


def plot_psd(
    data: np.ndarray,
    *,
    energy: str | None = None,
    psd: str = "psd",
    selection: Any = None,
    bins: tuple[int, int] = (200, 120),
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
    units: Mapping[str, str] | None = None,
) -> Any:
    """2-D histogram of PSD (tail over total charge) against energy, log colour scale:
    neutrons and gammas fall on two bands. The psd axis spans the 0.5 to 99.5 percentiles of
    the values within [0, 1] (the ratio's range for a pulse; triggers of almost no charge
    fall anywhere), and the entries outside it are counted. Needs a ``psd`` field (``basic_features``
    with charge gates); ConfigError naming what is missing otherwise."""
    names = data.dtype.names or ()
    if psd not in names:
        raise ConfigError(
            f"a PSD plot needs a {psd!r} field; this data has {', '.join(names)} "
            "(basic_features carries psd when the charge gates are computed)"
        )
    data = _select(data, selection)
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
        # tail / total is within [0, 1] for a pulse; triggers of nearly no charge have any
        # ratio and would stretch the axis far beyond the bands
        inside = y[(y >= 0.0) & (y <= 1.0)]
        y_lo, y_hi = (float(v) for v in np.percentile(inside if len(inside) else y, [0.5, 99.5]))
        y_hi = y_hi if y_hi > y_lo else y_lo + 1
        outside = int(np.count_nonzero((y < y_lo) | (y > y_hi)))
        counts, xe, ye = np.histogram2d(x, y, bins=bins, range=[[min(0.0, x.min()), x_hi], [y_lo, y_hi]])
        mesh = ax.pcolormesh(xe, ye, np.where(counts > 0, counts, np.nan).T, norm=LogNorm(), cmap="viridis")
        fig.colorbar(mesh, ax=ax, label="entries per bin")
    ax.set_xlabel(_label(data, energy, units))
    ax.set_ylabel(f"{psd} (tail / total charge)")
    if len(x) and outside:
        ax.text(0.99, 0.01, f"{outside} outside the psd range shown", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=8)
    ax.set_title(title or f"PSD against energy ({len(x)} entries)", fontsize=10)
    save(fig, path)
    return fig


def plot_tof(
    coincidences: np.ndarray,
    *,
    selection: Any = None,
    bins: int = 200,
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """Histograms of ``delta_t`` (partner minus reference, offsets applied) per channel pair."""
    data = _select(coincidences, selection)
    fig = _figure(7.0, 4.0)
    ax = fig.subplots()
    if len(data) == 0:
        ax.text(0.5, 0.5, "no coincidences", transform=ax.transAxes, ha="center")
    else:
        dt = data["delta_t"]
        lo, hi = float(dt.min()), float(dt.max())
        pad = 0.05 * (hi - lo) if hi > lo else 0.5  # all equal (one delay): a bin around it
        edges = np.linspace(lo - pad, hi + pad, bins + 1)
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
