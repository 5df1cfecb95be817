"""CAEN CoMPASS CSV reader, with or without waveforms (every board CoMPASS drives).

Layouts (see docs/formats.md): CoMPASS 2.x ``<run>/RAW/DataR_CH<ch>@<model>_<serial>_<run>[_<seg>].CSV``,
CoMPASS 1.x ``<run>/UNFILTERED/<ch>@<model> #<a>-<b>-<serial>_Data_<run>.csv``, and any
``*CH<ch>*_<seg>.CSV``; which files belong to the run is decided in
:mod:`.files`. ``;``-separated columns named by the header line
(:mod:`.columns`); files without a header take the columns of the
first segment of their (board, channel), else the CoMPASS default. TIMETAG is
in ps, FLAGS hex (``0x4000``) or decimal; ENERGY and ENERGYSHORT are kept. The
sample period comes from the run (:class:`~waveform_analysis.daq.base.RunInfo`).
Without a SAMPLES column the files are list mode and give ``TRIGGERS_DTYPE`` rows.

The parser is a numba kernel over the raw bytes: no Python object per value.
Memory is bounded: a first pass reads the files in blocks and counts their
lines, so the output is allocated once at its final size; a second pass reads
the blocks again, cut at line starts, and parses each into its rows. At most
one block per thread is in memory (``READ_BUDGET`` bytes in all).
A last line without a line end is kept when it is whole (all its columns, its
last field as long as the line before's, give or take a digit: a trimmed file)
and dropped with a warning naming the file and line when it is cut (a file
being written).
The kernels live in :mod:`.csv_kernels`, imported on the first read, so that
listing files does not import numba.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from loguru import logger

from ...dtypes import TRIGGERS_DTYPE, st_waveforms_dtype
from ...errors import NoDataError
from ...parallel import n_threads, thread_map
from ..base import RunInfo
from ..blocks import BufferPool as _BufferPool
from ..blocks import RecordPool as _RecordPool
from ..blocks import listed_sizes
from ..blocks import open_listed as _open
from ..blocks import read_exact as _read_exact
from .csv_files import (
    CsvFile,
    assign_columns,
    check_lengths,
    check_modes,
    line_text,
    plan_file,
    scan_range,
)
from .layout import ERR_NOT_NUMERIC, ERR_OK

CHUNK_BYTES = 16 << 20  # block of a file read and parsed as one unit (cut at line starts)
READ_BUDGET = 32 << 20  # bytes of read blocks in memory at once, over all threads
MIN_BLOCK_BYTES = 256  # floor of the block size (tests force tiny blocks)

_NL = 10


def _kernels():
    """The numba kernels (imported, and loaded from numba's cache, on first use)."""
    from . import csv_kernels

    return csv_kernels


def csv_run_info(info: RunInfo, data_root: Path, files: np.ndarray, run_id: str) -> dict[int, int]:
    """What the files' headers and first lines say: version, waveforms or list mode, energies,
    record length (the first file of each channel is checked against its header). Returns
    ``{records' board: files' board}`` of each file's first record, in file order."""
    seen = set()
    csvs = []
    for f in files:  # the first file of each (board, channel), as the run lists them
        key = (int(f["board"]), int(f["channel"]))
        if key not in seen:
            seen.add(key)
            rel = str(f["path"])
            csvs.append(CsvFile(run_id, rel, Path(data_root) / rel, *key, int(f["segment"])))
    assign_columns(csvs)
    check_modes(run_id, [f for f in csvs if f.ncols])
    f = next((f for f in csvs if f.ncols), csvs[0])
    cols = f.columns
    where = f"file {Path(f.rel).name}"
    header = f"header of {Path(f.rel).name}" if f.columns is not None else "CoMPASS default header"
    info.set("version", "2.x" if cols.board >= 0 else "1.x", header)
    info.set("has_waveforms", cols.has_samples, header)
    info.energy_fields = cols.energy_fields
    if "energy_calibrated" in cols.energy_fields:
        info.sources["energy_calibrated"] = "files"
    if cols.has_samples and f.ncols:
        info.set("record_length", f.ncols - cols.n_fixed, f"{where}, first record")
    boards: dict[int, int] = {}
    for f in csvs:
        if f.ncols:
            boards.setdefault(f.first_board(), f.board)
    return boards


def read_csv(data_root: Path, files: np.ndarray, run_id: str, sink, info: RunInfo) -> None:
    """Put the records (or, in list mode, trigger rows) of the CSV ``files`` into ``sink``."""
    data_root = Path(data_root)
    if len(files) == 0:
        raise NoDataError(f"run {run_id!r}: no files to read")
    k = _kernels()
    order = np.lexsort((files["segment"], files["channel"], files["board"]))
    files = files[order]
    specs = [
        (str(f["path"]), int(f["board"]), int(f["channel"]), int(f["segment"]), size)
        for f, size in zip(files, listed_sizes(files), strict=True)
    ]
    csvs: list[CsvFile] = thread_map(
        lambda s: CsvFile(run_id, s[0], data_root / s[0], s[1], s[2], s[3], s[4]), specs
    )
    assign_columns(csvs)
    check_lengths(run_id, csvs)
    for f in csvs:
        if f.ncols == 0 and not f.partial_line and not f.cut:  # cut: being written, or lends a header
            logger.warning(f"run {run_id!r}: file {f.rel}: {f.no_records()}; no records read")
    if not any(f.ncols for f in csvs):
        shown = "; ".join(f"{f.rel}: {f.no_records()}" for f in csvs[:5])
        more = f"; and {len(csvs) - 5} more" if len(csvs) > 5 else ""
        raise NoDataError(f"run {run_id!r}: the CSV files hold no records ({shown}{more})")
    csvs = [f for f in csvs if f.ncols]
    check_modes(run_id, csvs)
    nt = n_threads()
    total_bytes = sum(f.size - f.data_start for f in csvs)
    # bounded memory: at most one block per thread is in memory at a time
    target = min(
        CHUNK_BYTES,
        max(1 << 20, READ_BUDGET // nt),
        max(1 << 20, total_bytes // (2 * nt) + 1),
    )
    target = max(MIN_BLOCK_BYTES, target)
    pool = _BufferPool()
    # first pass: newlines per piece, to size the output once and cut blocks at lines
    pieces = [(f, f.ranges(target)) for f in csvs]
    items = [(f, a, b, i == 0) for f, rs in pieces for i, (a, b) in enumerate(rs)]
    scans = thread_map(lambda it: scan_range(it, pool), items)
    plan = []  # (file, start, end, first row, rows, first line number)
    row = 0
    i = 0
    for f, rs in pieces:
        for s, e, rows, before in plan_file(f, rs, scans[i : i + len(rs)]):
            plan.append((f, s, e, row, rows, f.header_lines + 1 + before))
            row += rows
        i += len(rs)
    n_rows = row
    if n_rows == 0:
        raise NoDataError(f"run {run_id!r}: the CSV files hold no records")
    has_samples = csvs[0].columns.has_samples
    n_samples = max(f.ncols - f.columns.n_fixed for f in csvs)
    dtype = st_waveforms_dtype(n_samples) if has_samples else TRIGGERS_DTYPE
    sink.begin(n_rows, dtype)
    t0 = int(info.time_offset_ns)
    records = _RecordPool(dtype)

    def parse(p):
        """Parse one block into its own records and hand the parsed ones to the sink."""
        f, a, b, row0, rows, first_line = p
        n = b - a
        buf = pool.take(n + 1)
        out = records.take_for(sink, row0, rows)  # the staging's own rows: no copy on put
        wave = out["wave"] if has_samples else np.zeros((rows, 0), np.int16)
        try:
            with _open(f.run_id, f.rel, f.full) as fh:
                if _read_exact(fh, buf, a, n) != n:
                    f.changed()
            buf[n] = _NL  # sentinel: the digit loops need no bound check
            if b == f.size and f.partial_line and not f.keep_last:
                end = int(k._last_newline(buf, n))  # drop the cut last line
            else:
                end = n if buf[n - 1] == _NL else n + 1
            code, line, col, got = k._parse_rows(
                buf[: n + 1], 0, end, f.ncols, *f.columns.kernel_args(),
                out["board"], out["channel"], out["timestamp"], out["flags"], out["energy"],
                out["energy_short"], out["energy_calibrated"], wave, 0, rows,
            )
            text = line_text(buf, end, int(line)) if code == ERR_NOT_NUMERIC else b""
        finally:
            pool.give(buf)
        code, got = int(code), int(got)
        if code == ERR_OK:
            out = out[:got]  # blank lines leave rows unset at the end: those are dropped
            if f.columns.board < 0:
                out["board"] = f.board
            if f.columns.channel < 0:
                out["channel"] = f.channel
            if has_samples:
                out["length"] = f.ncols - f.columns.n_fixed
                out["dt"] = info.per_row("dt_ns", out["board"])
            out["time"] = out["timestamp"] // 1000 + t0
            info.calibrate(out)
            info.fill_absent(out)
            sink.put(row0, out)
        records.give(out)  # (a view of) the pooled buffer goes back whole
        return code, first_line + int(line), int(col), got, text

    results = thread_map(parse, plan)
    pool.clear()
    records.clear()
    kept = 0
    for p, (code, line, col, got, text) in zip(plan, results, strict=True):
        if code != ERR_OK:
            p[0].fail(code, line, col, text)
        kept += got
    if kept == 0:
        raise NoDataError(f"run {run_id!r}: the CSV files hold no records")
