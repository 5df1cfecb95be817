"""Export a data type over runs to files other tools open: ROOT, HDF5, Parquet, CSV spectra.

The format comes from the file's suffix. Rows are written piece by piece as
:func:`~waveform_analysis.analysis.superrun.iter_selected` gives them (a chunk of a
run at a time), so a large run is never in memory at once:

* ``.root`` (uproot, LZ4-compressed baskets, which ROOT 6.14 and later read): a
  TTree named after the data type, one branch per field; a
  field with a shape per row (``wave``) is a fixed-length array branch; ``run_id``
  becomes ``run_index`` into the list of runs written beside the tree as
  ``<name>_runs`` (a ``TObjString``, one name per line). Plus each channel's
  spectrum as a histogram (``hist``) named ``spectrum_b<board>_ch<channel>``, counted in
  a second pass over the runs once the first has found its range (one histogram per
  channel in memory, never a value per row).
* ``.h5`` / ``.hdf5`` (h5py): one compound dataset named after the data type, grown
  piece by piece; each field's unit and title are attributes (``<field>.unit``,
  ``<field>.title``); strings are fixed-length bytes.
* ``.parquet`` (pyarrow): one row group per piece; array fields are fixed-size lists;
  units in the schema's field metadata (``unit``).
* ``.csv``: each channel's spectrum: board, channel, bin low edge, bin high edge, count.

Spectra are those of :mod:`waveform_analysis.analysis.spectra`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .selection import Selection
from .spectra import ENERGY_FIELDS, Spectra, fill_spectra, spectra
from .superrun import expand_runs, iter_selected, with_run_id

__all__ = ["export", "units"]

_UNIT = re.compile(r"\[([^\]]+)\]\s*$")
_SUFFIXES = {".root": "root", ".h5": "hdf5", ".hdf5": "hdf5", ".parquet": "parquet", ".csv": "csv"}


def _need(module: str) -> Any:
    """Import an optional library of the ``export`` extra, or say which extra brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"export to this format needs {module.split('.')[0]}, part of the optional extra "
            "'export': pip install 'celestialflow[export]'"
        ) from exc


def units(dtype: np.dtype) -> dict[str, tuple[str, str]]:
    """``{field: (unit, title)}`` from the field titles (``"... [ns]"``)."""
    out = {}
    for name in dtype.names or ():
        title = dtype.fields[name][2] if len(dtype.fields[name]) > 2 else ""
        m = _UNIT.search(str(title or ""))
        out[name] = (m.group(1) if m else "", str(title or ""))
    return out


def _plain(dtype: np.dtype) -> np.dtype:
    """``dtype`` without titles or padding, unicode fields as bytes (HDF5 has no UCS-4 strings)."""
    fields = []
    for name in dtype.names:
        kind = dtype.fields[name][0]
        if kind.base.kind == "U":
            kind = np.dtype((f"S{kind.base.itemsize // 4}", kind.shape))
        fields.append((name, kind))
    return np.dtype(fields)


def export(
    context: Any,
    runs: str | Iterable[str],
    name: str,
    path: str | Path,
    selection: Selection = None,
    bins: int = 1024,
    compression: str | None = "lz4",
) -> Path:
    """Write ``name`` of ``runs`` (selected) to ``path``; the suffix picks the format.

    ``compression`` of ROOT baskets: ``"lz4"`` (default), ``"zlib"`` or None."""
    path = Path(path)
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"cannot export to {path.name!r}: the suffix must be one of {', '.join(_SUFFIXES)}"
        )
    run_list = expand_runs(context, runs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    try:
        if fmt == "csv":
            field, hists = spectra(context, run_list, name, selection, bins)
            _write_csv(tmp, field, hists)
        else:
            pieces = iter_selected(context, run_list, name, selection)
            if fmt == "root":
                _write_root(tmp, name, run_list, pieces, compression,
                            lambda acc: fill_spectra(acc, context, run_list, name, selection, bins))
            else:
                {"hdf5": _write_hdf5, "parquet": _write_parquet}[fmt](tmp, name, run_list, pieces)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _write_csv(path: Path, field: str | None, hists: dict) -> None:
    if field is None:
        raise ConfigError(
            f"no spectrum to write: the data has none of the fields {', '.join(ENERGY_FIELDS)} "
            "with a finite value"
        )
    with open(path, "w") as f:
        f.write(f"# spectrum of {field}\nboard,channel,low,high,count\n")
        for (board, channel), (edges, counts) in hists.items():
            for lo, hi, c in zip(edges[:-1], edges[1:], counts):
                f.write(f"{board},{channel},{float(lo)!r},{float(hi)!r},{int(c)}\n")


def _write_root(path: Path, name: str, runs: list[str], pieces: Iterator[tuple[str, np.ndarray]],
                compression: str | None, second_pass: Callable[[Spectra], dict]) -> None:
    """The tree, piece by piece, scanning the spectra's range on the way; then the spectra,
    counted by ``second_pass`` over the runs again."""
    uproot = _need("uproot")
    hist = _need("hist")
    codecs = {"lz4": lambda: (_need("lz4"), uproot.LZ4(1))[1], "zlib": lambda: uproot.ZLIB(1), None: lambda: None}
    if compression not in codecs:
        raise ConfigError(f"compression {compression!r} is not one of 'lz4', 'zlib' or None")
    acc = Spectra()
    with uproot.recreate(path, compression=codecs[compression]()) as f:
        tree = None
        for run_id, piece in pieces:
            acc.scan(piece)
            branches = {n: np.ascontiguousarray(piece[n]) for n in piece.dtype.names}
            branches["run_index"] = np.full(len(piece), runs.index(run_id), np.int32)
            if tree is None:
                tree = f.mktree(name, {k: v.dtype if v.ndim == 1 else (v.dtype, v.shape[1:])
                                       for k, v in branches.items()})
            if len(piece):
                tree.extend(branches)
            del branches
        f[f"{name}_runs"] = "\n".join(runs)
        for (board, channel), (edges, counts) in second_pass(acc).items():
            h = hist.Hist(hist.axis.Variable(edges, name=acc.field, label=acc.field),
                          storage=hist.storage.Double())
            h.view()[:] = counts
            f[f"spectrum_b{board}_ch{channel}"] = h


def _write_hdf5(path: Path, name: str, runs: list[str], pieces: Iterator[tuple[str, np.ndarray]]) -> None:
    h5py = _need("h5py")
    width = max(len(r) for r in runs)
    with h5py.File(path, "w") as f:
        dset = None
        for run_id, rows in pieces:
            piece = np.empty(len(rows), with_run_id(rows.dtype, width))
            for field in rows.dtype.names:
                piece[field] = rows[field]
            piece["run_id"] = run_id
            plain = piece.astype(_plain(piece.dtype))
            if dset is None:
                dset = f.create_dataset(name, shape=(0,), maxshape=(None,), dtype=plain.dtype,
                                        chunks=True)
                for field, (unit, title) in units(piece.dtype).items():
                    dset.attrs[f"{field}.unit"] = unit
                    dset.attrs[f"{field}.title"] = title
                dset.attrs["runs"] = "\n".join(runs)
            n = dset.shape[0]
            dset.resize((n + len(plain),))
            dset[n:] = plain


def _write_parquet(path: Path, name: str, runs: list[str], pieces: Iterator[tuple[str, np.ndarray]]) -> None:
    pa = _need("pyarrow")
    pq = _need("pyarrow.parquet")
    writer = None
    try:
        for run_id, piece in pieces:
            columns, fields = [], []
            for field, (unit, title) in units(piece.dtype).items():
                v = piece[field]
                if v.ndim > 1:
                    col = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(v).reshape(-1)), v.shape[1])
                else:
                    col = pa.array(v)
                columns.append(col)
                fields.append(pa.field(field, col.type, metadata={"unit": unit, "title": title}))
            columns.append(pa.array(np.full(len(piece), run_id)))
            fields.append(pa.field("run_id", pa.string(), metadata={"unit": "", "title": "Run the row comes from"}))
            table = pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata={"data": name}))
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
