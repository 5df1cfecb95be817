"""Many runs as one: a data type over a list (or glob) of runs, selected run by run.

Runs not yet in the cache are first computed together by a :class:`BatchProcessor`
(so run 2 is read while run 1 is processed); then each run is loaded, cut by the
selection and ranges, and let go before the next, so the memory held is one run's
data plus the rows kept, never all runs unselected. Each row gets a ``run_id``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from ..errors import ConfigError, RunNotFoundError
from .selection import Selection, apply_selection

__all__ = ["expand_runs", "get_array", "get_df", "iter_selected", "with_run_id"]

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


def with_run_id(dtype: np.dtype, width: int) -> np.dtype:
    """``dtype`` (titles kept) plus a ``run_id`` string field of ``width`` characters."""
    if not dtype.names:
        raise ConfigError(f"data of dtype {dtype} has no named fields; many runs need a structured array")
    if "run_id" in dtype.names:
        raise ConfigError("the data already has a 'run_id' field")
    fields = []
    for name in dtype.names:
        kind, _, *title = dtype.fields[name]
        fields.append(((title[0], name) if title else name, kind))
    fields.append((("Run the row comes from", "run_id"), f"U{max(1, width)}"))
    return np.dtype(fields)


def _compute_missing(context: Any, runs: list[str], name: str) -> None:
    """Compute, in one batch, the runs whose ``name`` is not cached yet (errors come later, per run)."""
    if context.readonly or len(runs) < 2:
        return
    missing = [r for r in runs if not _cached(context, r, name)]
    if len(missing) > 1:
        from ..core.data.batch_processor import BatchProcessor

        BatchProcessor(context).process_runs(missing, name, show_progress=False)
        for r in missing:
            context.release(r)


def _cached(context: Any, run_id: str, name: str) -> bool:
    try:
        return context.is_cached(run_id, name)
    except Exception:  # noqa: BLE001 - a broken run raises its own error when it is loaded
        return True


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
    copy what you keep. A run's data is released from this Context's memory (the disk
    cache stays) before the next run is loaded."""
    run_list = expand_runs(context, runs)
    if not run_list:
        raise ConfigError("no runs given")
    _compute_missing(context, run_list, name)
    for run_id in run_list:
        held = run_id in context._memory  # noqa: SLF001 - keep what the caller already holds
        data = context.get_data(run_id, name)
        step = max(1, context.chunk_bytes // max(1, data.dtype.itemsize))
        for start in range(0, max(len(data), 1), step):
            rows = data[start : start + step]
            yield run_id, apply_selection(rows, selection, time_range=time_range, seconds_range=seconds_range)
            del rows
        del data
        if not held:
            context.release(run_id)


def get_array(
    context: Any,
    runs: str | Iterable[str],
    name: str,
    selection: Selection = None,
    time_range: tuple[float, float] | None = None,
    seconds_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """``name`` over ``runs`` as one structured array with a ``run_id`` field (see the module)."""
    run_list = expand_runs(context, runs)
    width = max((len(r) for r in run_list), default=1)
    parts = []
    dtype = None
    for run_id, kept in iter_selected(context, run_list, name, selection, time_range, seconds_range):
        if dtype is None:
            dtype = with_run_id(kept.dtype, width)
        elif kept.dtype.names != dtype.names[:-1]:
            raise ConfigError(
                f"{name!r} of run {run_id!r} has fields {kept.dtype.names}, unlike the runs before "
                f"it ({dtype.names[:-1]}); such runs cannot be joined"
            )
        part = np.empty(len(kept), dtype)
        for field in kept.dtype.names:
            part[field] = kept[field]
        part["run_id"] = run_id
        parts.append(part)
        del kept
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def get_df(
    context: Any,
    runs: str | Iterable[str],
    name: str,
    columns: list[str] | None = None,
    selection: Selection = None,
    time_range: tuple[float, float] | None = None,
    seconds_range: tuple[float, float] | None = None,
) -> Any:
    """A DataFrame of one run (a run name: no ``run_id`` column, as ``get_data``) or of
    many (a list or a glob: :func:`get_array`, with ``run_id``)."""
    from ..core.catalog import to_frame

    if isinstance(runs, str) and not _GLOB & set(runs):
        data = apply_selection(context.get_data(runs, name), selection,
                               time_range=time_range, seconds_range=seconds_range)
        return to_frame(data, f"{name!r} of run {runs!r}", columns)
    data = get_array(context, runs, name, selection, time_range, seconds_range)
    return to_frame(data, f"{name!r} of runs {runs!r}", columns)
