"""CAEN V1725 raw binary reader (DAW firmware).

Layout: ``<data_root>/<run>/RAW/*_b<board>_seg<n>.bin``, little-endian events.
Event header, four 32-bit words (16 bytes):

* word 0: bits 28-31 = ``0xA`` (event marker), bits 0-27 = event size in
  32-bit words including this header;
* word 1: bits 0-7 = channel mask [7:0] (byte 4), bits 8-23 = pattern,
  bit 26 = Board Fail, bits 27-31 = board id;
* word 2: bits 0-23 = event counter, bits 24-31 = channel mask [15:8] (byte 11);
* word 3: trigger time tag, a 31-bit counter with the roll-over flag in bit 31
  (CAEN UM3148, event structure); not used for the time, which comes from
  the channel headers.

Then, for each channel set in the mask in increasing channel order, a 12-byte
channel header followed by int16 samples:

* bytes 0-3: bits 0-21 = channel block size in 32-bit words including the
  header, bit 30 (bit 6 of byte 3) = truncation flag;
* bytes 4-9: 48-bit timestamp in 4 ns ticks (its roll-overs, every 2**48
  ticks = 13 days, are undone per (board, channel) in file order);
* bytes 10-11: 16-bit baseline computed by the firmware (not used here);
* then ``2 * size - 6`` int16 samples.

Events with the Board Fail bit set are kept, marked in ``flags``
(``FLAG_BOARD_FAIL``) and reported with a warning naming the file.
Files are read in blocks of ``BLOCK_BYTES`` cut at event boundaries: a first
pass walks the headers of each block with a numba kernel (validating every
size and mask), and a second pass reads the blocks again and hands each
block's records, in file order, to the staging that sorts them by time
(:mod:`.staging`).
The layout constants and error codes live in :mod:`.layout`; the kernels in
:mod:`.kernels`, imported on the first ``read`` so that listing files does not
import numba.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from loguru import logger

from ...dtypes import st_waveforms_dtype
from ...errors import FormatError, NoDataError
from ...parallel import thread_map
from ..base import DAQAdapter, RunInfo, make_file_table, raw_dir, resolve_dt
from ..blocks import BufferPool, RecordPool, listed_sizes, open_listed, read_exact, size_to_read
from .layout import (
    ERR_EVENT_SIZE,
    EVENT_HEADER_BYTES,
    FLAG_BOARD_FAIL,
    MESSAGES,
    TICK_NS,
    TIMESTAMP_PERIOD,
)

BLOCK_BYTES = 16 << 20  # file block read and walked as one unit (cut at event boundaries)

_NAME_RE = re.compile(r"_b(\d+)_seg(\d+)\.bin$", re.IGNORECASE)


def _kernels():
    """The numba kernels (imported, and loaded from numba's cache, on first use)."""
    from . import kernels

    return kernels


class V1725Adapter(DAQAdapter):
    """CAEN V1725 raw binary, DAW firmware (see docs/formats.md)."""

    name = "v1725"
    sample_ns = TICK_NS
    looks_for = "V1725 DAW binary files RAW/*_b<board>_seg<n>.bin"

    def detect(self, run_dir: Path) -> str | None:
        raw = run_dir / "RAW"
        if raw.is_dir() and any(_NAME_RE.search(p.name) for p in raw.iterdir()):
            return "V1725 DAW binary in RAW"
        return None

    def run_info(self, data_root: Path, run_id: str, files: np.ndarray, dt_ns: float | None = None
                 ) -> RunInfo:
        info = RunInfo(format=self.name, encoding="bin", folder="RAW", model="V1725",
                       adc_bits=14)
        info.sources.update(model="format v1725 (DAW firmware)", adc_bits="board model V1725")
        info.set("dt_ns", float(TICK_NS), "board model V1725 (x725 family)")
        return resolve_dt(info, run_id, dt_ns)

    def list_files(self, data_root: Path, run_id: str) -> np.ndarray:
        raw = raw_dir(data_root, run_id)
        entries = []
        for p in raw.iterdir():
            m = _NAME_RE.search(p.name)
            if p.is_file() and m:
                entries.append((int(m.group(1)), -1, int(m.group(2)), p))
        return make_file_table(data_root, run_id, raw, entries, "*_b<board>_seg<n>.bin")

    def read_into(self, data_root: Path, files: np.ndarray, run_id: str, sink,
                  info: RunInfo | None = None) -> None:
        data_root = Path(data_root)
        if info is None:
            info = self.run_info(data_root, run_id, files)
        if len(files) == 0:
            raise NoDataError(f"run {run_id!r}: no files to read")
        k = _kernels()
        files = files[np.lexsort((files["segment"], files["channel"], files["board"]))]
        rels = [str(f["path"]) for f in files]
        pool = BufferPool()

        def scan(item):
            rel, listed = item
            return _scan_file(k, run_id, rel, data_root / rel, pool, listed)

        scanned = thread_map(scan, list(zip(rels, listed_sizes(files), strict=True)))
        metas = [m for _, m in scanned]
        total = sum(m[0].size for m in metas)
        if total == 0:
            raise NoDataError(f"run {run_id!r}: the binary files hold no records")
        board, channel, ticks, offset, nsamp, flags = (
            np.concatenate([m[i] for m in metas]) for i in range(6)
        )
        _unwrap_ticks(k, board, channel, ticks)
        dtype = st_waveforms_dtype(int(nsamp.max()))
        sink.begin(total, dtype)
        records = RecordPool(dtype)
        # second pass: each block's records, in file order, blocks on all threads
        jobs = []
        start = 0
        for rel, (blocks, meta) in zip(rels, scanned, strict=True):
            for a, b, lo, hi in blocks:
                if hi > lo:
                    jobs.append((rel, a, b, start + lo, start + hi))
            start += meta[0].size

        def copy(job):
            rel, a, b, lo, hi = job
            n = b - a
            rows = slice(lo, hi)
            out = records.take_for(sink, lo, hi - lo)
            out["time"] = ticks[rows] * TICK_NS
            out["timestamp"] = ticks[rows] * (TICK_NS * 1000)
            out["board"] = board[rows]
            out["channel"] = channel[rows]
            out["dt"] = info.dt_ns
            out["length"] = nsamp[rows]
            out["flags"] = flags[rows]
            info.fill_absent(out)
            buf = pool.take(n)
            try:
                with open_listed(run_id, rel, data_root / rel) as fh:
                    if read_exact(fh, buf, a, n) != n:
                        raise FormatError(f"run {run_id!r}: file {rel} changed while being read")
                buf16 = buf[: n - (n & 1)].view(np.int16)
                k._copy_waves(
                    buf16, a >> 1, offset[rows], nsamp[rows], np.arange(hi - lo), 0, hi - lo,
                    out["wave"],
                )  # fmt: skip
            finally:
                pool.give(buf)
            sink.put(lo, out)
            records.give(out)

        thread_map(copy, jobs)
        pool.clear()
        records.clear()


def _scan_file(k, run_id: str, rel: str, full: Path, pool: BufferPool, listed: int = -1):
    """First pass over one file: [(start, end, first record, end record)] of its blocks
    (cut at event boundaries) and the record metadata (board, channel, ticks,
    sample offset, samples, flags), in file order."""
    blocks = []
    parts = []
    n_fail = 0
    first_fail = -1
    with open_listed(run_id, rel, full) as fh:
        size = size_to_read(run_id, rel, full, listed)[0]
        pos = 0
        block = BLOCK_BYTES
        count = 0
        while pos < size:
            n = min(block, size - pos)
            buf = pool.take(n)
            try:
                if read_exact(fh, buf, pos, n) != n:
                    raise FormatError(f"run {run_id!r}: file {rel} changed while being read")
                eof = pos + n >= size
                e = np.empty(0, np.int64)
                code, stop, cnt, nf, ff = k._walk(buf, n, eof, False, pos, e, e, e, e, e, e)
                stop, cnt = int(stop), int(cnt)
                if code:
                    raise FormatError(
                        f"run {run_id!r}: file {rel}, byte offset {pos + stop}: "
                        f"{_describe(int(code), buf, stop, n, size - pos - stop)}"
                    )
                if stop == 0:  # one event larger than the block: read a block that holds it
                    need = _event_bytes(buf, n)
                    if pos + need > size:  # checked before reading it: a corrupt size
                        raise FormatError(  # must not make us read the rest of the file
                            f"run {run_id!r}: file {rel}, byte offset {pos}: "
                            f"{_describe(ERR_EVENT_SIZE, buf, 0, n, size - pos)}"
                        )
                    block = need if need > n else block * 4  # else: a header cut by the block
                    continue
                meta = [np.empty(cnt, np.int64) for _ in range(6)]
                k._walk(buf, stop, True, True, pos, *meta)
            finally:
                pool.give(buf)
            if nf:
                n_fail += int(nf)
                first_fail = int(ff) if first_fail < 0 else first_fail
            parts.append(meta)
            blocks.append((pos, pos + stop, count, count + cnt))
            count += cnt
            pos += stop
    if n_fail:
        logger.warning(
            f"run {run_id!r}: file {rel}: {n_fail} events with the Board Fail bit set "
            f"(first at byte offset {first_fail}); their records have flags & "
            f"0x{FLAG_BOARD_FAIL:x}"
        )
    if not parts:
        return blocks, [np.empty(0, np.int64) for _ in range(6)]
    return blocks, [np.concatenate([p[i] for p in parts]) for i in range(6)]


def _event_bytes(buf: np.ndarray, n: int) -> int:
    """Size in bytes of the event whose header starts ``buf[:n]`` (0: no whole word 0 there)."""
    if n < 4:
        return 0
    return (int.from_bytes(buf[:4].tobytes(), "little") & 0x0FFFFFFF) * 4


def _describe(code: int, buf: np.ndarray, at: int, n: int, left: int) -> str:
    """The message of a walk error at ``buf[at]``, with the event size when it is at fault;
    ``left`` is the number of bytes of the file from ``at`` on."""
    if code != ERR_EVENT_SIZE:
        return MESSAGES[code]
    size = _event_bytes(buf[at:], n - at)
    if size < EVENT_HEADER_BYTES:
        return (
            f"bad event header: event size {size // 4} words is too small "
            f"(the event header alone is {EVENT_HEADER_BYTES // 4})"
        )
    return (
        f"bad event header: event size {size // 4} words ({size} bytes) runs past the end "
        f"of the file ({left} bytes left; cut while being written, or a corrupt size)"
    )


def _unwrap_ticks(k, board: np.ndarray, channel: np.ndarray, ticks: np.ndarray) -> None:
    """Undo the 48-bit timestamp roll-overs per (board, channel), rows in file order."""
    if ticks.size == 0:
        return
    by = np.lexsort((channel, board))  # stable: file order within a (board, channel)
    b, c = board[by], channel[by]
    start = np.ones(by.size, np.bool_)
    start[1:] = (b[1:] != b[:-1]) | (c[1:] != c[:-1])
    t = ticks[by]
    k._unwrap(start, t, TIMESTAMP_PERIOD, TIMESTAMP_PERIOD // 2)
    ticks[by] = t
