"""The ``watch`` command: a DAQ folder processed while the digitizer writes it."""

from __future__ import annotations

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
    make_context,
    run_files,
    table,
)


@click.command()
@DATA_ROOT_ARG
@click.option("--target", default="peaks", show_default=True, help=TARGET_HELP)
@click.option("--segments", is_flag=True,
              help="also process each closed segment of a run still being written")  # fmt: skip
@click.option("--settle", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="seconds without a change after which a run without a run.info stop time "
                   "is complete")  # fmt: skip
@click.option("--poll", is_flag=True,
              help="poll the folder instead of file-system events (network file systems)")  # fmt: skip
@click.option("--interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              help="seconds between scans when no event comes")  # fmt: skip
@click.option("--recheck", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="seconds after which runs already done are listed again (at once on an event)")  # fmt: skip
@click.option("--idle-exit", type=click.FloatRange(min=0), default=None,
              help="exit once every run is done and nothing happened for this many seconds")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="complete runs processed at once (default: cores)")  # fmt: skip
@click.option("--executor", type=click.Choice(["thread", "process", "dask"]), default="thread",
              show_default=True)  # fmt: skip
@CACHE_OPTION
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="plugin options as TOML or JSON, e.g. [peaks] threshold = 20.0")  # fmt: skip
@SET_OPTION
@ADAPTER_OPTION
@click.option("--dashboard", "dashboard", is_flag=False, flag_value="127.0.0.1", default=None, metavar="[HOST:PORT]",
              help="serve a live page of the runs' states, spectra and trigger rates (127.0.0.1 unless "
                   "an address is given)")  # fmt: skip
def watch(data_root: Path, target: str, segments: bool, settle: float, poll: bool, interval: float,
          recheck: float, idle_exit: float | None, workers: int | None, executor: str, cache: Path | None,
          config: Path | None, adapter: str | None, dashboard: str | None) -> None:  # fmt: skip
    """Process each run of DATA_ROOT to TARGET as soon as the digitizer has finished it.

    A run is finished when CoMPASS wrote run.info with a stop time, or (without a
    run.info) when none of its files changed for --settle seconds. With --segments, each closed segment of
    a run still being written is processed too (segment k is closed once segment k+1
    exists), so results grow while the data are taken. New runs are picked up as
    they appear. Ctrl-C stops after the segment or run in hand; starting again
    continues where it stopped (what is in the cache is not computed again).

    \b
    Example:
      waveform-analysis watch DAQ --segments --settle 60 --cache cache
    """
    from ..online import Watcher

    ctx = make_context(data_root, cache, config, adapter)
    contexts: dict[str, Any] = {}
    detected: dict[str, str] = {}

    def context_for(run_id: str) -> Any:
        """As ``run`` does: one Context per recognised format (so both share cache entries)."""
        if adapter:
            return ctx
        name = detected.get(run_id)
        if name is None:
            found = run_files(data_root, run_id, None)
            if found is None:  # no files yet: the watcher says "waiting"
                return ctx
            name = detected[run_id] = found[0]
        if name not in contexts:
            contexts[name] = make_context(data_root, cache, config, name)
        return contexts[name]

    check_target(ctx, target)
    watcher = Watcher(
        ctx, target, segments=segments, settle=settle, poll=poll, interval=interval,
        recheck=recheck, workers=workers, executor=executor, context_for=context_for,
        on_update=lambda run_id, message: click.echo(f"{run_id}: {message}"),
    )  # fmt: skip
    if dashboard is not None:
        from ..online import open_watch_dashboard

        server = open_watch_dashboard(watcher, True if dashboard == "127.0.0.1" else dashboard, quiet=True)
        click.echo(f"dashboard: {server.url}")
    click.echo(f"watching {data_root} for {target} ({'segments and runs' if segments else 'runs'}); "
               f"cache: {ctx.storage_dir}; Ctrl-C to stop")  # fmt: skip
    status = watcher.run(idle_exit=idle_exit)
    rows = [
        [r, s["state"], s["reason"] or "-", str(len(s["segments"])), str(s["records"]),
         str(s["results"]), str(s["computed"]), str(s["from_cache"])]
        for r, s in status.items()
    ]  # fmt: skip
    click.echo(f"stopped ({watcher.mode}):" if watcher.stopped else f"idle ({watcher.mode}):")
    if rows:
        click.echo(table(rows, ["run", "state", "reason", "segments", "records", target,
                                "computed", "from cache"]))  # fmt: skip
