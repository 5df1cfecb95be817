"""Helpers of the command line: finding runs and adapters, contexts from options, tables."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

import click

from ..errors import NoDataError, RunNotFoundError

TARGET_HELP = "data name to compute (peaks, basic_features, events, st_waveforms)"


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("celestialflow")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def suggest(
    word: str, known: list[str], what: str, param: str, where: str = ""
) -> click.BadParameter:
    """A usage error for an unknown name, with the closest known one (difflib)."""
    close = difflib.get_close_matches(word, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return click.BadParameter(
        f"unknown {what} {word!r}{where}{hint} (known: {', '.join(sorted(known))})",
        param_hint=param,
    )


# -- runs, adapters, contexts -------------------------------------------------------------


def adapter_names() -> list[str]:
    from ..daq import available_adapters

    return available_adapters()


def run_files(data_root: Path, run: str, adapter: str | None) -> tuple[str, Any] | None:
    """``(adapter name, file table)`` of ``run``: its format recognised unless an adapter is named."""
    from ..daq import AUTO, detect_adapter, get_adapter

    try:
        if adapter and adapter != AUTO:
            found = get_adapter(adapter)
        else:
            found = detect_adapter(data_root, run)[0]
        return found.name, found.list_files(data_root, run)
    except (RunNotFoundError, NoDataError, FileNotFoundError, NotADirectoryError):
        return None


def run_format(data_root: Path, run: str) -> str:
    """How the run's format was recognised (``"CoMPASS 2.x BIN in RAW"``), or "" if it was not."""
    from ..daq import detect_adapter

    try:
        return detect_adapter(data_root, run)[1]
    except (RunNotFoundError, NoDataError):
        return ""


def find_runs(data_root: Path, adapter: str | None) -> dict[str, tuple[str, Any]]:
    """Every sub-folder of ``data_root`` that an adapter lists files for, by name."""
    out = {}
    for p in sorted(data_root.iterdir()):
        if p.is_dir() and not p.name.startswith("."):
            found = run_files(data_root, p.name, adapter)
            if found is not None:
                out[p.name] = found
    return out


DATA_SUFFIXES = {".bin", ".csv", ".dat", ".raw", ".txt"}


def no_runs_message(data_root: Path, adapter: str | None) -> str:
    """Why ``data_root`` holds no run, with what the user most likely meant: DATA_ROOT is the
    folder *holding* run folders, so a run folder given as DATA_ROOT is named as such, and
    data files whose names no format matches are listed."""
    from ..daq import get_adapter

    looked = "; ".join(f"{n}: {get_adapter(n).looks_for}" for n in adapter_names()
                       if get_adapter(n).looks_for)
    head = f"no runs found in {data_root}"
    tail = f" (a run is a sub-folder the DAQ adapter reads; formats looked for: {looked})"
    parent = data_root.resolve().parent
    if data_root.is_dir() and run_files(parent, data_root.resolve().name, adapter) is not None:
        return (f"{head}: it is itself a run. DATA_ROOT is the folder that holds the runs: "
                f"pass {parent} and the run {data_root.resolve().name!r}")
    unread = sorted(p.relative_to(data_root).as_posix()
                    for p in [*data_root.glob("*/*/*"), *data_root.glob("*/*")]
                    if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)
    unread += sorted(p.name for p in data_root.glob("*")
                     if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)
    if unread:
        shown = ", ".join(unread[:5]) + (f" and {len(unread) - 5} more" if len(unread) > 5 else "")
        head += f"; data files whose names no format matches: {shown} (docs/formats.md gives each format's names)"
    return head + tail


def load_config(path: Path | None) -> dict[str, Any]:
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


def _store_settings(ctx: click.Context, param: click.Parameter, items: tuple[str, ...]) -> None:
    ctx.meta["wa_set"] = parse_settings(items)


def parse_settings(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` options as a config dict: ``dt_ns=2`` (a run-level option),
    ``peaks.threshold=20`` (one plugin's); values are TOML literals (``20``, ``true``,
    ``[0.0, 0.3, 0.0]``, ``"x"``), anything else a string."""
    import tomllib

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise click.BadParameter(f"expected KEY=VALUE or PLUGIN.KEY=VALUE, got {item!r}",
                                     param_hint="--set")
        try:
            parsed = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value.strip()
        *path, last = key.split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise click.BadParameter(f"{key}: {part} is also set as a value", param_hint="--set")
        node[last] = parsed
    return out


SET_OPTION = click.option(
    "--set", "settings", multiple=True, metavar="KEY=VALUE", expose_value=False, callback=_store_settings,
    help="an option, repeatable, over --config's: --set dt_ns=2 --set peaks.threshold=20 "
         "--set board_model=DT5730",
)


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def make_context(
    data_root: Path, cache: Path | None, config: Path | None, adapter: str | None
) -> Any:
    from .. import Context, standard_plugins
    from ..errors import ConfigError, WaveformAnalysisError

    current = click.get_current_context(silent=True)
    settings = current.meta.get("wa_set", {}) if current is not None else {}
    cfg = {"data_root": str(data_root), **_merged(load_config(config), settings)}
    if adapter:
        cfg["daq_adapter"] = adapter
    where = f"{config}: " if config is not None else ""
    try:
        ctx = Context(storage_dir=cache, config=cfg)
        ctx.register(standard_plugins())
        ctx.check_config()  # every name a plugin, an option or a setting (the Context's own check)
    except ConfigError as exc:
        raise click.UsageError(f"{where}{exc}") from None
    except WaveformAnalysisError as exc:
        raise click.UsageError(str(exc)) from None
    return ctx


def check_target(ctx: Any, target: str, param: str = "--target") -> str:
    if target not in ctx.plugins:
        raise suggest(target, list(ctx.plugins), "data name", param)
    return target


def pick_runs(
    found: dict[str, Any], runs: tuple[str, ...], all_runs: bool, data_root: Path,
    adapter: str | None = None,
) -> list[str]:
    if not found:
        raise click.UsageError(no_runs_message(data_root, adapter))
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


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain text table; columns of numbers are right-aligned."""
    cols = list(zip(header, *rows))
    widths = [max(len(str(x)) for x in col) for col in cols]
    numeric = [bool(rows) and all(_NUMBER.match(str(x)) for x in col[1:]) for col in cols]

    def fmt(r: list[str]) -> str:
        return "  ".join(
            str(x).rjust(w) if num else str(x).ljust(w) for x, w, num in zip(r, widths, numeric)
        ).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, rows)])


def size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def age(seconds: float) -> str:
    for unit, s in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= s:
            return f"{seconds / s:.0f} {unit}"
    return f"{seconds:.0f} s"


def run_bytes(data_root: Path, files: Any) -> int:
    return sum((data_root / str(p)).stat().st_size for p in files["path"])


# -- options shared by several commands -------------------------------------------------------

CACHE_OPTION = click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
                      help="cache folder (default: $WAVEFORM_ANALYSIS_STORAGE_DIR or ~/.cache/waveform_analysis)")  # fmt: skip
ADAPTER_OPTION = click.option(
    "--adapter", default=None, help="DAQ adapter (default: detected from the files)"
)
DATA_ROOT_ARG = click.argument(
    "data_root", type=click.Path(exists=True, file_okay=False, path_type=Path)
)


def waveform_plot_settings(ctx: Any, run_id: str, st: Any) -> dict:
    """The waveform plot's threshold and polarity per record, as ``peaks`` resolves them (the
    channels table, the config, the run's settings), and the gates ``basic_features`` sums.
    The threshold drawn is the level a hit starts beyond (:func:`~waveform_analysis.processing.hits.start_levels`:
    ``max(threshold, threshold_sigma x noise)``, the record's noise as ``peaks`` takes it)."""
    from ..core.channels import per_record
    from ..plugins.basic_features import record_gates
    from ..processing.hits import start_levels

    peaks = ctx.plugins["peaks"]
    out = {name: per_record(ctx, peaks, name, run_id, st) for name in ("threshold", "polarity")}
    out["threshold"] = start_levels(st, out["threshold"], ctx.get_config(peaks, "threshold_sigma"),
                                    ctx.get_config(peaks, "noise_guard"))
    out["gates"] = record_gates(ctx, run_id, st) if "basic_features" in ctx.plugins else None
    return out
