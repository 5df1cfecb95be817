"""Commands over one or many runs as one: ``plot`` and ``export``."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import click

from .common import (
    ADAPTER_OPTION,
    CACHE_OPTION,
    DATA_ROOT_ARG,
    SET_OPTION,
    check_target,
    find_runs,
    make_context,
    pick_runs,
    waveform_plot_settings,
)

SELECTION_OPTION = click.option(
    "--selection", default=None,
    help="keep rows matching e.g. 'area > 100 & channel == 1' (fields of TARGET; & | ~ and parentheses)",
)
CONFIG_OPTION = click.option(
    "--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
    help="plugin options as TOML or JSON",
)

#: The data each picture draws unless --target names another.
DEFAULT_TARGET = {
    "waveforms": "st_waveforms",
    "spectrum": "peaks",
    "rate": "peaks",
    "psd": "basic_features",
    "tof": "coincidences",
}


def expand_run_args(found: dict[str, Any], runs: tuple[str, ...], data_root: Path) -> list[str]:
    """Run names from arguments that may be globs (``'run_0*'``), checked against DATA_ROOT."""
    out: list[str] = []
    for r in runs:
        if set("*?[") & set(r):
            matched = fnmatch.filter(list(found), r)
            if not matched:
                raise click.BadParameter(f"no run in {data_root} matches {r!r}", param_hint="RUN")
            out.extend(matched)
        else:
            out.append(r)
    return pick_runs(found, tuple(out), False, data_root)


def _context(data_root: Path, runs: tuple[str, ...], cache: Path | None, config: Path | None,
             adapter: str | None) -> tuple[Any, list[str]]:
    found = find_runs(data_root, adapter)
    chosen = expand_run_args(found, runs, data_root)
    ctx = make_context(data_root, cache, config, adapter or found[chosen[0]][0])
    ctx.runner = _batch_with_progress
    return ctx, chosen


#: What a row of each standard data type is, for axis labels and legends.
_NOUNS = {"peaks": "peaks", "triggers": "triggers", "basic_features": "records",
          "st_waveforms": "records", "coincidences": "pairs", "events": "events"}


def row_noun(name: str) -> str:
    """What a row of ``name`` is called on a plot ("records" for basic_features)."""
    return _NOUNS.get(name, f"rows of {name}")


#: The fields each picture reads: over many runs only these are kept, a few bytes a row.
_PLOT_FIELDS = {
    "spectrum": ("energy_calibrated", "energy", "charge_long", "area", "height", "board", "channel"),
    "rate": ("time", "board", "channel"),
    "psd": ("energy_calibrated", "energy", "charge_long", "area", "psd", "board", "channel"),
    "tof": ("delta_t", "ref_board", "ref_channel", "board", "channel"),
}


def _plot_fields(ctx: Any, name: str, what: str) -> list[str] | None:
    """The fields of ``name`` the picture reads (None, all of them, when its dtype is unknown)."""
    dtype = getattr(ctx.plugins[name], "dtype", None)
    if dtype is None or not dtype.names:
        return None
    return [f for f in _PLOT_FIELDS[what] if f in dtype.names]


def _default_target(ctx: Any, runs: list[str], what: str) -> str:
    """:data:`DEFAULT_TARGET`, but ``triggers`` for a spectrum or rate of list-mode runs (no
    waveforms, so no peaks)."""
    if what in ("spectrum", "rate") and not ctx.run_info(runs[0]).get("has_waveforms", True):
        return "triggers"
    return DEFAULT_TARGET[what]


def _batch_with_progress(ctx: Any, runs: list[str], target: str) -> None:
    """The Context's runner from the command line: the uncached runs in one batch (on all
    cores) with a progress bar, before they are read one at a time."""
    from ..batch import compute_runs

    compute_runs(ctx, runs, target, show_progress=True)


@click.command()
@DATA_ROOT_ARG
@click.argument("runs", metavar="RUN...", nargs=-1, required=True)
@click.option("--what", type=click.Choice(list(DEFAULT_TARGET)), default="waveforms", show_default=True)
@click.option("--target", default=None,
              help="data to draw (default: st_waveforms, peaks (triggers for a list-mode run), "
                   "basic_features or coincidences by --what)")
@click.option("--sum", "summed", is_flag=True, help="several runs (or a glob) drawn as one")
@SELECTION_OPTION
@click.option("--linear", is_flag=True, help="spectrum: a linear count axis instead of log")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="PNG (or SVG/PDF) file")
@CACHE_OPTION
@CONFIG_OPTION
@SET_OPTION
@ADAPTER_OPTION
def plot(data_root: Path, runs: tuple[str, ...], what: str, target: str | None, summed: bool,
         selection: str | None, linear: bool, output: Path, cache: Path | None,
         config: Path | None, adapter: str | None) -> None:
    """Draw one picture of a run, or of many runs summed (computing what it needs, or reading
    it from the cache): waveforms, spectrum (calibrated energy when there is one), psd (PSD
    against energy), tof (delta_t per channel pair) or rate.

    \b
    Example:
      waveform-analysis plot DAQ run_001 --what spectrum -o run_001_spectrum.png
      waveform-analysis plot DAQ 'run_0*' --what spectrum --sum --selection 'channel == 1' -o sum.png
      waveform-analysis plot DAQ run_001 --what psd -o psd.png
    """
    from .. import plotting

    ctx, chosen = _context(data_root, runs, cache, config, adapter)
    if len(chosen) > 1 and not summed:
        raise click.UsageError(f"{len(chosen)} runs given: pass --sum to draw them as one")
    name = check_target(ctx, target or _default_target(ctx, chosen, what))
    label = chosen[0] if len(chosen) == 1 else f"{len(chosen)} runs ({chosen[0]} ... {chosen[-1]})"
    if what == "waveforms":
        if len(chosen) > 1:
            raise click.UsageError("--what waveforms draws one run")
        run = chosen[0]
        st = ctx.get_data(run, "st_waveforms")
        fig = plotting.plot_waveforms(
            st, ctx.get_data(run, "peaks"), **waveform_plot_settings(ctx, run, st),
            title=f"{run}: waveforms with found peaks", selection=selection,
        )
    else:
        data = ctx.get_array(chosen, name, selection=selection, fields=_plot_fields(ctx, name, what))
        unit = ctx.run_info(chosen[0]).get("energy_unit")
        units = {"energy_calibrated": unit} if unit else None
        if what == "spectrum":
            from ..plotting import energy_field

            field = energy_field(data)
            fields = ("area", "height") if field == "area" and "height" in data.dtype.names else (field,)
            fig = plotting.plot_spectrum(data, fields, title=f"{label}: {name} spectra", log=not linear,
                                         noun=row_noun(name), units=units)
        elif what == "rate":
            fig = plotting.plot_rate(data, title=f"{label}: {name} rate over the run", noun=row_noun(name))
        elif what == "psd":
            fig = plotting.plot_psd(data, title=f"{label}: PSD against energy", units=units)
        else:
            fig = plotting.plot_tof(data, title=f"{label}: time of flight")
    plotting.save(fig, output)
    click.echo(f"wrote {output}")


@click.command()
@DATA_ROOT_ARG
@click.argument("runs", metavar="RUN...", nargs=-1, required=True)
@click.option("--target", required=True, help="data to write (peaks, basic_features, st_waveforms, ...)")
@SELECTION_OPTION
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="FILE.root, FILE.h5, FILE.parquet or FILE.csv (spectra)")
@CACHE_OPTION
@CONFIG_OPTION
@SET_OPTION
@ADAPTER_OPTION
def export(data_root: Path, runs: tuple[str, ...], target: str, selection: str | None, output: Path,
           cache: Path | None, config: Path | None, adapter: str | None) -> None:
    """Write TARGET of the runs (names or globs) to a file other tools open; the suffix picks
    the format: .root (uproot TTree and spectra), .h5/.hdf5, .parquet, .csv (spectra).

    Needs the optional extra 'export' for ROOT, HDF5 and Parquet.

    \b
    Example:
      waveform-analysis export DAQ run_001 run_002 --target peaks -o peaks.root
      waveform-analysis export DAQ 'run_*' --target basic_features --selection 'area > 50' -o bf.parquet
    """
    ctx, chosen = _context(data_root, runs, cache, config, adapter)
    check_target(ctx, target)
    try:
        path = ctx.export(chosen, target, output, selection=selection)
    except ImportError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {path} ({path.stat().st_size:,} bytes, {len(chosen)} runs of {target})")
