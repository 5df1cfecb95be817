"""Commands that look: ``graph``, ``cache`` and ``show``."""

from __future__ import annotations

import json
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
    age,
    check_target,
    find_runs,
    make_context,
    no_runs_message,
    pick_runs,
    run_bytes,
    run_format,
    size,
    suggest,
    table,
)


@click.command()
@DATA_ROOT_ARG
@click.option("--target", default="peaks", show_default=True, help=TARGET_HELP)
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
@SET_OPTION
def graph(data_root: Path, target: str, batch: bool, output: Path, config: Path | None) -> None:
    """Draw the plugins TARGET depends on (with their options), or the batch graph.

    Writes DOT text when Graphviz's ``dot`` is missing, and says so.

    \b
    Example:
      waveform-analysis graph DAQ --target basic_features -o lineage.svg
      waveform-analysis graph DAQ --batch -o batch.dot
    """
    ctx = make_context(data_root, None, config, None)
    check_target(ctx, target)
    from ..batch.drawing import batch_chain, write_drawing

    dot = batch_chain(ctx, target).to_dot() if batch else ctx.to_dot(target)
    path, note = write_drawing(dot, output)
    if note:
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {path}")


@click.command()
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
    from ..core.storage import CacheStorage, verify_folder

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
        raise suggest(run_id, runs, "run", "--run") if runs else click.BadParameter(
            f"the cache {cache_dir} holds no entries", param_hint="--run")  # fmt: skip
    if data_name is not None and data_name not in names:
        raise suggest(data_name, names, "data name", "--data")
    chosen = [
        e
        for e in entries
        if run_id in (None, e["_run"]) and data_name in (None, e.get("data_name"))
    ]
    if action == "list":
        now = time.time()
        rows = [[e["_run"], str(e.get("data_name")), size(int(e.get("file_size", 0))), str(e.get("key")),
                 age(now - e["_path"].stat().st_mtime)] for e in chosen]  # fmt: skip
        click.echo(
            table(rows, ["run", "data", "size", "key", "age"])
            if rows
            else f"no entries in {cache_dir}"
        )
        total = sum(int(e.get("file_size", 0)) for e in chosen)
        click.echo(f"{len(chosen)} entries, {size(total)}")
    elif action == "verify":
        checks = [c for r in ([run_id] if run_id else runs) for c in verify_folder(cache_dir, r)
                  if data_name in (None, c.data_name)]  # fmt: skip
        rows = [
            [c.run_id, c.data_name, c.key, c.status, c.detail if not c.ok else ""] for c in checks
        ]
        if rows:
            click.echo(table(rows, ["run", "data", "key", "status", "detail"]))
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


@click.command()
@DATA_ROOT_ARG
@click.argument("run_id", metavar="[RUN]", required=False)
@CACHE_OPTION
@ADAPTER_OPTION
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="options as TOML or JSON (e.g. wavedump_config, board_model)")
@SET_OPTION
def show(data_root: Path, run_id: str | None, cache: Path | None, adapter: str | None,
         config: Path | None = None) -> None:
    """What DATA_ROOT holds: runs, layout, channels, boards, segments, sizes, and what is cached.

    \b
    Example:
      waveform-analysis show DAQ
      waveform-analysis show DAQ run_001 --cache wa_cache --config opts.toml
    """
    import numpy as np

    from ..core.config import default_storage_dir
    from ..core.storage import CacheStorage

    found = find_runs(data_root, adapter)
    store = CacheStorage(cache if cache is not None else default_storage_dir(), readonly=True)
    if run_id is not None:
        pick_runs(found, (run_id,), False, data_root, adapter)
    if not found:
        click.echo(no_runs_message(data_root, adapter))
        return
    if run_id is None:
        rows = []
        for r, (name, files) in found.items():
            folders = sorted(
                {str(p).split("/")[1] if "/" in str(p) else "." for p in files["path"]}
            )
            rows.append([r, name, run_format(data_root, r) or "-", ",".join(folders), _channels(files), str(len(np.unique(files["board"]))),
                         str(len(np.unique(files["segment"]))), str(len(files)),
                         size(run_bytes(data_root, files)), str(len(store.entries(r)))])  # fmt: skip
        click.echo(f"{len(found)} runs in {data_root}")
        click.echo(
            table(
                rows,
                [
                    "run",
                    "adapter",
                    "format",
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
        f"run {run_id} in {data_root}: adapter {name}, {len(files)} files, {size(run_bytes(data_root, files))}"
    )
    # the listing's size/mtime are those a cache key records (unset here): the file's own size is shown
    cols = [f for f in files.dtype.names if f not in ("path", "size", "mtime")]
    rows = [
        [
            str(f["path"]),
            *(str(f[c]) for c in cols),
            size((data_root / str(f["path"])).stat().st_size),
        ]
        for f in files
    ]
    click.echo(table(rows, ["file", *cols, "size"]))
    _print_run_info(data_root, run_id, cache, name, config)
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
            ", ".join(f"{e.get('data_name')} ({size(int(e.get('file_size', 0)))})" for e in entries)
            or "nothing"
        )
    )


def _print_run_info(data_root: Path, run_id: str, cache: Path | None, adapter: str,
                    config: Path | None = None) -> None:
    """The run's RunInfo, one value a line with where it came from (with ``config``'s options)."""
    from ..errors import WaveformAnalysisError

    fmt = run_format(data_root, run_id)
    if fmt:
        click.echo(f"format: {fmt}")
    try:
        ctx = make_context(data_root, cache, config, adapter)
        info = ctx.run_info(run_id)
    except WaveformAnalysisError as exc:
        click.echo(f"run info: {exc}")
        return
    sources = info.pop("sources")
    skip = {"sources", "channels", "files", "notes", "adapter", "boards"}
    rows = []
    for key, value in info.items():
        if key in skip or value in (None, {}, ()):
            continue
        rows.append([key, str(value), sources.get(key, "")])
    click.echo(table(rows, ["run info", "value", "from"]))
    for ch, over in sorted(info["channels"].items()):
        click.echo(f"  channel {ch}: " + ", ".join(f"{k}={v}" for k, v in over.items()))
    for board, entry in sorted(info.get("boards", {}).items()):
        values = {k: v for k, v in entry.items() if k not in ("channels", "sources")
                  and v not in (None, {}, ())}
        click.echo(f"board {board}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
        for ch, over in sorted(entry.get("channels", {}).items()):
            click.echo(f"  board {board} channel {ch}: "
                       + ", ".join(f"{k}={v}" for k, v in over.items()))
    for note in info["notes"]:
        click.echo(f"  note: {note}")
    if info["files"]:
        click.echo("settings read: " + ", ".join(info["files"]))
    chosen = {k: ctx.get_config("raw_files", k) for k in ("wavedump_config", "board_model")}
    if any(v is not None for v in chosen.values()):
        click.echo("options: " + ", ".join(f"{k}={v}" for k, v in chosen.items() if v is not None))


def _channels(files: Any) -> str:
    import numpy as np

    ch = np.unique(files["channel"])
    if len(ch) == 1 and ch[0] < 0:
        return "in file"  # formats that store the channel per record (V1725)
    return ",".join(str(int(c)) for c in ch)
