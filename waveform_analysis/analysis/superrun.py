"""Many runs as one: a data type over a list (or glob) of runs, selected run by run.

Each run is loaded (or computed) through a clone of the Context (same config,
plugins and cache folder, its own memory), cut by the selection and ranges a chunk of
rows at a time, and let go before the next, so the memory held is one run's data plus
the rows kept, never all runs unselected; what the caller's Context holds is left as
it was. Each row gets a ``run_id``. Runs are read one after the other; the Context's
``get_array`` / ``get_df`` / ``export`` first hand the runs :func:`missing_runs` names
to its runner, which computes them in one batch (:mod:`waveform_analysis.core.manyruns`).
This module uses only the Context's public methods, so the Context can delegate to it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from ..errors import ConfigError, RunNotFoundError
from .selection import Selection, apply_selection

__all__ = ["expand_runs", "get_array", "iter_selected", "missing_runs", "run_start_ns", "selected_rows",
           "with_run_id"]

_GLOB = set("*?[")


def expand_runs(context: Any, runs: str | Iterable[str]) -> list[str]:
    """Run names from a name, a glob (``"run_0*"``, matched against the folders of
    ``data_root`` and the runs in the cache) or a list of either; order kept, no repeats."""
    items = [runs] if isinstance(runs, str) else list(runs)
    out: list[str] = []
    known: list[str] | None = None
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"a run is named by a string, got {item!r}")
        if _GLOB & set(item):
            if known is None:
                known = sorted({p.name for root in (context.data_root, context.storage_dir)
                                if root.is_dir() for p in root.iterdir()
                                if p.is_dir() and not p.name.startswith(".")})
            matched = fnmatch.filter(known, item)
            if not matched:
                raise RunNotFoundError(
                    f"no run matches {item!r} in {context.data_root} or the cache {context.storage_dir}"
                )
            out.extend(matched)
        else:
            out.append(item)
    return list(dict.fromkeys(out))


def missing_runs(context: Any, runs: str | Iterable[str], name: str) -> list[str]:
    """The runs (names or globs) whose ``name`` is not in ``context``'s cache. A run whose
    state cannot be told (a broken run) is left out: it raises its own error when read."""
    out = []
    for run_id in expand_runs(context, runs):
        try:
            if not context.is_cached(run_id, name):
                out.append(run_id)
        except Exception:  # noqa: BLE001 - reading the run raises the error with its context
            pass
    return out


def with_run_id(dtype: np.dtype, width: int, names: Iterable[str] | None = None) -> np.dtype:
    """``dtype`` (titles kept; only ``names`` when given) plus a ``run_id`` string field of
    ``width`` characters."""
    if not dtype.names:
        raise ConfigError(f"data of dtype {dtype} has no named fields; many runs need a structured array")
    if "run_id" in dtype.names:
        raise ConfigError("the data already has a 'run_id' field")
    fields = []
    for name in dtype.names if names is None else names:
        kind, _, *title = dtype.fields[name]
        fields.append(((title[0], name) if title else name, kind))
    fields.append((("Run the row comes from", "run_id"), f"U{max(1, width)}"))
    return np.dtype(fields)


def run_start_ns(context: Any, run_id: str) -> int:
    """Where ``run_id``'s ``time`` starts: the run's start since the Unix epoch when the files
    state it (``time`` then counts from the epoch), else 0."""
    info = getattr(context, "run_info", None)
    return int(info(run_id).get("time_offset_ns") or 0) if info is not None else 0


def iter_selected(
    context: Any,
    runs: str | Iterable[str],
    name: str,
    selection: Selection = None,
    time_range: tuple[float, float] | None = None,
    seconds_range: tuple[float, float] | None = None,
) -> Iterator[tuple[str, np.ndarray]]:
    """``(run_id, selected rows)`` pieces, run after run and, inside a run, a chunk of rows
    (``chunk_mb`` of the Context) at a time. A piece may be a view of the run's memory map:
    copy what you keep. Runs are read through a clone of ``context``, which lets each
    run's data go (the disk cache stays) before the next run is loaded."""
    run_list = expand_runs(context, runs)
    if not run_list:
        raise ConfigError("no runs given")
    reader = context.clone()
    for run_id in run_list:
        data = reader.get_data(run_id, name)
        start_ns = run_start_ns(reader, run_id) if seconds_range is not None else 0
        step = max(1, reader.chunk_bytes // max(1, data.dtype.itemsize))
        for start in range(0, max(len(data), 1), step):
            rows = data[start : start + step]
            yield run_id, apply_selection(rows, selection, time_range=time_range,
                                          seconds_range=seconds_range, run_start_ns=start_ns)
            del rows
        del data
        reader.release(run_id)


def get_array(
    context: Any,
    runs: str | Iterable[str],
    name: str,
    selection: Selection = None,
    time_range: tuple[float, float] | None = None,
    seconds_range: tuple[float, float] | None = None,
    fields: Iterable[str] | None = None,
) -> np.ndarray:
    """``name`` over ``runs`` as one structured array with a ``run_id`` field (see the module);
    ``fields``: only these columns (after the selection, which sees them all), so that the rows
    kept over many runs are as small as what they are for."""
    run_list = expand_runs(context, runs)
    width = max((len(r) for r in run_list), default=1)
    parts = []
    first = dtype = names = None
    for run_id, kept in iter_selected(context, run_list, name, selection, time_range, seconds_range):
        if dtype is None:
            first, names = kept.dtype, _columns(kept.dtype, fields, name)
            dtype = with_run_id(kept.dtype, width, names)
        elif kept.dtype != first:
            raise ConfigError(
                f"{name!r} of run {run_id!r} has the layout {kept.dtype}, unlike the runs before it "
                f"({first}; e.g. another record length); such runs cannot be joined in one array"
            )
        part = np.empty(len(kept), dtype)
        for field in names:
            part[field] = kept[field]
        part["run_id"] = run_id
        parts.append(part)
        del kept
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _columns(dtype: np.dtype, fields: Iterable[str] | None, name: str) -> tuple[str, ...]:
    """The fields of ``dtype`` to keep (``run_id`` is always added); an unknown one is a
    ConfigError naming it and the closest field."""
    if fields is None:
        return dtype.names
    import difflib

    wanted = [f for f in dict.fromkeys(fields) if f != "run_id"]
    for f in wanted:
        if f not in dtype.names:
            close = difflib.get_close_matches(f, dtype.names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{name!r} has no field {f!r}{hint} (fields: {', '.join(dtype.names)})")
    return tuple(wanted)


def selected_rows(
    context: Any,
    runs: str | Iterable[str],
    name: str,
    selection: Selection = None,
    time_range: tuple[float, float] | None = None,
    seconds_range: tuple[float, float] | None = None,
    fields: Iterable[str] | None = None,
) -> np.ndarray:
    """What ``ctx.get_df`` shows: one run's selected data as ``get_data`` has it (a run
    name), or :func:`get_array` with ``run_id`` (a list or a glob) and only ``fields``."""
    if isinstance(runs, str) and not _GLOB & set(runs):
        start_ns = run_start_ns(context, runs) if seconds_range is not None else 0
        return apply_selection(context.get_data(runs, name), selection, time_range=time_range,
                               seconds_range=seconds_range, run_start_ns=start_ns)
    return get_array(context, runs, name, selection, time_range, seconds_range, fields)
