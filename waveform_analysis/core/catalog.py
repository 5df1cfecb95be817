"""What a Context can tell about its data: runs found, fields of a data type, plugin options.

Behind ``Context.list_runs()``, ``Context.data_info(name)`` and
``Context.show_config(name)``. Each returns an :class:`InfoTable`: a list of
dicts (one per row) that prints as an aligned text table. ``Context.get_df``
(``get_df`` here) gives a run's data as a pandas DataFrame.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import numpy as np

from ..errors import NoDataError, RunNotFoundError

__all__ = ["InfoTable", "data_info", "get_df", "list_runs", "show_config"]

_UNIT = re.compile(r"\s*\[([^\]]+)\]\s*$")


class InfoTable(list):
    """Rows as dicts; ``print()`` shows them as a table."""

    def __init__(self, rows: list[dict[str, Any]], title: str = "") -> None:
        super().__init__(rows)
        self.title = title

    def __str__(self) -> str:
        if not self:
            return f"{self.title}\n(none)" if self.title else "(none)"
        cols = list(self[0])
        cells = [[str(r.get(c, "")) for c in cols] for r in self]
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
        line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()  # noqa: E731
        out = [self.title] if self.title else []
        out += [line(cols), line(["-" * w for w in widths]), *map(line, cells)]
        return "\n".join(out)

    __repr__ = __str__


def list_runs(context: Any) -> InfoTable:
    """Runs under ``data_root`` that the configured adapter reads: layout, files, size, cache."""
    from ..daq.runs import adapter_for

    root = context.data_root
    rows = []
    for p in sorted(root.iterdir()) if root.is_dir() else []:
        if not p.is_dir() or p.name.startswith("."):
            continue
        try:
            adapter = adapter_for(context, p.name)
            name = adapter.name
            files = adapter.list_files(root, p.name)
        except (RunNotFoundError, NoDataError):
            continue
        folders = sorted({str(f).split("/")[1] for f in files["path"] if str(f).count("/") >= 2})
        size = sum((root / str(f)).stat().st_size for f in files["path"])
        cached = sorted({str(e.get("data_name")) for e in context.storage.entries(p.name)})
        rows.append({
            "run_id": p.name,
            "adapter": name,
            "folder": ",".join(folders) or ".",
            "files": len(files),
            "channels": len(np.unique(files["channel"])),
            "size_mb": round(size / 1e6, 2),
            "cached": ",".join(cached),
        })
    return InfoTable(rows, f"runs in {root}")


def data_info(context: Any, data_name: str, run_id: str | None = None) -> InfoTable:
    """Fields of ``data_name``: name, numpy type, unit and description (from the field titles).

    The layout comes from the plugin's ``dtype`` declaration, or (with
    ``run_id``) the data of that run.
    """
    plugin = context._plugin(data_name)
    dtype = plugin.dtype
    if run_id is not None:
        dtype = np.asarray(context.get_data(run_id, data_name)).dtype
    if dtype is None:
        raise ValueError(
            f"the layout of {data_name!r} is known only from its data: pass a run_id, "
            f"e.g. ctx.data_info({data_name!r}, 'run_001')"
        )
    dtype = np.dtype(dtype)
    rows = []
    for field in dtype.names or ():
        ftype, _, *title = dtype.fields[field]
        text = str(title[0]) if title else ""
        m = _UNIT.search(text)
        shape = "" if not ftype.shape else f" x {ftype.shape[0] if len(ftype.shape) == 1 else ftype.shape}"
        rows.append({
            "field": field,
            "type": f"{ftype.base}{shape}" if data_name != "st_waveforms" or field != "wave"
            else f"{ftype.base} x n_samples",
            "unit": m.group(1) if m else "",
            "help": _UNIT.sub("", text),
        })
    head = f"{data_name}: {type(plugin).__name__} v{plugin.version}, depends on {', '.join(plugin.depends_on) or 'nothing'}"
    return InfoTable(rows, head)


def show_config(context: Any, data_name: str | None = None, run_id: str | None = None) -> InfoTable:
    """Options of one plugin (or all): default, current value, whether it enters the key, help.

    A per-channel option has one row per channel the ``channels`` table names and
    one (channel ``*``) for every other channel, each with where its value comes
    from (:func:`~waveform_analysis.core.channels.resolve_channel`); with
    ``run_id``, the run's settings take part, and the channels they set apart get rows."""
    from .channels import resolve_channel, table_of
    from .config import resolve_options

    info = None
    if run_id is not None:
        from ..daq.runs import run_info_for

        info = run_info_for(context, run_id)[1]
    named = {c for c in table_of(context.config) if c != "default"}
    boards = getattr(info, "boards", None) or {}
    if boards:  # several boards: each one's channel overrides, by the records' board
        named |= {(int(b), int(c)) for b, e in boards.items() for c in e.get("channels", {})}
    else:
        named |= {(0, int(c)) for c in getattr(info, "channels", None) or {}}  # the settings' own
    channels = [("*", (-1, -1))] + [(f"{k[0]}:{k[1]}", k) for k in sorted(named)]
    names = [data_name] if data_name is not None else list(context.plugins)
    rows = []
    for name in names:
        plugin = context._plugin(name)
        current = resolve_options(context.config, plugin)
        for opt, spec in plugin.options.items():
            if spec.per_channel:
                values = [(ch, *resolve_channel(context.config, plugin, opt, *key, info))
                          for ch, key in channels]
            else:
                values = [("", current[opt], "config" if current[opt] != spec.default else "default")]
            for channel, value, source in values:
                rows.append({
                    "plugin": name,
                    "option": opt,
                    "channel": channel,
                    "default": repr(spec.default),
                    "current": repr(value) + ("" if value == spec.default else " *"),
                    "source": source,
                    "help": spec.help + ("" if spec.track else " (not in the cache key)"),
                })
    return InfoTable(rows, "options (* = changed from the default; channel * = every channel not named)")


def get_df(context: Any, run_id: str, data_name: str, columns: list[str] | None = None) -> Any:
    """``get_data(run_id, data_name)`` as a pandas DataFrame, one row per record (see :func:`to_frame`)."""
    return to_frame(context.get_data(run_id, data_name), f"{data_name!r} of run {run_id!r}", columns)


def to_frame(data: Any, what: str, columns: list[str] | None = None) -> Any:
    """A structured array as a pandas DataFrame, one row per record.

    Scalar fields become columns (copied out of the cache file). A field with a
    shape per record (``wave`` of ``st_waveforms``) becomes a column holding one
    read-only numpy array per row, a view of the cached data (its first
    ``length`` samples are the valid ones); leave it out with ``columns=`` when
    you do not need it. The units of the fields are in ``df.attrs["units"]``.
    Needs the optional ``pandas`` extra.
    """
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError(
            "ctx.get_df needs pandas, an optional extra: pip install 'celestialflow[pandas]' "
            "(or pip install pandas)"
        ) from exc
    names = getattr(getattr(data, "dtype", None), "names", None)
    if not names:
        raise TypeError(
            f"{what} is not a structured array "
            f"({type(data).__name__}); get_df needs named fields, use ctx.get_data instead"
        )
    wanted = list(names) if columns is None else list(columns)
    for col in wanted:
        if col not in names:
            close = difflib.get_close_matches(col, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{what} has no field {col!r}{hint}; its fields: {', '.join(names)}")
    frame: dict[str, Any] = {}
    units: dict[str, str] = {}
    for col in wanted:
        values = data[col]
        frame[col] = list(values) if values.ndim > 1 else np.array(values)
        title = data.dtype.fields[col][2:]
        m = _UNIT.search(str(title[0])) if title else None
        units[col] = m.group(1) if m else ""
    df = pd.DataFrame(frame, columns=wanted)
    df.attrs["units"] = units
    return df
