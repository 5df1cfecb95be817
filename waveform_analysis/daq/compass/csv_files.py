"""One CoMPASS CSV file as the reader plans it: its header and columns, read from its
first bytes, and the blocks of its data lines cut at line starts (the first pass).

A last line without a line end is kept when it is whole (all its columns, its last
field as long as the line before's, give or take a digit: a trimmed file) and
dropped with a warning naming the file and line when it is cut (a file being
written). Files without a header take the columns of their channel's first
segment, else the CoMPASS default of their layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from loguru import logger

from ...errors import FormatError
from ..blocks import BufferPool, open_listed, read_exact, size_to_read
from .columns import DEFAULT_1X, DEFAULT_2X, DEFAULT_2X_LIST, Columns, header_columns
from .files import LAYOUT_COMPASS1, parse_name
from .layout import CSV_MESSAGES, ERR_NOT_NUMERIC

__all__ = ["CsvFile", "assign_columns", "check_lengths", "check_modes", "line_text", "plan_file", "scan_range"]

HEADER_BYTES = 64 << 10  # first read of a file, for its header and column count

_NL = 10


def _kernels():
    """The numba kernels (imported, and loaded from numba's cache, on first use)."""
    from . import csv_kernels

    return csv_kernels


class CsvFile:
    """One CSV file: its header and first line, as read from the first bytes, and its size.

    The data lines are read later, block by block (:meth:`VX2730Adapter.read`).
    ``columns`` is None for a file without a header line (set later from its
    channel's first segment); ``partial_line`` is the number of a last line
    without a line end (0: none), dropped when the file is read.
    """

    def __init__(
        self, run_id: str, rel: str, full: Path, board: int, channel: int, segment: int, listed: int = -1
    ) -> None:
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
        self.first_line = b""
        self.data_start, self.header_lines = self._read_header()

    def _read_header(self) -> tuple[int, int]:
        """(offset of the first data line, header lines before it); sets ``ncols`` and ``columns``.

        Reads a growing prefix until it holds the whole first data line; at the
        end of the file a newline sentinel is appended, as if the file ended with one.
        """
        k = _kernels()
        want = HEADER_BYTES
        with open_listed(self.run_id, self.rel, self.full) as fh:
            while True:
                n = min(want, self.size)
                buf = np.empty(n + 1, np.uint8)
                got = read_exact(fh, buf, 0, n)
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
                        self.first_line = view[start:line_end].tobytes()
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

    def first_board(self) -> int:
        """The ``board`` of the file's first record (its BOARD column, else the file's board)."""
        if self.columns is not None and self.columns.board >= 0 and self.first_line:
            field = self.first_line.split(b";")[self.columns.board].strip()
            if field.isdigit():
                return int(field)
        return self.board

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
        what = CSV_MESSAGES[code].format(ncols=self.ncols, col=col)
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


def count_newlines(data: np.ndarray, step: int = 1 << 20) -> int:
    """Newlines in ``data`` (bytes), compared a MiB at a time into one small buffer.

    numpy's SIMD compare and count run 2-3 x the kernel's loop; a compare of the whole
    block at once would write a new array as large as the block (10 x slower when its
    pages are new to the process)."""
    flags = np.empty(min(data.size, step), np.bool_)
    total = 0
    for at in range(0, data.size, step):
        part = data[at : at + step]
        out = flags[: part.size]
        np.equal(part, _NL, out=out)
        total += int(np.count_nonzero(out))
    return total


def scan_range(item, pool: BufferPool):
    """First pass over one piece [a, b) of a file: newlines in it and, past the first
    piece, the first line start at or after ``a``; also whether ``b - 1`` is a newline."""
    f, a, b, first = item
    k = _kernels()
    lo = a if first else a - 1  # one byte before: a line may start exactly at ``a``
    n = b - lo
    buf = pool.take(n)
    try:
        with open_listed(f.run_id, f.rel, f.full) as fh:
            if read_exact(fh, buf, lo, n) != n:
                f.changed()
        view = buf[:n]
        newlines = count_newlines(view[a - lo : n])
        line_start = -1
        if not first:
            nxt = int(k._next_line(view, 1))
            if nxt < n or view[n - 1] == _NL:
                line_start = lo + nxt
        return newlines, line_start, bool(view[n - 1] == _NL)
    finally:
        pool.give(buf)


def line_text(buf: np.ndarray, end: int, line: int, limit: int = 200) -> bytes:
    """The first ``limit`` bytes of line ``line`` (0-based) of ``buf[:end]`` (error path only)."""
    newlines = np.flatnonzero(buf[:end] == _NL)
    start = int(newlines[line - 1]) + 1 if 0 < line <= newlines.size else 0
    return buf[start : min(start + limit, end)].tobytes().split(b"\n", 1)[0]


def plan_file(f: CsvFile, pieces, scans) -> list[tuple[int, int, int, int]]:
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


def _cut_reason(f: CsvFile) -> str:
    """Why the last line of ``f`` (it has no line end) is cut, or "" when it is whole.

    Whole: as many columns as the file's rows and a last field at most one
    character shorter than the line before's (the value of a sample or FLAGS
    is cut short by a file being written; a trimmed fixture is not)."""
    tail = min(f.size - f.data_start, 1 << 16)
    while True:
        buf = np.empty(tail, np.uint8)
        with open_listed(f.run_id, f.rel, f.full) as fh:
            if read_exact(fh, buf, f.size - tail, tail) != tail:
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


def _warn_cut(run_id: str, f: CsvFile, why: str) -> None:
    logger.warning(
        f"run {run_id!r}: file {f.rel}, line {f.partial_line}: last line has no line end and is "
        f"cut ({why}; a file being written?); the line is dropped"
    )


def assign_columns(csvs: list[CsvFile]) -> None:
    """Give files without a header the columns of their channel's first segment
    (else the CoMPASS default of their layout), and check every file's fields."""
    named: dict[tuple[int, int], CsvFile] = {}
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


def check_lengths(run_id: str, csvs: list[CsvFile]) -> None:
    """All rows of one (board, channel) have the same number of samples, over all its segments."""
    first: dict[tuple[int, int], CsvFile] = {}
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


def check_modes(run_id: str, csvs: list[CsvFile]) -> None:
    """All files hold waveforms, or none does (list mode)."""
    if len({f.columns.has_samples for f in csvs}) > 1:
        wave = next(f for f in csvs if f.columns.has_samples)
        listed = next(f for f in csvs if not f.columns.has_samples)
        raise FormatError(
            f"run {run_id!r}: file {wave.rel} holds waveforms but {listed.rel} does not (list "
            "mode); a run is read either way, not both"
        )
