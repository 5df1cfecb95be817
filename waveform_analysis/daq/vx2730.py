"""CAEN VX2730 CoMPASS CSV reader.

Layout: ``<data_root>/<run>/RAW/*CH<ch>*_<seg>.CSV``; ``;``-separated columns
``BOARD;CHANNEL;TIMETAG;ENERGY;ENERGYSHORT;FLAGS;PROBE_CODE;SAMPLES...``
with the samples from column 7 to the end of the line. The header line is in
the first segment only; any leading lines that do not start with a digit are
header (this accepts the legacy two-line header). TIMETAG is in ps, FLAGS is
hex (``0x4000``) or decimal, 2 ns per sample.

The parser is a numba kernel over the raw bytes: no Python object per value.
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
CHUNK_BYTES = 8 << 20  # parse unit handed to one thread

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

_KERNEL_NAMES = frozenset(
    {"_skip_header", "_count_columns", "_next_line", "_count_newlines", "_parse_rows"}
)


def _kernels():
    """The numba kernels (imported, and loaded from numba's cache, on first use)."""
    from . import _vx2730_kernels

    return _vx2730_kernels


def __getattr__(name: str):
    # the kernels used to be defined here; keep them reachable without importing numba early
    if name in _KERNEL_NAMES:
        return getattr(_kernels(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_MESSAGES = {
    ERR_TRUNCATED: "truncated line: fewer columns than the other rows ({ncols} expected)",
    ERR_TOO_LONG: "rows of different lengths: more columns than the other rows ({ncols} expected)",
    ERR_NOT_NUMERIC: "non-numeric value in column {col}",
    ERR_RANGE: "sample out of int16 range in column {col}",
    ERR_COUNT: "inconsistent line count while parsing",
}


def _read_with_sentinel(path: Path) -> tuple[np.ndarray, int]:
    """File bytes plus a trailing newline; returns (buffer, bytes to parse)."""
    size = path.stat().st_size
    buf = np.empty(size + 1, np.uint8)
    with open(path, "rb", buffering=0) as fh:
        got = fh.readinto(memoryview(buf)[:size])
    size = got
    buf = buf[: size + 1]
    buf[size] = _NL
    if size and buf[size - 1] == _NL:
        return buf, size
    return buf, size + 1


class _CsvFile:
    """One CSV file's bytes and what the first pass learned about them."""

    def __init__(self, run_id: str, rel: str, full: Path, channel: int, segment: int):
        self.run_id = run_id
        self.rel = rel
        self.full = full
        self.channel = channel
        self.segment = segment
        k = _kernels()
        self.buf, self.size = _read_with_sentinel(full)
        self.data_start, self.header_lines = k._skip_header(self.buf)
        self.data_start = int(self.data_start)
        self.header_lines = int(self.header_lines)
        self.ncols = 0
        self.chunks: list[tuple[int, int, int, int]] = []  # (start, end, rows, first line no)
        self.n_rows = 0
        if self.data_start < self.buf.size:
            self.ncols = int(k._count_columns(self.buf, self.data_start))
            if self.ncols < N_FIXED_COLUMNS + 1:
                self.fail(ERR_TRUNCATED, self.header_lines + 1, self.ncols, N_FIXED_COLUMNS + 1)

    def fail(self, code: int, line_no: int, col: int, ncols: int | None = None) -> None:
        what = _MESSAGES[code].format(ncols=ncols or self.ncols, col=col)
        raise FormatError(f"run {self.run_id!r}: file {self.rel}, line {line_no}: {what}")

    def split(self, target: int) -> list[tuple[int, int]]:
        n = self.size
        bounds = [self.data_start]
        pos = self.data_start
        while True:
            nxt = int(_kernels()._next_line(self.buf, pos + target)) if pos + target < n else n
            if nxt >= n:
                break
            bounds.append(nxt)
            pos = nxt
        bounds.append(n)
        return [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


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
        total_bytes = sum(f.buf.size - f.data_start for f in csvs)
        target = max(1 << 20, min(CHUNK_BYTES, total_bytes // (4 * n_threads()) + 1))
        units = []
        for f in csvs:
            if f.ncols:
                for a, b in f.split(target):
                    units.append((f, a, b))
        counts = thread_map(lambda u: k._count_newlines(u[0].buf, u[1], u[2]), units)
        # assign output rows (one per newline; blank lines are dropped below) and line numbers
        row = 0
        line_no = {id(f): f.header_lines + 1 for f in csvs}
        plan = []
        for (f, a, b), newlines in zip(units, counts, strict=True):
            plan.append((f, a, b, row, int(newlines), line_no[id(f)]))
            row += int(newlines)
            line_no[id(f)] += int(newlines)
        n_rows = row
        if n_rows == 0:
            raise NoDataError(f"run {run_id!r}: the CSV files hold no records")
        n_samples = max(f.ncols for f in csvs if f.ncols) - N_FIXED_COLUMNS
        out = np.zeros(n_rows, dtype=st_waveforms_dtype(n_samples))
        board = out["board"]
        channel = out["channel"]
        timetag = out["timestamp"]
        wave = out["wave"]

        def parse(p):
            f, a, b, row0, rows, first_line = p
            code, line, col, got = k._parse_rows(
                f.buf, a, b, f.ncols, board, channel, timetag, wave, row0, rows
            )
            return int(code), first_line + int(line), int(col), int(got)

        results = thread_map(parse, plan)
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
