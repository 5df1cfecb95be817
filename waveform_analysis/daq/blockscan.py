"""Two-pass block reading of event files, shared by the WaveDump and CAEN readout-dump readers.

A format supplies two numba kernels (:class:`EventFormat`):

* ``walk(buf, n, eof, fill, base, meta, params) -> (code, stop, rows)`` walks
  the whole events in ``buf[:n]`` (``base`` is the file offset of ``buf[0]``),
  validating every header; with ``fill`` it writes one ``meta`` row per record
  (columns :data:`META`, ``offset`` a file offset the copy kernel starts from).
  An event running past ``n`` ends the walk without error unless ``eof``; then
  it returns :data:`TRUNCATED` (the file was cut inside its last event).
* ``copy(buf, base, meta, params, wave) -> (code, at)`` writes the samples of
  the ``meta`` rows (all in ``buf``) into ``wave``.

Pass 1 (:func:`scan_file`) reads a file in blocks of ``BLOCK_BYTES`` cut at
event boundaries and keeps the metadata; pass 2 (:func:`copy_records`) reads
the blocks again on all threads and hands each block's records to the sink
(:class:`~waveform_analysis.daq.staging.RecordStaging`), in time order when
every file is time-sorted (one file per channel: no gather afterwards). A file cut inside its
last event is read up to it with a warning naming the byte offset; a file that
shrinks between or during the passes is a :class:`FormatError`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from loguru import logger

from ..dtypes import st_waveforms_dtype
from ..errors import FormatError, NoDataError
from ..parallel import thread_map
from .base import RunInfo
from .blocks import (
    BufferPool,
    RecordPool,
    file_spans,
    open_listed,
    ordered_ranges,
    read_exact,
    time_order,
)

META = ("board", "channel", "ticks", "offset", "nsamp", "flags", "energy", "energy_short")
BOARD, CHANNEL, TICKS, OFFSET, NSAMP, FLAGS, ENERGY, ENERGY_SHORT = range(len(META))
TRUNCATED = 99  # walk code: the event at ``stop`` runs past the end of the file
BLOCK_BYTES = 16 << 20


@dataclass(frozen=True)
class EventFormat:
    """What :func:`scan_file` and :func:`copy_records` need to know of one file format.

    ``messages`` maps the kernels' error codes to text; ``event_bytes(buf, n)``
    is the declared size of the event starting at ``buf[0]`` (0 when ``n`` is
    too short to say), used to grow a block that one event overflows.
    """

    name: str
    walk: Callable
    copy: Callable
    messages: dict[int, str]
    event_bytes: Callable[[np.ndarray, int], int]
    params: np.ndarray = field(default_factory=lambda: np.zeros(4, np.int64))


@dataclass
class FileScan:
    """Pass 1's result for one file: its blocks, one metadata row per record, and its size."""

    rel: str
    size: int
    blocks: list[tuple[int, int, int, int]]  # (start byte, end byte, first row, end row)
    meta: np.ndarray  # (rows, len(META)) int64, file order
    truncated_at: int = -1  # byte offset of a last event cut by the end of the file


def scan_file(fmt: EventFormat, run_id: str, rel: str, full: Path,
              pool: BufferPool | None = None, block_bytes: int = BLOCK_BYTES) -> FileScan:  # fmt: skip
    """Walk every event header of one file (pass 1); errors name run, file and byte offset."""
    pool = pool or BufferPool()
    blocks: list[tuple[int, int, int, int]] = []
    parts: list[np.ndarray] = []
    empty = np.empty((0, len(META)), np.int64)
    truncated = -1
    with open_listed(run_id, rel, full) as fh:
        size = os.fstat(fh.fileno()).st_size
        pos = 0
        count = 0
        block = block_bytes
        while pos < size:
            n = min(block, size - pos)
            buf = pool.take(n)
            try:
                got = read_exact(fh, buf, pos, n)
                if got != n:
                    raise _shrunk(run_id, rel, pos + got, size)
                eof = pos + n >= size
                code, stop, rows = fmt.walk(buf, n, eof, False, pos, empty, fmt.params)
                code, stop, rows = int(code), int(stop), int(rows)
                if code == TRUNCATED:
                    truncated = pos + stop
                    _warn_truncated(fmt, run_id, rel, truncated, buf[stop:n], n - stop, count + rows)
                elif code:
                    raise FormatError(
                        f"run {run_id!r}: file {rel}, byte offset {pos + stop}: "
                        f"{fmt.name}: {fmt.messages.get(code, f'error {code}')}"
                    )
                elif stop == 0:  # one event larger than the block: a block that holds it
                    need = fmt.event_bytes(buf, n)
                    block = need if need > n else block * 4
                    continue
                meta = np.empty((rows, len(META)), np.int64)
                if rows:
                    fmt.walk(buf, stop, True, True, pos, meta, fmt.params)
            finally:
                pool.give(buf)
            if rows:
                parts.append(meta)
                blocks.append((pos, pos + stop, count, count + rows))
                count += rows
            pos += stop
            if truncated >= 0:
                break
    meta = np.concatenate(parts) if parts else empty
    return FileScan(rel, size, blocks, meta, truncated)


def _shrunk(run_id: str, rel: str, at: int, size: int) -> FormatError:
    return FormatError(
        f"run {run_id!r}: file {rel}, byte offset {at}: the file ends there but was {size} "
        "bytes when the run was listed (shrunk or replaced while being read)"
    )


def _warn_truncated(fmt: EventFormat, run_id: str, rel: str, at: int,
                    tail: np.ndarray, left: int, complete: int) -> None:  # fmt: skip
    declared = fmt.event_bytes(tail, left)
    said = f"declares {declared} bytes, " if declared else ""
    logger.warning(
        f"run {run_id!r}: file {rel}, byte offset {at}: the last event is cut by the end "
        f"of the file ({said}{left} bytes left); the {complete} complete records before it "
        "are read"
    )


def copy_records(
    fmt: EventFormat,
    run_id: str,
    data_root: Path,
    scans: list[FileScan],
    dtype: np.dtype,
    sink,
    fill: Callable[[np.ndarray, slice | np.ndarray], None],
    order: np.ndarray | None = None,
) -> None:
    """Pass 2: every block's samples into records of ``dtype``, handed to ``sink`` by rows.

    Rows are numbered over ``scans`` in order (the concatenation of their
    ``meta``); ``fill(out, rows)`` sets every field but ``wave`` for those rows.
    ``order`` (output row -> row in that numbering: the run's time order, from
    :func:`~.blocks.time_order`, which checks that every file keeps its own order
    in it) puts the records in that order, so that the staging need not gather
    them afterwards (a copy of every record); ``fill`` then gets index arrays.
    """
    total = sum(len(s.meta) for s in scans)
    sink.begin(total, dtype)
    pool = BufferPool()
    records = RecordPool(dtype)
    if order is not None:
        all_meta = np.concatenate([s.meta for s in scans])
        starts = np.cumsum([0] + [len(s.meta) for s in scans])
        nbytes = sum(b - a for scan in scans for a, b, _, _ in scan.blocks)

        def copy_ordered(job: tuple[int, int]) -> None:
            out = records.take_for(sink, job[0], job[1] - job[0])
            rows = order[job[0] : job[1]]
            fill(out, rows)
            _copy_in_order(fmt, run_id, data_root, scans, all_meta, starts, rows, out, pool)
            sink.put(job[0], out)
            records.give(out)

        thread_map(copy_ordered, ordered_ranges(len(order), nbytes, BLOCK_BYTES))
        pool.clear()
        records.clear()
        return
    jobs = []
    start = 0
    for scan in scans:
        for a, b, lo, hi in scan.blocks:
            jobs.append((scan, a, b, lo, hi, start))
        start += len(scan.meta)

    def copy(job) -> None:
        scan, a, b, lo, hi, first = job
        n = b - a
        out = records.take_for(sink, first + lo, hi - lo)
        fill(out, slice(first + lo, first + hi))
        buf = pool.take(n)
        try:
            with open_listed(run_id, scan.rel, data_root / scan.rel) as fh:
                got = read_exact(fh, buf, a, n)
                if got != n:
                    raise _shrunk(run_id, scan.rel, a + got, scan.size)
            code, at = fmt.copy(buf[:n], a, scan.meta[lo:hi], fmt.params, out["wave"])
            if code:
                raise FormatError(
                    f"run {run_id!r}: file {scan.rel}, byte offset {int(at)}: "
                    f"{fmt.name}: {fmt.messages.get(int(code), f'error {code}')}"
                )
        finally:
            pool.give(buf)
        sink.put(first + lo, out)
        records.give(out)

    thread_map(copy, jobs)
    pool.clear()
    records.clear()


def _copy_in_order(fmt: EventFormat, run_id: str, data_root: Path, scans: list[FileScan],
                   all_meta: np.ndarray, starts: np.ndarray, rows: np.ndarray, out: np.ndarray,
                   pool: BufferPool) -> None:  # fmt: skip
    """Samples of the records at ``rows`` (of ``all_meta``, the scans' rows in file order,
    scan ``f`` from ``starts[f]``; from any files) into ``out``: each file's bytes of those
    rows read into one buffer, one kernel call over them."""
    meta = all_meta[rows]
    parts = []
    total = 0
    for f, idx, lo, hi in file_spans(rows, starts):
        scan = scans[f]
        a = int(scan.meta[lo, OFFSET])
        b = int(scan.meta[hi + 1, OFFSET]) if hi + 1 < len(scan.meta) else scan.blocks[-1][1]
        parts.append((scan, idx, a, b, total))
        total += b - a
    buf = pool.take(total)
    try:
        for scan, idx, a, b, at in parts:
            with open_listed(run_id, scan.rel, data_root / scan.rel) as fh:
                got = read_exact(fh, buf[at:], a, b - a)
            if got != b - a:
                raise _shrunk(run_id, scan.rel, a + got, scan.size)
            meta[idx, OFFSET] += at - a
        code, at = fmt.copy(buf[:total], 0, meta, fmt.params, out["wave"])
    finally:
        pool.give(buf)
    if code:
        scan, _, a, _, first = next(p for p in reversed(parts) if p[4] <= int(at))
        raise FormatError(
            f"run {run_id!r}: file {scan.rel}, byte offset {a + int(at) - first}: "
            f"{fmt.name}: {fmt.messages.get(int(code), f'error {code}')}"
        )


def unwrap_counter(meta: np.ndarray, period: int) -> np.ndarray:
    """The ``ticks`` column with the counter's roll-overs undone per (board, channel), int64.

    Rows are in file order, which is the order the board acquired them in: within a
    (board, channel), any drop adds one period to every later row. A roll-over is
    then missed only when two successive triggers of a channel are a whole period
    or more apart (2^31 ticks: 17.2 s at 8 ns), which nothing in the files can
    tell (a drop by more than half the period, the rule before, missed gaps of
    half a period).
    """
    ticks = meta[:, TICKS].copy()
    if ticks.size == 0:
        return ticks
    from .v1725.kernels import _unwrap

    by = np.lexsort((meta[:, CHANNEL], meta[:, BOARD]))  # stable: file order kept
    b, c = meta[by, BOARD], meta[by, CHANNEL]
    start = np.ones(by.size, np.bool_)
    start[1:] = (b[1:] != b[:-1]) | (c[1:] != c[:-1])
    t = ticks[by]
    _unwrap(start, t, period, 0)  # file order is acquisition order: any drop is a roll-over
    ticks[by] = t
    return ticks


def scan_files(fmt: EventFormat, run_id: str, data_root: Path, files: np.ndarray) -> list[FileScan]:
    """Pass 1 over every file of the run (on all threads)."""
    rels = [str(p) for p in files["path"]]
    pool = BufferPool()  # one buffer per thread, reused from file to file
    scans = thread_map(lambda rel: scan_file(fmt, run_id, rel, data_root / rel, pool), rels)
    pool.clear()
    return scans


def read_scans(fmt: EventFormat, run_id: str, data_root: Path, scans: list[FileScan],
               info: RunInfo, tick_ns: float, period: int, sink) -> None:  # fmt: skip
    """Pass 2 for records whose time is a ``period``-wrapping counter of ``tick_ns`` ticks.

    ``dt`` is ``info.dt_ns``; the energies ``info.energy_fields`` names come
    from the meta columns (NaN where < 0), the others are NaN.
    """
    meta = np.concatenate([s.meta for s in scans]) if scans else np.empty((0, 8), np.int64)
    if len(meta) == 0:
        raise NoDataError(f"run {run_id!r}: the files hold no complete event")
    ticks = unwrap_counter(meta, period)
    stamp_ps = np.rint(ticks * (tick_ns * 1000.0)).astype(np.int64)
    time_ns = stamp_ps // 1000 + info.time_offset_ns
    dtype = st_waveforms_dtype(max(1, int(meta[:, NSAMP].max())))
    names = dtype.names

    def fill(out: np.ndarray, rows: slice | np.ndarray) -> None:
        m = meta[rows]
        out["time"] = time_ns[rows]
        out["timestamp"] = stamp_ps[rows]
        out["board"] = m[:, BOARD]
        out["channel"] = m[:, CHANNEL]
        out["dt"] = info.dt_ns
        out["length"] = m[:, NSAMP]
        out["flags"] = m[:, FLAGS]
        for name, col in (("energy", ENERGY), ("energy_short", ENERGY_SHORT)):
            if name in info.energy_fields and name in names:
                out[name] = np.where(m[:, col] < 0, np.nan, m[:, col])
        info.fill_absent(out)

    order = time_order(time_ns, meta[:, BOARD], meta[:, CHANNEL], [len(s.meta) for s in scans],
                       [s.meta[:, OFFSET] for s in scans])  # None: in file order
    copy_records(fmt, run_id, data_root, scans, dtype, sink, fill, order)
