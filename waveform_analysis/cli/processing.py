"""Commands that compute: ``generate`` and ``run``."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from .common import (
    ADAPTER_OPTION,
    CACHE_OPTION,
    DATA_ROOT_ARG,
    SET_OPTION,
    TARGET_HELP,
    check_target,
    find_runs,
    make_context,
    pick_runs,
    run_bytes,
    table,
    waveform_plot_settings,
)

# the formats of waveform_analysis.synthetic.FORMATS (named here: importing it loads numba)
GENERATE_FORMATS = [
    "vx2730", "compass-csv", "compass-bin", "v1725", "wavedump", "wavedump-ascii", "caen-raw",
]


@click.command()
@click.argument("data_root", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--runs",
    type=click.IntRange(min=1),
    required=True,
    help="number of runs (run_001, run_002, ...)",
)
@click.option("--waveforms", type=click.IntRange(min=1), default=1000, show_default=True,
              help="triggers per channel and run")  # fmt: skip
@click.option("--channels", type=click.IntRange(min=1), default=2, show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(GENERATE_FORMATS), default="vx2730", show_default=True,
    help="file format written (compass-csv, compass-bin: CoMPASS 2.x names in RAW)",
)
@click.option("--list-mode", is_flag=True, help="CoMPASS: energies, times and flags only, no waveforms")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="seed of the first run (+1 per run)"
)
@click.option("--shape", type=click.Choice(["pulses", "scintillator"]), default="pulses",
              show_default=True, help="scintillator: one photo-electron-built pulse per record")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="a shape option, repeatable: --set tau_slow=150 --set neutron_fraction=0.3 "
                   "--set afterpulse_prob=0.2 --set drift=10 --set n_samples=400; "
                   "--set delay_ns=0,37.5: per-channel delays (CoMPASS formats, time of flight)")
def generate(
    data_root: Path, runs: int, waveforms: int, channels: int, fmt: str, list_mode: bool, seed: int,
    shape: str, settings: tuple[str, ...],
) -> None:
    """Write synthetic digitizer runs with their truth (truth.npy next to RAW).

    Existing runs are kept, not overwritten.

    \b
    Example:
      waveform-analysis generate DAQ --runs 3 --waveforms 500 --format v1725
      waveform-analysis generate DAQ --runs 2 --format compass-bin
      waveform-analysis generate DAQ --runs 1 --shape scintillator --set tau_slow=150
    """
    from tqdm import tqdm

    from ..synthetic import generate_run

    data_root.mkdir(parents=True, exist_ok=True)
    ids = [f"run_{i:03d}" for i in range(1, runs + 1)]
    made, kept = [], []
    t0 = time.perf_counter()
    for i, run in enumerate(tqdm(ids, desc="generating runs", unit="run", file=sys.stderr)):
        if (data_root / run).exists():
            kept.append(run)
            continue
        extra = {"samples": False} if list_mode else {}
        generate_run(data_root, run, fmt=fmt, n_channels=channels, n_waveforms=waveforms,
                     seed=seed + i, shape=shape, **_settings(settings), **extra)
        made.append(run)
    click.echo(f"wrote {len(made)} run(s) to {data_root} in {time.perf_counter() - t0:.1f} s "
               f"({fmt}, {channels} channels x {waveforms} waveforms)")  # fmt: skip
    if kept:
        click.echo(f"kept {len(kept)} existing run(s): {', '.join(kept)}")


def _settings(items: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as keywords: numbers as numbers, ``lo,hi`` as a pair."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        try:
            parts = [float(v) for v in value.split(",")]
        except ValueError:
            out[key] = value
            continue
        num = [int(v) if v.is_integer() and "." not in value else v for v in parts]
        out[key] = num[0] if len(num) == 1 else tuple(num)
    return out


def _dask_client(address: str | None, executor: str) -> dict[str, Any]:
    """Keyword for BatchProcessor.process_runs that sends the batch to a Dask scheduler."""
    if address is None:
        return {}
    import inspect

    from .. import BatchProcessor

    if executor != "dask":
        raise click.BadParameter("needs --executor dask", param_hint="--dask-address")
    if "dask_client" in inspect.signature(BatchProcessor.process_runs).parameters:
        return {"dask_client": address}
    raise click.BadParameter(
        "this version's BatchProcessor cannot use an existing Dask scheduler (no dask_client= "
        "parameter yet); leave the option out to start a local Dask cluster",
        param_hint="--dask-address",
    )


@click.command()
@DATA_ROOT_ARG
@click.argument("runs", nargs=-1)
@click.option("--all", "all_runs", is_flag=True, help="every run found in DATA_ROOT")
@click.option("--target", default="peaks", show_default=True, help=TARGET_HELP)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="runs processed at once (default: cores)",
)
@click.option(
    "--executor",
    type=click.Choice(["thread", "process", "dask"]),
    default="thread",
    show_default=True,
)
@click.option(
    "--dask-address",
    default=None,
    help="scheduler address, e.g. tcp://host:8786 (with --executor dask)",
)
@CACHE_OPTION
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="plugin options as TOML or JSON, e.g. [peaks] threshold = 20.0")  # fmt: skip
@SET_OPTION
@ADAPTER_OPTION
@click.option("--plots", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="write waveform, spectrum and rate pictures per run here")  # fmt: skip
@click.option("--selection", default=None,
              help="count the rows of TARGET matching e.g. 'area > 100' (and draw only those peaks)")
def run(data_root: Path, runs: tuple[str, ...], all_runs: bool, target: str, workers: int | None,
        executor: str, dask_address: str | None, cache: Path | None, config: Path | None,
        adapter: str | None, plots: Path | None, selection: str | None) -> None:  # fmt: skip
    """Process runs to TARGET and print a summary per run.

    Exits with 1 when any run failed (the reasons are printed), 2 for bad usage.

    \b
    Example:
      waveform-analysis run DAQ run_001 run_002 --target peaks --workers 2
      waveform-analysis run DAQ --all --config options.toml --plots plots
      waveform-analysis run DAQ --all --set dt_ns=2 --set peaks.threshold=20
      waveform-analysis run DAQ --all --target peaks --selection 'area > 500 & channel == 0'
    """
    from .. import BatchProcessor

    dask_kw = _dask_client(dask_address, executor)
    found = find_runs(data_root, adapter)
    chosen = pick_runs(found, runs, all_runs, data_root, adapter)
    # runs of different formats in one folder: one batch (one Context) per adapter
    groups: dict[str, list[str]] = {}
    for r in chosen:
        groups.setdefault(adapter or found[r][0], []).append(r)
    contexts = {name: make_context(data_root, cache, config, name) for name in groups}
    ctx_of = {r: contexts[name] for name, rs in groups.items() for r in rs}
    ctx = contexts[adapter or found[chosen[0]][0]]
    check_target(ctx, target)
    cached = {r for r in chosen if _cached(ctx_of[r], r, target)}
    t0 = time.perf_counter()
    result: dict[str, Any] = {"meta": {}, "errors": {}}
    for name, rs in groups.items():
        part = BatchProcessor(contexts[name]).process_runs(
            rs, target, max_workers=workers, executor_type=executor, show_progress=True, **dask_kw
        )
        result["meta"].update(part["meta"])
        result["errors"].update(part["errors"])
    wall = time.perf_counter() - t0
    rows = []
    lineage = set(ctx.lineage(target).nodes)
    for r in chosen:
        meta = result["meta"][r]
        n_rec = n_peaks = rate = n_sel = "-"
        if meta["status"] == "success":
            rctx = ctx_of[r]
            counted = next((n for n in ("st_waveforms", "triggers") if n in lineage), None)
            if counted is not None:
                st = rctx.get_data(r, counted)
                n_rec = str(len(st))
                span = (
                    (int(st["time"].max()) - int(st["time"].min())) * 1e-9 if len(st) > 1 else 0.0
                )
                n_ch = max(1, len(set(st["channel"][:1000].tolist())))
                rate = f"{len(st) / n_ch / span:,.0f}" if span > 0 else "-"
            if "peaks" in lineage:
                n_peaks = str(len(rctx.get_data(r, "peaks")))
            if selection is not None:
                from ..analysis.selection import selection_mask

                n_sel = str(int(selection_mask(rctx.get_data(r, target), selection).sum()))
            rctx.release(r)
        mb = run_bytes(data_root, found[r][1]) / 1e6
        speed = "-"
        if r in cached:
            speed = "cached"  # nothing was read
        elif meta["elapsed"] > 0 and meta["status"] == "success":
            speed = f"{mb / meta['elapsed']:.0f}"
        rows.append([r, meta["status"], n_rec, n_peaks, rate, f"{meta['elapsed']:.2f}", speed]
                    + ([n_sel] if selection is not None else []))
    header = ["run", "status", "records", "peaks", "trigger rate [Hz]", "time [s]", "MB/s"]
    click.echo(table(rows, header + ([f"{target} selected"] if selection is not None else [])))
    ok = sum(result["meta"][r]["status"] == "success" for r in chosen)
    click.echo(f"{ok}/{len(chosen)} runs to {target} in {wall:.1f} s; cache: {ctx.storage_dir}")
    click.echo("trigger rate: records per channel per second of run time (first to last trigger)")
    for r, err in result["errors"].items():
        click.echo(f"FAILED {r} in {err['plugin']}: {err['type']}: {err['message']}", err=True)
    if plots is not None:
        for r in chosen:
            if result["meta"][r]["status"] == "success":
                for p in _write_plots(ctx_of[r], r, plots, selection if target == "peaks" else None):
                    click.echo(f"wrote {p}")
                ctx_of[r].release(r)
    if ok < len(chosen):
        sys.exit(1)


def _cached(ctx: Any, run_id: str, target: str) -> bool:
    try:
        return ctx.is_cached(run_id, target)
    except Exception:  # noqa: BLE001 - a broken run fails in the batch, with its reason
        return False


def _write_plots(ctx: Any, run_id: str, folder: Path, selection: str | None = None,
                 what: tuple[str, ...] = ("waveforms", "spectrum", "rate")) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for w in what:
        path = folder / f"{run_id}_{w}.png"
        _plot(ctx, run_id, w, path, selection)
        paths.append(path)
    return paths


def _plot(ctx: Any, run_id: str, what: str, path: Path, selection: str | None = None) -> None:
    from .. import plotting
    from ..analysis.selection import apply_selection

    peaks = apply_selection(ctx.get_data(run_id, "peaks"), selection)
    title = f"{run_id}"
    if what == "waveforms":
        fig = plotting.plot_waveforms(
            st := ctx.get_data(run_id, "st_waveforms"), peaks, **waveform_plot_settings(ctx, run_id, st),
            title=f"{run_id}: waveforms with found peaks",
        )  # fmt: skip
    elif what == "spectrum":
        fig = plotting.plot_spectrum(peaks, title=f"{run_id}: peak spectra")
    else:
        fig = plotting.plot_rate(peaks, title=f"{title}: peak rate over the run")
    plotting.save(fig, path)
