"""CAEN CoMPASS CSV reader (VX2730 and the other 14-bit boards CoMPASS drives).

Layouts (see docs/formats.md): CoMPASS 2.x ``<run>/RAW/DataR_CH<ch>@<model>_<serial>_<run>[_<seg>].CSV``,
CoMPASS 1.x ``<run>/UNFILTERED/<ch>@<model> #<a>-<b>-<serial>_Data_<run>.csv``, and any
``*CH<ch>*_<seg>.CSV``; which files belong to the run is decided in
:mod:`.compass_files`. ``;``-separated columns named by the header line
(:mod:`.compass_columns`); files without a header take the columns of the
first segment of their (board, channel), else the CoMPASS default. TIMETAG is
in ps, FLAGS hex (``0x4000``) or decimal, 2 ns per sample.

The parser is a numba kernel over the raw bytes: no Python object per value.
Memory is bounded: a first pass reads the files in blocks and counts their
lines, so the output is allocated once at its final size; a second pass reads
the blocks again, cut at line starts, and parses each into its rows. At most
one block per thread is in memory (``READ_BUDGET`` bytes in all).
A last line without a line end (a file cut while being written) is dropped
with a warning naming the file and line.
The kernels live in :mod:`._vx2730_kernels`, imported on the first ``read``, so
that listing files does not import numba.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from loguru import logger

from ..dtypes import st_waveforms_dtype
from ..errors import FormatError, NoDataError
from ._blocks import BufferPool as _BufferPool
from ._blocks import RecordPool as _RecordPool
from ._blocks import listed_sizes, size_to_read
from ._blocks import open_listed as _open
from ._blocks import read_exact as _read_exact
from ._threads import n_threads, thread_map
from .base import DAQAdapter, make_file_table, read_sorted
from .compass_columns import DEFAULT_1X, DEFAULT_2X, Columns, header_columns
from .compass_files import LAYOUT_COMPASS1, list_csv_files, parse_name

CHUNK_BYTES = 16 << 20  # block of a file read and parsed as one unit (cut at line starts)
READ_BUDGET = 32 << 20  # bytes of read blocks in memory at once, over all threads
MIN_BLOCK_BYTES = 256  # floor of the block size (tests force tiny blocks)
HEADER_BYTES = 64 << 10  # first read of a file, for its header and column count

# error codes returned by the kernels
ERR_OK = 0
ERR_TRUNCATED = 1
ERR_TOO_LONG = 2
ERR_NOT_NUMERIC = 3
ERR_RANGE = 4
ERR_COUNT = 5
ERR_VALUE_RANGE = 6

_NL = 10


def _kernels():
    """The numba kernels (imported, and loaded from numba's cache, on first use)."""
    from . import _vx2730_kernels

    return _vx2730_kernels


_MESSAGES = {
    ERR_TRUNCATED: "truncated line: fewer columns than the other rows ({ncols} expected)",
    ERR_TOO_LONG: "rows of different lengths: more columns than the other rows ({ncols} expected)",
    ERR_NOT_NUMERIC: "non-numeric value in column {col}",
    ERR_RANGE: "sample out of int16 range in column {col}",
    ERR_COUNT: "inconsistent line count while parsing",
    ERR_VALUE_RANGE: "value out of range in column {col} (int64; FLAGS uint32)",
}


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
                            self.partial_line = lines + 1  # the only data line is cut
                        else:
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
        """The first data line has room for the header's fixed columns and at least one sample."""
        cols = self.columns
        if self.ncols and self.ncols < cols.n_fixed + 1:
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
        newlines = int(k._count_newlines(view, a - lo, n))
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
    bounds.append((f.size, before))
    blocks = []
    for (s, ns), (e, ne) in zip(bounds[:-1], bounds[1:], strict=True):
        blocks.append((s, e, ne - ns, ns))
    if not ends_with_nl:  # a last line without a line end is cut: dropped, not parsed
        f.partial_line = f.header_lines + 1 + before
    return blocks


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
            default = DEFAULT_1X if f.layout == LAYOUT_COMPASS1 else DEFAULT_2X
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


class VX2730Adapter(DAQAdapter):
    """CAEN CoMPASS CSV, 2.x and 1.x layouts (see docs/formats.md)."""

    name = "vx2730"
    sample_ns = 2

    def list_files(self, data_root: Path, run_id: str, folder: str = "raw") -> np.ndarray:
        """The run's CSV files; ``folder`` is "raw" (RAW, else UNFILTERED) or "filtered"."""
        raw, entries = list_csv_files(data_root, run_id, folder)
        return make_file_table(data_root, run_id, raw, entries, "*CH<ch>*.CSV or <ch>@*.csv")

    def read(self, data_root: Path, files: np.ndarray, run_id: str) -> np.ndarray:
        return read_sorted(self, data_root, files, run_id)

    def read_into(self, data_root: Path, files: np.ndarray, run_id: str, sink) -> None:
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
            if f.partial_line and f.ncols == 0:
                self._warn_partial(run_id, f)
            elif f.ncols == 0 and not f.cut:  # a cut file is still being written (or lends a header)
                logger.warning(f"run {run_id!r}: file {f.rel}: {f.no_records()}; no records read")
        if not any(f.ncols for f in csvs):
            shown = "; ".join(f"{f.rel}: {f.no_records()}" for f in csvs[:5])
            more = f"; and {len(csvs) - 5} more" if len(csvs) > 5 else ""
            raise NoDataError(f"run {run_id!r}: the CSV files hold no records ({shown}{more})")
        csvs = [f for f in csvs if f.ncols]
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
            if f.partial_line:
                self._warn_partial(run_id, f)
        n_rows = row
        if n_rows == 0:
            raise NoDataError(f"run {run_id!r}: the CSV files hold no records")
        n_samples = max(f.ncols - f.columns.n_fixed for f in csvs)
        dtype = st_waveforms_dtype(n_samples)
        sink.begin(n_rows, dtype)
        sample_ns = self.sample_ns
        records = _RecordPool(dtype)

        def parse(p):
            """Parse one block into its own records and hand the parsed ones to the sink."""
            f, a, b, row0, rows, first_line = p
            n = b - a
            buf = pool.take(n + 1)
            out = records.take(rows)
            try:
                with _open(f.run_id, f.rel, f.full) as fh:
                    if _read_exact(fh, buf, a, n) != n:
                        f.changed()
                buf[n] = _NL  # sentinel: the digit loops need no bound check
                if b == f.size and f.partial_line:
                    end = int(k._last_newline(buf, n))  # drop the cut last line
                else:
                    end = n if buf[n - 1] == _NL else n + 1
                code, line, col, got = k._parse_rows(
                    buf[: n + 1], 0, end, f.ncols, *f.columns.kernel_args(),
                    out["board"], out["channel"], out["timestamp"], out["flags"], out["wave"], 0, rows,
                )  # fmt: skip
                text = _line_text(buf, end, int(line)) if code == ERR_NOT_NUMERIC else b""
            finally:
                pool.give(buf)
            code, got = int(code), int(got)
            if code == ERR_OK:
                out = out[:got]  # blank lines leave rows unset at the end: those are dropped
                out["length"] = f.ncols - f.columns.n_fixed
                if f.columns.board < 0:
                    out["board"] = f.board
                if f.columns.channel < 0:
                    out["channel"] = f.channel
                out["dt"] = sample_ns
                out["time"] = out["timestamp"] // 1000
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

    @staticmethod
    def _warn_partial(run_id: str, f: _CsvFile) -> None:
        logger.warning(
            f"run {run_id!r}: file {f.rel}, line {f.partial_line}: last line has no line end "
            "(file cut while being written?); the line is dropped"
        )
