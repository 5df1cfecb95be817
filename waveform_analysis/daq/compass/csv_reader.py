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
from ...errors import FormatError, NoDataError
from .._threads import n_threads, thread_map
from ..base import RunInfo
from ..blocks import BufferPool as _BufferPool
from ..blocks import RecordPool as _RecordPool
from ..blocks import listed_sizes, size_to_read
from ..blocks import open_listed as _open
from ..blocks import read_exact as _read_exact
from .columns import DEFAULT_1X, DEFAULT_2X, DEFAULT_2X_LIST, Columns, header_columns
from .files import LAYOUT_COMPASS1, parse_name
from .layout import CSV_MESSAGES as _MESSAGES
from .layout import ERR_NOT_NUMERIC, ERR_OK

CHUNK_BYTES = 16 << 20  # block of a file read and parsed as one unit (cut at line starts)
READ_BUDGET = 32 << 20  # bytes of read blocks in memory at once, over all threads
MIN_BLOCK_BYTES = 256  # floor of the block size (tests force tiny blocks)
HEADER_BYTES = 64 << 10  # first read of a file, for its header and column count

_NL = 10


def _kernels():
    """The numba kernels (imported, and loaded from numba's cache, on first use)."""
    from . import csv_kernels

    return csv_kernels


class _CsvFile:
    """One CSV file: its header and first line, as read from the first bytes, and its size.

    The data lines are read later, block by block (:meth:`VX2730Adapter.read`).
    ``columns`` is None for a file without a header line (set later from its
    channel's first segment); ``partial_line`` is the number of a last line
    without a line end (0: none), dropped when the file is read.
    """

    def __init__(self, run_id: str, rel: str, full: Path, board: int, channel: int, segment: int,
                 listed: int = -1):  # fmt: skip
        self.run_id = run_id
        self.rel = rel
        self.full = full
        self.board = board
        self.channel = channel
        self.segment = segment
        info = parse_name(full.name)
        self.layout = info.layout if info else 0
        # the size raw_files recorded (and fingerprinted): bytes appended since are not read
        self.size, self.cut = size_to_read(run_id, rel, full, listed)
        self.ncols = 0
        self.partial_line = 0
        self.columns: Columns | None = None
        self.data_start, self.header_lines = self._read_header()

    def _read_header(self) -> tuple[int, int]:
        """(offset of the first data line, header lines before it); sets ``ncols`` and ``columns``.

        Reads a growing prefix until it holds the whole first data line; at the
        end of the file a newline sentinel is appended, as if the file ended with one.
        """
        k = _kernels()
        want = HEADER_BYTES
        with _open(self.run_id, self.rel, self.full) as fh:
            while True:
                n = min(want, self.size)
                buf = np.empty(n + 1, np.uint8)
                got = _read_exact(fh, buf, 0, n)
                eof = got >= self.size or got < n
                if eof:
                    self.size = got
                    ends_nl = got > 0 and buf[got - 1] == _NL
                    buf[got] = _NL
                    view = buf[: got + 1]
                else:
                    view = buf[:n]
                start, lines = k._skip_header(view)
                start, lines = int(start), int(lines)
                if start < view.size:
                    line_end = int(k._next_line(view, start + 1))
                    if eof or line_end < view.size or view[-1] == _NL:
                        self._header(view[:start].tobytes(), lines)
                        self._check_delimiter(view[start:line_end].tobytes(), lines + 1)
                        if eof and not ends_nl and line_end >= view.size:
                            self.partial_line = lines + 1  # the only data line has no line end
                        self.ncols = int(k._count_columns(view, start))
                        return start, lines
                elif eof:
                    self._header(view[:start].tobytes(), lines)
                    return self.size, lines
                want *= 4

    def _header(self, text: bytes, lines: int) -> None:
        try:
            self.columns, comma = header_columns(text.decode("latin-1"))
        except ValueError as exc:
            raise FormatError(f"run {self.run_id!r}: file {self.rel}, line {lines}: {exc}") from None
        if comma:
            self._comma(lines)

    def _check_delimiter(self, line: bytes, line_no: int) -> None:
        if b";" not in line and b"," in line:
            self._comma(line_no)

    def _comma(self, line_no: int) -> None:
        raise FormatError(
            f"run {self.run_id!r}: file {self.rel}, line {line_no}: wrong delimiter: the line is "
            "comma-separated; CoMPASS CSV files are read with ';' as the delimiter "
            "(set ';' as the CSV separator in CoMPASS)"
        )

    def no_records(self) -> str:
        """Why a file without a data line has none (for warnings and errors)."""
        if self.partial_line:
            return f"its only data line (line {self.partial_line}) has no line end"
        if self.size == 0:
            return "the file is empty"
        if self.columns is not None:
            return "header only"
        return "no data lines"

    def check_columns(self) -> None:
        """The first data line has room for the header's fixed columns and at least one sample
        (in list mode: exactly the header's columns)."""
        cols = self.columns
        if self.ncols and not cols.has_samples and self.ncols != cols.n_fixed:
            if self.partial_line == self.header_lines + 1:  # the only line, cut
                self.drop_cut_line(f"{self.ncols} of {cols.n_fixed} columns")
                return
            raise FormatError(
                f"run {self.run_id!r}: file {self.rel}, line {self.header_lines + 1}: "
                f"{self.ncols} fields, but the header {cols.header()} names {cols.n_fixed} "
                "columns (list mode: no SAMPLES column)"
            )
        if self.ncols and self.ncols < cols.n_fixed + 1 and cols.has_samples:
            raise FormatError(
                f"run {self.run_id!r}: file {self.rel}, line {self.header_lines + 1}: "
                f"{self.ncols} fields, but the header {cols.header()} names {cols.n_fixed} "
                "columns before SAMPLES (truncated line or wrong header)"
            )

    def fail(self, code: int, line_no: int, col: int, text: bytes = b"") -> None:
        """Raise the FormatError of a kernel error ``code`` at ``line_no`` (``text``: the line)."""
        what = _MESSAGES[code].format(ncols=self.ncols, col=col)
        upper = text.upper()
        if code == ERR_NOT_NUMERIC and col == 0 and (b"TIMETAG" in upper or b"SAMPLES" in upper):
            what = (
                "a header line inside the data (files joined, or a writer restarted into "
                "the same file?)"
            )
        elif code == ERR_NOT_NUMERIC and text:
            fields = text.rstrip(b"\r").split(b";")
            if col < len(fields):
                what += f": {fields[col][:24].decode('latin-1')!r}"
        raise FormatError(f"run {self.run_id!r}: file {self.rel}, line {line_no}: {what}")

    def drop_cut_line(self, why: str) -> None:
        """The file's only data line has no line end and is cut: the file gives no record."""
        _warn_cut(self.run_id, self, why)
        self.ncols = 0

    def changed(self) -> None:
        raise FormatError(f"run {self.run_id!r}: file {self.rel} changed while being read")

    def ranges(self, target: int) -> list[tuple[int, int]]:
        """The data bytes cut in pieces of ``target`` bytes (not at line boundaries)."""
        return [
            (a, min(a + target, self.size)) for a in range(self.data_start, self.size, target)
        ]


def _scan_range(item, pool: _BufferPool):
    """First pass over one piece [a, b) of a file: newlines in it and, past the first
    piece, the first line start at or after ``a``; also whether ``b - 1`` is a newline."""
    f, a, b, first = item
    k = _kernels()
    lo = a if first else a - 1  # one byte before: a line may start exactly at ``a``
    n = b - lo
    buf = pool.take(n)
    try:
        with _open(f.run_id, f.rel, f.full) as fh:
            if _read_exact(fh, buf, lo, n) != n:
                f.changed()
        view = buf[:n]
        newlines = int(np.count_nonzero(view[a - lo : n] == _NL))  # SIMD: 2-3x the kernel's loop
        line_start = -1
        if not first:
            nxt = int(k._next_line(view, 1))
            if nxt < n or view[n - 1] == _NL:
                line_start = lo + nxt
        return newlines, line_start, bool(view[n - 1] == _NL)
    finally:
        pool.give(buf)


def _line_text(buf: np.ndarray, end: int, line: int, limit: int = 200) -> bytes:
    """The first ``limit`` bytes of line ``line`` (0-based) of ``buf[:end]`` (error path only)."""
    newlines = np.flatnonzero(buf[:end] == _NL)
    start = int(newlines[line - 1]) + 1 if 0 < line <= newlines.size else 0
    return buf[start : min(start + limit, end)].tobytes().split(b"\n", 1)[0]


def _plan_file(f: _CsvFile, pieces, scans) -> list[tuple[int, int, int, int]]:
    """Blocks [start, end) of ``f`` cut at line starts, with their row count and the
    count of newlines before them: [(start, end, rows, newlines before)]."""
    bounds = [(f.data_start, 0)]
    before = 0  # newlines in [data_start, start of the piece)
    for (a, _), (newlines, line_start, _) in zip(pieces, scans, strict=True):
        if line_start >= 0 and bounds[-1][0] < line_start < f.size:
            bounds.append((line_start, before + (line_start > a)))
        before += newlines
    ends_with_nl = scans[-1][2]
    keep_last = 0
    if not ends_with_nl:  # a last line without a line end: kept when whole, else dropped
        f.partial_line = f.header_lines + 1 + before
        why = _cut_reason(f)
        if why:
            _warn_cut(f.run_id, f, why)
        else:
            keep_last = 1
    f.keep_last = bool(keep_last)
    bounds.append((f.size, before + keep_last))
    blocks = []
    for (s, ns), (e, ne) in zip(bounds[:-1], bounds[1:], strict=True):
        blocks.append((s, e, ne - ns, ns))
    return blocks


def _cut_reason(f: _CsvFile) -> str:
    """Why the last line of ``f`` (it has no line end) is cut, or "" when it is whole.

    Whole: as many columns as the file's rows and a last field at most one
    character shorter than the line before's (the value of a sample or FLAGS
    is cut short by a file being written; a trimmed fixture is not)."""
    tail = min(f.size - f.data_start, 1 << 16)
    while True:
        buf = np.empty(tail, np.uint8)
        with _open(f.run_id, f.rel, f.full) as fh:
            if _read_exact(fh, buf, f.size - tail, tail) != tail:
                f.changed()
        text = buf.tobytes()
        if text.count(b"\n") >= 2 or tail >= f.size - f.data_start:
            break
        tail = min(f.size - f.data_start, tail * 4)
    lines = text.split(b"\n")
    last = lines[-1].rstrip(b"\r")
    ncols = last.count(b";") + 1
    if ncols < f.ncols:
        return f"{ncols} of {f.ncols} columns"
    if ncols > f.ncols:
        return ""  # more columns than the rows: the parser says so
    field = last.rsplit(b";", 1)[-1]
    if not field:
        return "its last field is empty"
    if len(lines) >= 2 and lines[-2].strip():
        before = lines[-2].rstrip(b"\r").rsplit(b";", 1)[-1]
        if len(field) < len(before) - 1:
            return f"its last field {field.decode('latin-1')!r} is shorter than the line before's"
    return ""


def _warn_cut(run_id: str, f: _CsvFile, why: str) -> None:
    logger.warning(
        f"run {run_id!r}: file {f.rel}, line {f.partial_line}: last line has no line end and is "
        f"cut ({why}; a file being written?); the line is dropped"
    )


def _assign_columns(csvs: list[_CsvFile]) -> None:
    """Give files without a header the columns of their channel's first segment
    (else the CoMPASS default of their layout), and check every file's fields."""
    named: dict[tuple[int, int], _CsvFile] = {}
    for f in csvs:  # csvs are in (board, channel, segment) order
        if f.columns is None:
            continue
        ref = named.setdefault((f.board, f.channel), f)
        if f.columns.names != ref.columns.names:  # a later segment's header contradicts the first
            raise FormatError(
                f"run {f.run_id!r}: file {f.rel}, line {f.header_lines}: header "
                f"{f.columns.header()} differs from the header {ref.columns.header()} of "
                f"{ref.rel} (line {ref.header_lines}); all segments of board {f.board} "
                f"channel {f.channel} must have the same columns"
            )
    for f in csvs:
        if f.columns is None:
            if f.layout == LAYOUT_COMPASS1:
                default = DEFAULT_1X
            else:
                list_mode = f.ncols == DEFAULT_2X_LIST.n_fixed
                default = DEFAULT_2X_LIST if list_mode else DEFAULT_2X
            ref = named.get((f.board, f.channel))
            f.columns = ref.columns if ref is not None else default
        f.check_columns()


def _check_lengths(run_id: str, csvs: list[_CsvFile]) -> None:
    """All rows of one (board, channel) have the same number of samples, over all its segments."""
    first: dict[tuple[int, int], _CsvFile] = {}
    for f in csvs:
        if f.ncols == 0:
            continue
        ref = first.setdefault((f.board, f.channel), f)
        n, n_ref = f.ncols - f.columns.n_fixed, ref.ncols - ref.columns.n_fixed
        if n != n_ref:
            raise FormatError(
                f"run {run_id!r}: file {f.rel}, line {f.header_lines + 1}: rows of different "
                f"lengths within board {f.board} channel {f.channel}: {n} samples, "
                f"{n_ref} in {ref.rel}"
            )


def csv_run_info(info: RunInfo, data_root: Path, files: np.ndarray, run_id: str) -> None:
    """What the files' headers and first lines say: version, waveforms or list mode, energies,
    record length (the first file of each channel is checked against its header)."""
    seen = set()
    csvs = []
    for f in files:  # the first file of each (board, channel), as the run lists them
        key = (int(f["board"]), int(f["channel"]))
        if key not in seen:
            seen.add(key)
            rel = str(f["path"])
            csvs.append(_CsvFile(run_id, rel, Path(data_root) / rel, *key, int(f["segment"])))
    _assign_columns(csvs)
    _check_modes(run_id, [f for f in csvs if f.ncols])
    f = next((f for f in csvs if f.ncols), csvs[0])
    cols = f.columns
    where = f"file {Path(f.rel).name}"
    header = f"header of {Path(f.rel).name}" if f.columns is not None else "CoMPASS default header"
    info.set("version", "2.x" if cols.board >= 0 else "1.x", header)
    info.set("has_waveforms", cols.has_samples, header)
    info.energy_fields = cols.energy_fields
    if cols.has_samples and f.ncols:
        info.set("record_length", f.ncols - cols.n_fixed, f"{where}, first record")


def _check_modes(run_id: str, csvs: list[_CsvFile]) -> None:
    """All files hold waveforms, or none does (list mode)."""
    if len({f.columns.has_samples for f in csvs}) > 1:
        wave = next(f for f in csvs if f.columns.has_samples)
        listed = next(f for f in csvs if not f.columns.has_samples)
        raise FormatError(
            f"run {run_id!r}: file {wave.rel} holds waveforms but {listed.rel} does not (list "
            "mode); a run is read either way, not both"
        )


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
    csvs: list[_CsvFile] = thread_map(
        lambda s: _CsvFile(run_id, s[0], data_root / s[0], s[1], s[2], s[3], s[4]), specs
    )
    _assign_columns(csvs)
    _check_lengths(run_id, csvs)
    for f in csvs:
        if f.ncols == 0 and not f.partial_line and not f.cut:  # cut: being written, or lends a header
            logger.warning(f"run {run_id!r}: file {f.rel}: {f.no_records()}; no records read")
    if not any(f.ncols for f in csvs):
        shown = "; ".join(f"{f.rel}: {f.no_records()}" for f in csvs[:5])
        more = f"; and {len(csvs) - 5} more" if len(csvs) > 5 else ""
        raise NoDataError(f"run {run_id!r}: the CSV files hold no records ({shown}{more})")
    csvs = [f for f in csvs if f.ncols]
    _check_modes(run_id, csvs)
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
    scans = thread_map(lambda it: _scan_range(it, pool), items)
    plan = []  # (file, start, end, first row, rows, first line number)
    row = 0
    i = 0
    for f, rs in pieces:
        for s, e, rows, before in _plan_file(f, rs, scans[i : i + len(rs)]):
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
    dt_ns = info.dt_ns
    t0 = int(info.time_offset_ns)
    records = _RecordPool(dtype)

    def parse(p):
        """Parse one block into its own records and hand the parsed ones to the sink."""
        f, a, b, row0, rows, first_line = p
        n = b - a
        buf = pool.take(n + 1)
        out = records.take(rows)
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
                out["energy_short"], wave, 0, rows,
            )
            text = _line_text(buf, end, int(line)) if code == ERR_NOT_NUMERIC else b""
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
                out["dt"] = dt_ns
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
