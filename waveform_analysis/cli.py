"""The ``waveform-analysis`` command line: generate, run, graph, cache, show, plot.

Every command works on a data folder laid out as ``DATA_ROOT/<run>/...`` (the
DAQ adapter, ``vx2730`` or ``v1725``, is detected from the files unless given
with ``--adapter``). Results go to a cache folder (``--cache``, default
``$WAVEFORM_ANALYSIS_STORAGE_DIR`` or ``~/.cache/waveform_analysis``).

Exit codes: 0 success, 1 a run failed (or a cache entry is damaged), 2 bad usage.

Needs the optional extra ``cli`` (click); ``import waveform_analysis`` does not
import this module.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import click

from .errors import NoDataError, RunNotFoundError

_TARGET_HELP = "data name to compute (peaks, basic_features, events, st_waveforms)"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("celestialflow")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


class _Group(click.Group):
    """A group that suggests the closest command for a typo."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if args and name not in self.commands and not name.startswith("-"):
            close = difflib.get_close_matches(name, list(self.commands), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise click.UsageError(
                f"no command {name!r}.{hint} Commands: {', '.join(sorted(self.commands))}", ctx
            )
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        from .errors import ConfigError, PluginError, WaveformAnalysisError

        try:
            return super().invoke(ctx)
        except (ConfigError, PluginError) as exc:  # a bad option, data name or config file
            raise click.UsageError(str(exc)) from None
        except WaveformAnalysisError as exc:
            raise click.ClickException(str(exc)) from None


def _suggest(word: str, known: list[str], what: str, param: str, where: str = "") -> click.BadParameter:
    """A usage error for an unknown name, with the closest known one (difflib)."""
    close = difflib.get_close_matches(word, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return click.BadParameter(
        f"unknown {what} {word!r}{where}{hint} (known: {', '.join(sorted(known))})", param_hint=param
    )


# -- runs, adapters, contexts -------------------------------------------------------------


def _adapters() -> list[str]:
    from .daq import available_adapters

    names = available_adapters()
    return sorted(names, key=lambda n: (n != "vx2730", n))  # the default first


def _files(data_root: Path, run: str, adapter: str | None) -> tuple[str, Any] | None:
    """``(adapter name, file table)`` of ``run``, trying every adapter unless one is named."""
    from .daq import get_adapter

    for name in [adapter] if adapter else _adapters():
        try:
            return name, get_adapter(name).list_files(data_root, run)
        except (RunNotFoundError, NoDataError, FileNotFoundError, NotADirectoryError):
            continue
    return None


def _find_runs(data_root: Path, adapter: str | None) -> dict[str, tuple[str, Any]]:
    """Every sub-folder of ``data_root`` that an adapter lists files for, by name."""
    out = {}
    for p in sorted(data_root.iterdir()):
        if p.is_dir() and not p.name.startswith("."):
            found = _files(data_root, p.name, adapter)
            if found is not None:
                out[p.name] = found
    return out


def _load_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    text = path.read_bytes()
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            cfg = tomllib.loads(text.decode())
        elif path.suffix.lower() == ".json":
            cfg = json.loads(text)
        else:
            raise click.BadParameter(f"{path}: use a .toml or .json file", param_hint="--config")
    except (ValueError, UnicodeDecodeError) as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise click.BadParameter(f"{path}: {exc}", param_hint="--config") from None
    if not isinstance(cfg, dict):
        raise click.BadParameter(
            f"{path}: the top level must be a table/object", param_hint="--config"
        )
    return cfg


def _context(data_root: Path, cache: Path | None, config: Path | None, adapter: str | None) -> Any:
    from . import Context, standard_plugins
    from .errors import WaveformAnalysisError

    cfg = {"data_root": str(data_root), **_load_config(config)}
    if adapter:
        cfg["daq_adapter"] = adapter
    try:
        ctx = Context(storage_dir=cache, config=cfg)
    except WaveformAnalysisError as exc:
        raise click.UsageError(str(exc)) from None
    ctx.register(standard_plugins())
    if config is not None:
        _check_option_names(ctx, cfg, config)
    return ctx


def _check_option_names(ctx: Any, cfg: dict[str, Any], path: Path) -> None:
    """Every name in a config file must be a plugin, one of its options, or a global key."""
    plugins = ctx.plugins
    all_options = sorted({o for p in plugins.values() for o in p.options})
    top = ["data_root", "daq_adapter", *plugins, *all_options]
    for name, value in cfg.items():
        if name in plugins and isinstance(value, dict):
            known = list(plugins[name].options)
            for opt in value:
                if opt not in known:
                    raise _suggest(opt, known, "option", "--config", f" for {name!r} in {path}")
        elif name not in top:
            raise _suggest(name, top, "name", "--config", f" in {path}")


def _check_target(ctx: Any, target: str, param: str = "--target") -> str:
    if target not in ctx.plugins:
        raise _suggest(target, list(ctx.plugins), "data name", param)
    return target


def _pick_runs(
    found: dict[str, Any], runs: tuple[str, ...], all_runs: bool, data_root: Path
) -> list[str]:
    if not found:
        raise click.UsageError(
            f"no runs found in {data_root} (a run is a folder the DAQ adapter reads)"
        )
    if all_runs:
        return list(found)
    if not runs:
        raise click.UsageError(
            f"name the runs to process or pass --all; runs in {data_root}: {', '.join(found)}"
        )
    missing = [r for r in runs if r not in found]
    if missing:
        close = [m for r in missing for m in difflib.get_close_matches(r, list(found), n=1)]
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise click.UsageError(
            f"run(s) {', '.join(repr(m) for m in missing)} not found in {data_root}.{hint} "
            f"Runs found: {', '.join(found)}"
        )
    return list(dict.fromkeys(runs))


_NUMBER = re.compile(r"^(-|-?\d[\d,.]*(\s?[a-zA-Z]+)?)$")  # 12, -1, 3.5 MB, 1,234 or "-"


def _table(rows: list[list[str]], header: list[str]) -> str:
    """A plain text table; columns of numbers are right-aligned."""
    cols = list(zip(header, *rows))
    widths = [max(len(str(x)) for x in col) for col in cols]
    numeric = [bool(rows) and all(_NUMBER.match(str(x)) for x in col[1:]) for col in cols]

    def fmt(r: list[str]) -> str:
        return "  ".join(
            str(x).rjust(w) if num else str(x).ljust(w) for x, w, num in zip(r, widths, numeric)
        ).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, rows)])


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def _age(seconds: float) -> str:
    for unit, s in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= s:
            return f"{seconds / s:.0f} {unit}"
    return f"{seconds:.0f} s"


def _run_bytes(data_root: Path, files: Any) -> int:
    return sum((data_root / str(p)).stat().st_size for p in files["path"])


# -- commands ---------------------------------------------------------------------------------

_CACHE = click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
                      help="cache folder (default: $WAVEFORM_ANALYSIS_STORAGE_DIR or ~/.cache/waveform_analysis)")  # fmt: skip
_ADAPTER = click.option(
    "--adapter", default=None, help="DAQ adapter (default: detected from the files)"
)
_DATA_ROOT = click.argument(
    "data_root", type=click.Path(exists=True, file_okay=False, path_type=Path)
)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="waveform-analysis")
def main() -> None:
    """Digitizer waveforms to peaks, from the shell.

    \b
    Example:
      waveform-analysis generate DAQ --runs 2 --waveforms 200
      waveform-analysis run DAQ --all --plots plots
      waveform-analysis show DAQ
    """


@main.command()
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
    "--format", "fmt", type=click.Choice(["vx2730", "v1725"]), default="vx2730", show_default=True
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="seed of the first run (+1 per run)"
)
def generate(
    data_root: Path, runs: int, waveforms: int, channels: int, fmt: str, seed: int
) -> None:
    """Write synthetic digitizer runs with their truth (truth.npy next to RAW).

    Existing runs are kept, not overwritten.

    \b
    Example:
      waveform-analysis generate DAQ --runs 3 --waveforms 500 --format v1725
    """
    from tqdm import tqdm

    from .synthetic import generate_run

    data_root.mkdir(parents=True, exist_ok=True)
    ids = [f"run_{i:03d}" for i in range(1, runs + 1)]
    made, kept = [], []
    t0 = time.perf_counter()
    for i, run in enumerate(tqdm(ids, desc="generating runs", unit="run", file=sys.stderr)):
        if (data_root / run).exists():
            kept.append(run)
            continue
        generate_run(
            data_root, run, fmt=fmt, n_channels=channels, n_waveforms=waveforms, seed=seed + i
        )
        made.append(run)
    click.echo(f"wrote {len(made)} run(s) to {data_root} in {time.perf_counter() - t0:.1f} s "
               f"({fmt}, {channels} channels x {waveforms} waveforms)")  # fmt: skip
    if kept:
        click.echo(f"kept {len(kept)} existing run(s): {', '.join(kept)}")


def _dask_client(address: str | None, executor: str) -> dict[str, Any]:
    """Keyword for BatchProcessor.process_runs that sends the batch to a Dask scheduler."""
    if address is None:
        return {}
    import inspect

    from . import BatchProcessor

    if executor != "dask":
        raise click.BadParameter("needs --executor dask", param_hint="--dask-address")
    if "dask_client" in inspect.signature(BatchProcessor.process_runs).parameters:
        return {"dask_client": address}
    raise click.BadParameter(
        "this version's BatchProcessor cannot use an existing Dask scheduler (no dask_client= "
        "parameter yet); leave the option out to start a local Dask cluster",
        param_hint="--dask-address",
    )


@main.command()
@_DATA_ROOT
@click.argument("runs", nargs=-1)
@click.option("--all", "all_runs", is_flag=True, help="every run found in DATA_ROOT")
@click.option("--target", default="peaks", show_default=True, help=_TARGET_HELP)
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
@_CACHE
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="plugin options as TOML or JSON, e.g. [peaks] threshold = 20.0")  # fmt: skip
@_ADAPTER
@click.option("--plots", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="write waveform, spectrum and rate pictures per run here")  # fmt: skip
def run(data_root: Path, runs: tuple[str, ...], all_runs: bool, target: str, workers: int | None,
        executor: str, dask_address: str | None, cache: Path | None, config: Path | None,
        adapter: str | None, plots: Path | None) -> None:  # fmt: skip
    """Process runs to TARGET and print a summary per run.

    Exits with 1 when any run failed (the reasons are printed), 2 for bad usage.

    \b
    Example:
      waveform-analysis run DAQ run_001 run_002 --target peaks --workers 2
      waveform-analysis run DAQ --all --config options.toml --plots plots
    """
    from . import BatchProcessor

    dask_kw = _dask_client(dask_address, executor)
    found = _find_runs(data_root, adapter)
    chosen = _pick_runs(found, runs, all_runs, data_root)
    ctx = _context(data_root, cache, config, adapter or found[chosen[0]][0])
    _check_target(ctx, target)
    cached = {r for r in chosen if _cached(ctx, r, target)}
    t0 = time.perf_counter()
    result = BatchProcessor(ctx).process_runs(
        chosen, target, max_workers=workers, executor_type=executor, show_progress=True, **dask_kw
    )
    wall = time.perf_counter() - t0
    rows = []
    lineage = set(ctx.lineage(target).nodes)
    for r in chosen:
        meta = result["meta"][r]
        n_rec = n_peaks = rate = "-"
        if meta["status"] == "success":
            if "st_waveforms" in lineage:
                st = ctx.get_data(r, "st_waveforms")
                n_rec = str(len(st))
                span = (
                    (int(st["time"].max()) - int(st["time"].min())) * 1e-9 if len(st) > 1 else 0.0
                )
                n_ch = max(1, len(set(st["channel"][:1000].tolist())))
                rate = f"{len(st) / n_ch / span:,.0f}" if span > 0 else "-"
            if "peaks" in lineage:
                n_peaks = str(len(ctx.get_data(r, "peaks")))
            ctx.release(r)
        mb = _run_bytes(data_root, found[r][1]) / 1e6
        speed = "-"
        if r in cached:
            speed = "cached"  # nothing was read
        elif meta["elapsed"] > 0 and meta["status"] == "success":
            speed = f"{mb / meta['elapsed']:.0f}"
        rows.append([r, meta["status"], n_rec, n_peaks, rate, f"{meta['elapsed']:.2f}", speed])
    click.echo(
        _table(rows, ["run", "status", "records", "peaks", "trigger rate [Hz]", "time [s]", "MB/s"])
    )
    ok = sum(result["meta"][r]["status"] == "success" for r in chosen)
    click.echo(f"{ok}/{len(chosen)} runs to {target} in {wall:.1f} s; cache: {ctx.storage_dir}")
    click.echo("trigger rate: records per channel per second of run time (first to last trigger)")
    for r, err in result["errors"].items():
        click.echo(f"FAILED {r} in {err['plugin']}: {err['type']}: {err['message']}", err=True)
    if plots is not None:
        for r in chosen:
            if result["meta"][r]["status"] == "success":
                for p in _write_plots(ctx, r, plots):
                    click.echo(f"wrote {p}")
                ctx.release(r)
    if ok < len(chosen):
        sys.exit(1)


def _cached(ctx: Any, run_id: str, target: str) -> bool:
    try:
        return ctx.is_cached(run_id, target)
    except Exception:  # noqa: BLE001 - a broken run fails in the batch, with its reason
        return False


def _write_plots(ctx: Any, run_id: str, folder: Path, what: tuple[str, ...] = ("waveforms", "spectrum", "rate")) -> list[Path]:  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for w in what:
        path = folder / f"{run_id}_{w}.png"
        _plot(ctx, run_id, w, path)
        paths.append(path)
    return paths


def _plot(ctx: Any, run_id: str, what: str, path: Path) -> None:
    from . import plotting

    peaks = ctx.get_data(run_id, "peaks")
    title = f"{run_id}"
    if what == "waveforms":
        fig = plotting.plot_waveforms(
            ctx.get_data(run_id, "st_waveforms"), peaks,
            threshold=ctx.get_config("peaks", "threshold"), polarity=ctx.get_config("peaks", "polarity"),
            title=f"{run_id}: waveforms with found peaks",
        )  # fmt: skip
    elif what == "spectrum":
        fig = plotting.plot_spectrum(peaks, title=f"{run_id}: peak spectra")
    else:
        fig = plotting.plot_rate(peaks, title=f"{title}: peak rate over the run")
    plotting.save(fig, path)


@main.command()
@_DATA_ROOT
@click.argument("run_id", metavar="RUN")
@click.option(
    "--what",
    type=click.Choice(["waveforms", "spectrum", "rate"]),
    default="waveforms",
    show_default=True,
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="PNG (or SVG/PDF) file",
)
@_CACHE
@click.option(
    "--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None
)
@_ADAPTER
def plot(data_root: Path, run_id: str, what: str, output: Path, cache: Path | None,
         config: Path | None, adapter: str | None) -> None:  # fmt: skip
    """Draw one picture of a run (computing what it needs, or reading it from the cache).

    \b
    Example:
      waveform-analysis plot DAQ run_001 --what spectrum -o run_001_spectrum.png
    """
    found = _find_runs(data_root, adapter)
    _pick_runs(found, (run_id,), False, data_root)
    ctx = _context(data_root, cache, config, adapter or found[run_id][0])
    _plot(ctx, run_id, what, output)
    click.echo(f"wrote {output}")


@main.command()
@_DATA_ROOT
@click.option("--target", default="peaks", show_default=True, help=_TARGET_HELP)
@click.option(
    "--batch",
    is_flag=True,
    help="the batch graph (one stage per cached plugin) instead of the plugin lineage",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="FILE.dot, FILE.svg or FILE.png")  # fmt: skip
@click.option(
    "--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None
)
def graph(data_root: Path, target: str, batch: bool, output: Path, config: Path | None) -> None:
    """Draw the plugins TARGET depends on (with their options), or the batch graph.

    Writes DOT text when Graphviz's ``dot`` is missing, and says so.

    \b
    Example:
      waveform-analysis graph DAQ --target basic_features -o lineage.svg
      waveform-analysis graph DAQ --batch -o batch.dot
    """
    ctx = _context(data_root, None, config, None)
    _check_target(ctx, target)
    from .core.data.batch_drawing import batch_chain, write_drawing

    dot = batch_chain(ctx, target).to_dot() if batch else ctx.to_dot(target)
    path, note = write_drawing(dot, output)
    if note:
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {path}")


@main.command()
@click.argument(
    "cache_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.argument("action", type=click.Choice(["list", "verify", "clear"]))
@click.option("--run", "run_id", default=None, help="only this run")
@click.option("--data", "data_name", default=None, help="only this data name (e.g. peaks)")
def cache(cache_dir: Path, action: str, run_id: str | None, data_name: str | None) -> None:
    """List, verify (checksums) or clear the entries of a cache folder.

    ``verify`` re-reads every entry and exits with 1 when any differs from its
    stored checksum.

    \b
    Example:
      waveform-analysis cache ~/.cache/waveform_analysis list --run run_001
      waveform-analysis cache wa_cache verify
      waveform-analysis cache wa_cache clear --data peaks
    """
    from .core.storage import CacheStorage, verify_folder

    metas = sorted(p for p in cache_dir.glob("*/*.json") if not p.name.startswith("."))
    entries = []
    for p in metas:
        try:
            m = json.loads(p.read_text())
        except (OSError, ValueError):
            m = {"data_name": p.stem.rsplit("-", 1)[0], "key": "?", "file_size": 0}
        m["_run"], m["_path"] = p.parent.name, p
        entries.append(m)
    runs = sorted({e["_run"] for e in entries})
    names = sorted({str(e.get("data_name")) for e in entries})
    if run_id is not None and run_id not in runs:
        raise _suggest(run_id, runs, "run", "--run") if runs else click.BadParameter(
            f"the cache {cache_dir} holds no entries", param_hint="--run")  # fmt: skip
    if data_name is not None and data_name not in names:
        raise _suggest(data_name, names, "data name", "--data")
    chosen = [
        e
        for e in entries
        if run_id in (None, e["_run"]) and data_name in (None, e.get("data_name"))
    ]
    if action == "list":
        now = time.time()
        rows = [[e["_run"], str(e.get("data_name")), _size(int(e.get("file_size", 0))), str(e.get("key")),
                 _age(now - e["_path"].stat().st_mtime)] for e in chosen]  # fmt: skip
        click.echo(
            _table(rows, ["run", "data", "size", "key", "age"])
            if rows
            else f"no entries in {cache_dir}"
        )
        total = sum(int(e.get("file_size", 0)) for e in chosen)
        click.echo(f"{len(chosen)} entries, {_size(total)}")
    elif action == "verify":
        checks = [c for r in ([run_id] if run_id else runs) for c in verify_folder(cache_dir, r)
                  if data_name in (None, c.data_name)]  # fmt: skip
        rows = [
            [c.run_id, c.data_name, c.key, c.status, c.detail if not c.ok else ""] for c in checks
        ]
        if rows:
            click.echo(_table(rows, ["run", "data", "key", "status", "detail"]))
        bad = [c for c in checks if not c.ok]
        click.echo(f"{len(checks)} entries checked, {len(bad)} damaged")
        if bad:
            click.echo("a damaged entry is recomputed when a Context with verify_cache=True loads it; "
                       "or remove it with 'clear --run RUN --data NAME'", err=True)  # fmt: skip
            sys.exit(1)
    else:
        store = CacheStorage(cache_dir)
        n = sum(store.delete(r, data_name) for r in ([run_id] if run_id else runs))
        click.echo(f"removed {n} files from {cache_dir}")


@main.command()
@_DATA_ROOT
@click.argument("run_id", metavar="[RUN]", required=False)
@_CACHE
@_ADAPTER
def show(data_root: Path, run_id: str | None, cache: Path | None, adapter: str | None) -> None:
    """What DATA_ROOT holds: runs, layout, channels, boards, segments, sizes, and what is cached.

    \b
    Example:
      waveform-analysis show DAQ
      waveform-analysis show DAQ run_001 --cache wa_cache
    """
    import numpy as np

    from .core.config import default_storage_dir
    from .core.storage import CacheStorage

    found = _find_runs(data_root, adapter)
    store = CacheStorage(cache if cache is not None else default_storage_dir(), readonly=True)
    if run_id is not None:
        _pick_runs(found, (run_id,), False, data_root)
    if not found:
        click.echo(f"no runs found in {data_root} (adapters tried: {', '.join(_adapters())})")
        return
    if run_id is None:
        rows = []
        for r, (name, files) in found.items():
            folders = sorted(
                {str(p).split("/")[1] if "/" in str(p) else "." for p in files["path"]}
            )
            rows.append([r, name, ",".join(folders), _channels(files), str(len(np.unique(files["board"]))),
                         str(len(np.unique(files["segment"]))), str(len(files)),
                         _size(_run_bytes(data_root, files)), str(len(store.entries(r)))])  # fmt: skip
        click.echo(f"{len(found)} runs in {data_root}")
        click.echo(
            _table(
                rows,
                [
                    "run",
                    "adapter",
                    "folder",
                    "channels",
                    "boards",
                    "segments",
                    "files",
                    "size",
                    "cached",
                ],
            )
        )
        click.echo(f"cached: entries in {store.root}")
        return
    name, files = found[run_id]
    click.echo(
        f"run {run_id} in {data_root}: adapter {name}, {len(files)} files, {_size(_run_bytes(data_root, files))}"
    )
    cols = [f for f in files.dtype.names if f != "path"]
    rows = [
        [
            str(f["path"]),
            *(str(f[c]) for c in cols),
            _size((data_root / str(f["path"])).stat().st_size),
        ]
        for f in files
    ]
    click.echo(_table(rows, ["file", *cols, "size"]))
    truth = data_root / run_id / "truth.json"
    if truth.is_file():
        t = json.loads(truth.read_text())
        click.echo(
            f"synthetic: {t.get('n_records')} records, {t.get('n_pulses')} true pulses, seed {t.get('seed')}"
        )
    entries = store.entries(run_id)
    click.echo(
        f"cached in {store.root}: "
        + (
            ", ".join(
                f"{e.get('data_name')} ({_size(int(e.get('file_size', 0)))})" for e in entries
            )
            or "nothing"
        )
    )


def _channels(files: Any) -> str:
    import numpy as np

    ch = np.unique(files["channel"])
    if len(ch) == 1 and ch[0] < 0:
        return "in file"  # formats that store the channel per record (V1725)
    return ",".join(str(int(c)) for c in ch)


if __name__ == "__main__":  # pragma: no cover
    main()
