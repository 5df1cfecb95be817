"""CAEN VX2730 CoMPASS CSV reader.

Layout: ``<data_root>/<run>/RAW/*CH<ch>*_<seg>.CSV``; ``;``-separated columns
``BOARD;CHANNEL;TIMETAG;ENERGY;ENERGYSHORT;FLAGS;PROBE_CODE;SAMPLES...``
with the samples from column 7 to the end of the line. The header line is in
the first segment only; any leading lines that do not start with a digit are
header (this accepts the legacy two-line header). TIMETAG is in ps, FLAGS is
hex (``0x4000``) or decimal, 2 ns per sample.

The parser is a numba kernel over the raw bytes: no Python object per value.
Memory is bounded: a first pass reads the files in blocks and counts their
lines, so the output is allocated once at its final size; a second pass reads
the blocks again, cut at line starts, and parses each into its rows. At most
one block per thread is in memory (``READ_BUDGET`` bytes in all).
The kernels live in :mod:`._vx2730_kernels`, imported on the first ``read``, so
that listing files does not import numba.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..dtypes import st_waveforms_dtype
from ..errors import FormatError, NoDataError
from ._threads import n_threads, thread_map
from .base import DAQAdapter, make_file_table, raw_dir

N_FIXED_COLUMNS = 7  # BOARD..PROBE_CODE; samples follow
CHUNK_BYTES = 16 << 20  # block of a file read and parsed as one unit (cut at line starts)
READ_BUDGET = 32 << 20  # bytes of read blocks in memory at once, over all threads
MIN_BLOCK_BYTES = 256  # floor of the block size (tests force tiny blocks)
HEADER_BYTES = 64 << 10  # first read of a file, for its header and column count

_CH_RE = re.compile(r"CH(\d+)", re.IGNORECASE)
_SEG_RE = re.compile(r"_(\d+)\.csv$", re.IGNORECASE)

# error codes returned by the kernels
ERR_OK = 0
ERR_TRUNCATED = 1
ERR_TOO_LONG = 2
ERR_NOT_NUMERIC = 3
ERR_RANGE = 4
ERR_COUNT = 5

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
}


def _read_exact(fh, buf: np.ndarray, offset: int, n: int) -> int:
    """Read ``n`` bytes at ``offset`` into ``buf[:n]``; returns the bytes read (< n at EOF)."""
    fh.seek(offset)
    mv = memoryview(buf)[:n]
    got = 0
    while got < n:
        k = fh.readinto(mv[got:])
        if not k:
            break
        got += k
    return got


class _BufferPool:
    """Read buffers reused across blocks: one per thread at a time, so at most
    ``n_threads()`` of them are alive."""

    def __init__(self) -> None:
        self._free: list[np.ndarray] = []

    def take(self, n: int) -> np.ndarray:
        try:
            buf = self._free.pop()
        except IndexError:
            buf = None
        if buf is None or buf.size < n:
            buf = None  # free the small one first
            buf = np.empty(n + (n >> 4), np.uint8)
        return buf

    def give(self, buf: np.ndarray) -> None:
        self._free.append(buf)

    def clear(self) -> None:
        self._free.clear()


class _CsvFile:
    """One CSV file: its header, as read from the first bytes, and its size.

    The data lines are read later, block by block (:meth:`VX2730Adapter.read`).
    """

    def __init__(self, run_id: str, rel: str, full: Path, channel: int, segment: int):
        self.run_id = run_id
        self.rel = rel
        self.full = full
        self.channel = channel
        self.segment = segment
        self.size = full.stat().st_size
        self.ncols = 0
        self.data_start, self.header_lines = self._read_header()
        if self.ncols and self.ncols < N_FIXED_COLUMNS + 1:
            self.fail(ERR_TRUNCATED, self.header_lines + 1, self.ncols, N_FIXED_COLUMNS + 1)

    def _read_header(self) -> tuple[int, int]:
        """(offset of the first data line, header lines before it); sets ``ncols``.

        Reads a growing prefix until it holds the whole first data line; at the
        end of the file a newline sentinel is appended, as if the file ended with one.
        """
        k = _kernels()
        want = HEADER_BYTES
        with open(self.full, "rb", buffering=0) as fh:
            while True:
                n = min(want, self.size)
                buf = np.empty(n + 1, np.uint8)
                got = _read_exact(fh, buf, 0, n)
                eof = got >= self.size or got < n
                if eof:
                    self.size = got
                    buf[got] = _NL
                    view = buf[: got + 1]
                else:
                    view = buf[:n]
                start, lines = k._skip_header(view)
                start, lines = int(start), int(lines)
                if start < view.size:
                    if eof or int(k._next_line(view, start + 1)) < view.size or view[-1] == _NL:
                        self.ncols = int(k._count_columns(view, start))
                        return start, lines
                elif eof:
                    return self.size, lines
                want *= 4

    def fail(self, code: int, line_no: int, col: int, ncols: int | None = None) -> None:
        what = _MESSAGES[code].format(ncols=ncols or self.ncols, col=col)
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
        with open(f.full, "rb", buffering=0) as fh:
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
    if not ends_with_nl:  # the last line has no newline: one more row
        s, e, rows, ns = blocks[-1]
        blocks[-1] = (s, e, rows + 1, ns)
    return blocks


class VX2730Adapter(DAQAdapter):
    """CAEN VX2730 with CoMPASS CSV output (see docs/formats.md)."""

    name = "vx2730"
    sample_ns = 2

    def list_files(self, data_root: Path, run_id: str) -> np.ndarray:
        raw = raw_dir(data_root, run_id)
        entries = []
        for p in raw.iterdir():
            if not p.is_file() or p.suffix.lower() != ".csv":
                continue
            ch = _CH_RE.search(p.name)
            seg = _SEG_RE.search(p.name)
            if ch is None or seg is None:
                continue
            entries.append((0, int(ch.group(1)), int(seg.group(1)), p))
        return make_file_table(data_root, run_id, raw, entries, "*CH<ch>*_<seg>.CSV")

    def read(self, data_root: Path, files: np.ndarray, run_id: str) -> np.ndarray:
        data_root = Path(data_root)
        if len(files) == 0:
            raise NoDataError(f"run {run_id!r}: no files to read")
        k = _kernels()
        order = np.lexsort((files["segment"], files["channel"], files["board"]))
        files = files[order]
        specs = [
            (str(f["path"]), int(f["channel"]), int(f["segment"])) for f in files
        ]
        csvs: list[_CsvFile] = thread_map(
            lambda s: _CsvFile(run_id, s[0], data_root / s[0], s[1], s[2]), specs
        )
        # column count must agree within a channel
        first_of_channel: dict[int, _CsvFile] = {}
        for f in csvs:
            if f.ncols == 0:
                continue
            ref = first_of_channel.setdefault(f.channel, f)
            if f.ncols != ref.ncols:
                raise FormatError(
                    f"run {run_id!r}: file {f.rel}, line {f.header_lines + 1}: rows of different "
                    f"lengths within channel {f.channel}: {f.ncols - N_FIXED_COLUMNS} samples, "
                    f"{ref.ncols - N_FIXED_COLUMNS} in {ref.rel}"
                )
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
        n_rows = row
        if n_rows == 0:
            raise NoDataError(f"run {run_id!r}: the CSV files hold no records")
        n_samples = max(f.ncols for f in csvs) - N_FIXED_COLUMNS
        out = np.zeros(n_rows, dtype=st_waveforms_dtype(n_samples))
        board = out["board"]
        channel = out["channel"]
        timetag = out["timestamp"]
        wave = out["wave"]

        def parse(p):
            f, a, b, row0, rows, first_line = p
            n = b - a
            buf = pool.take(n + 1)
            try:
                with open(f.full, "rb", buffering=0) as fh:
                    if _read_exact(fh, buf, a, n) != n:
                        f.changed()
                buf[n] = _NL  # sentinel: the digit loops need no bound check
                end = n if buf[n - 1] == _NL else n + 1
                code, line, col, got = k._parse_rows(
                    buf[: n + 1], 0, end, f.ncols, board, channel, timetag, wave, row0, rows
                )
            finally:
                pool.give(buf)
            return int(code), first_line + int(line), int(col), int(got)

        results = thread_map(parse, plan)
        pool.clear()  # free the read buffers before the sort below
        keep = None
        for p, (code, line, col, got) in zip(plan, results, strict=True):
            f, _, _, row0, rows, _ = p
            if code != ERR_OK:
                f.fail(code, line, col)
            out["length"][row0 : row0 + rows] = f.ncols - N_FIXED_COLUMNS
            if got < rows:  # blank lines
                if keep is None:
                    keep = np.ones(n_rows, bool)
                keep[row0 + got : row0 + rows] = False
        if keep is not None:
            out = out[keep]
            if len(out) == 0:
                raise NoDataError(f"run {run_id!r}: the CSV files hold no records")
            timetag = out["timestamp"]
        out["dt"] = self.sample_ns
        out["time"] = timetag // 1000
        idx = np.lexsort((out["channel"], out["time"]))
        if np.any(idx[1:] < idx[:-1]):
            out = out[idx]
        return out
