"""CoMPASS BIN reader, 2.x and 1.x, with or without waveforms (layouts in :mod:`.layout`).

A 2.x file starts with the header word ``0xCAE0 | bits`` that says which
fields each event has; a continuation file (``_1``, ``_2`` ...) may lack it
and then takes the layout of its channel's first file. A 1.x file has no
header word (its name says 1.x: ``CH<c>@<model>_<serial>_Data_<run>.bin`` or
``<c>@<model> #<x>-<y>-<serial>_Data_<run>.bin``). One file may hold several
channels (CoMPASS's SINGLEFILE option); each event says its board and channel.

Files are read in blocks of ``BLOCK_BYTES`` cut at event boundaries: a first
pass walks each file's events with a numba kernel (validating every size, and
keeping each event's offset, time tag, board and channel), a second reads the
bytes again on all threads and fills the rows. When every file is time-sorted
(one file per channel, as CoMPASS writes them) the second pass fills the run
in time order, each job the files' bytes of its rows, so that the staging has
nothing to sort or gather; otherwise (SINGLEFILE) block by block in file
order, and the staging sorts them. An event cut by the end
of a file, a sample count no digitizer records, a channel number no board has
and a file that shrinks while read are :class:`FormatError` naming the run,
file and byte offset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...dtypes import TRIGGERS_DTYPE, st_waveforms_dtype
from ...errors import FormatError, NoDataError
from ...parallel import thread_map
from ..base import RunInfo
from ..blocks import (
    BufferPool,
    RecordPool,
    file_spans,
    listed_sizes,
    open_listed,
    ordered_ranges,
    read_exact,
    size_to_read,
    time_order,
)
from .files import LAYOUT_COMPASS1, parse_name
from .layout import (
    BIN_ENERGY,
    BIN_ENERGY_CAL,
    BIN_ENERGY_SHORT,
    BIN_HEADER_BYTES,
    BIN_MAGIC,
    BIN_MAGIC_MASK,
    BIN_MESSAGES,
    BIN_WAVEFORM,
    ERR_BIN_CHANNEL,
    ERR_BIN_TRUNCATED,
    MAX_CHANNEL,
    MAX_SAMPLES,
)

BLOCK_BYTES = 16 << 20  # file block read and walked as one unit (cut at event boundaries)


def _kernels():
    """The numba kernels (imported, and loaded from numba's cache, on first use)."""
    from . import bin_kernels

    return bin_kernels


def _first_word(run_id: str, rel: str, full: Path) -> int | None:
    """The file's first u16 (None: the file is shorter than 2 bytes)."""
    with open_listed(run_id, rel, full) as fh:
        head = fh.read(BIN_HEADER_BYTES)
    return int.from_bytes(head, "little") if len(head) == BIN_HEADER_BYTES else None


def bin_version(paths: list[Path]) -> str:
    """"2.x" when the first file starts with a header word, else "1.x" (for detection)."""
    first = sorted(paths, key=lambda p: len(p.name))[0]
    with open(first, "rb") as fh:
        word = int.from_bytes(fh.read(2), "little")
    return "2.x" if word & BIN_MAGIC_MASK == BIN_MAGIC else "1.x"


class _Layout:
    """How one file's events are laid out: 1.x, or 2.x with header ``bits``; ``start`` is the
    offset of its first event (after the header word, when the file has one)."""

    def __init__(self, v1: bool, bits: int, start: int) -> None:
        self.v1 = v1
        self.bits = bits
        self.start = start

    @property
    def has_waveforms(self) -> bool:
        return self.v1 or bool(self.bits & BIN_WAVEFORM)

    @property
    def energy_fields(self) -> tuple[str, ...]:
        if self.v1:
            return ("energy", "energy_short")
        pairs = (("energy", BIN_ENERGY), ("energy_short", BIN_ENERGY_SHORT),
                 ("energy_calibrated", BIN_ENERGY_CAL))
        return tuple(name for name, bit in pairs if self.bits & bit)

    def describe(self) -> str:
        return "1.x (no header word)" if self.v1 else f"2.x (header word 0x{BIN_MAGIC | self.bits:04X})"


def _layouts(run_id: str, data_root: Path, files: np.ndarray) -> list[_Layout]:
    """The layout of each file (files in (board, channel, segment) order): its own header word,
    else its channel's first file's (a continuation), else 1.x by its name."""
    out = []
    first: dict[tuple[int, int], _Layout] = {}
    for f in files:
        rel = str(f["path"])
        full = data_root / rel
        word = _first_word(run_id, rel, full)
        key = (int(f["board"]), int(f["channel"]))
        if word is not None and word & BIN_MAGIC_MASK == BIN_MAGIC:
            layout = _Layout(False, word & ~BIN_MAGIC_MASK, BIN_HEADER_BYTES)
        elif key in first:  # a continuation file without the header word
            ref = first[key]
            layout = _Layout(ref.v1, ref.bits, 0)
        else:
            name = parse_name(Path(rel).name)
            if name is None or name.layout != LAYOUT_COMPASS1:
                shown = "none (empty file)" if word is None else f"0x{word:04X}"
                raise FormatError(
                    f"run {run_id!r}: file {rel}, byte offset 0: unknown header word {shown}: "
                    "a CoMPASS 2.x BIN file starts with 0xCAE0-0xCAEF (a 1.x file, without one, "
                    "is named CH<c>@<model>_<serial>_Data_<run>.bin)"
                )
            layout = _Layout(True, 0, 0)
        if key not in first:
            first[key] = layout
        elif layout.v1 != first[key].v1 or layout.bits != first[key].bits:
            ref = first[key]
            raise FormatError(
                f"run {run_id!r}: file {rel}: layout {layout.describe()} differs from "
                f"{ref.describe()} of the channel's first file; all files of board {key[0]} "
                f"channel {key[1]} must have the same fields"
            )
        out.append(layout)
    modes = {lay.has_waveforms for lay in out}
    if len(modes) > 1:
        raise FormatError(f"run {run_id!r}: some BIN files hold waveforms and some do not (list "
                          "mode); a run is read either way, not both")
    return out


def bin_run_info(info: RunInfo, data_root: Path, files: np.ndarray, run_id: str) -> dict[int, int]:
    """What the header words and the first event say: version, waveforms, energies, length.
    Returns ``{records' board: files' board}`` of each file's first event, in file order."""
    data_root = Path(data_root)
    layouts = _layouts(run_id, data_root, files)
    boards: dict[int, int] = {}
    for f, lay in zip(files, layouts, strict=True):
        if lay.start == 0 and not lay.v1:
            continue  # a continuation: its channel's first file said it
        rel = str(f["path"])
        with open_listed(run_id, rel, data_root / rel) as fh:
            fh.seek(lay.start)
            word = fh.read(2)
        if len(word) == 2:
            boards.setdefault(int.from_bytes(word, "little"), int(f["board"]))
    lay = layouts[0]
    rel = str(files["path"][0])
    where = f"file {Path(rel).name}"
    info.set("version", "1.x" if lay.v1 else "2.x", f"{where}: {lay.describe()}")
    info.set("has_waveforms", lay.has_waveforms, f"{where}: {lay.describe()}")
    info.energy_fields = lay.energy_fields
    if "energy_calibrated" in lay.energy_fields:
        info.sources["energy_calibrated"] = "files"
    if lay.has_waveforms:
        k = _kernels()
        with open_listed(run_id, rel, data_root / rel) as fh:
            head = fh.read(lay.start + int(k.fixed_bytes(lay.v1, lay.bits)))
        if len(head) == lay.start + int(k.fixed_bytes(lay.v1, lay.bits)):
            n = int.from_bytes(head[-4:], "little")
            if n <= MAX_SAMPLES:
                info.set("record_length", n, f"{where}, first event")
    return boards


def _bad(run_id: str, rel: str, offset: int, code: int, value: int, size: int) -> FormatError:
    what = BIN_MESSAGES[code].format(value=value, limit=MAX_CHANNEL if code == ERR_BIN_CHANNEL else MAX_SAMPLES)
    if code == ERR_BIN_TRUNCATED:
        what += f" ({value} bytes left of a {size}-byte file; cut while being written?)"
    return FormatError(f"run {run_id!r}: file {rel}, byte offset {offset}: {what}")


def _scan_file(k, run_id: str, rel: str, full: Path, lay: _Layout, pool: BufferPool, listed: int = -1,
               with_keys: bool = True):
    """First pass over one file: [(start, end, events, most samples)] of its blocks, cut at
    event boundaries, and (``with_keys``) each event's (offset, time tag, board, channel)
    (:class:`_Keys`; else None)."""
    blocks = []
    keys = []
    with open_listed(run_id, rel, full) as fh:
        size = size_to_read(run_id, rel, full, listed)[0]  # as listed: appended bytes wait
        pos = lay.start
        block = BLOCK_BYTES
        while pos < size:
            n = min(block, size - pos)
            buf = pool.take(n)
            try:
                if read_exact(fh, buf, pos, n) != n:
                    raise FormatError(f"run {run_id!r}: file {rel}, byte offset {pos}: the file "
                                      "shrank while being read (changed while being read)")
                eof = pos + n >= size
                code, stop, cnt, most, value = k.walk(buf, n, eof, lay.v1, lay.bits)
                if with_keys and not code and int(stop):
                    part = _Keys(int(cnt))
                    k.keys(buf, int(stop), lay.v1, lay.bits, pos, *part.arrays())
                    keys.append(part)
            finally:
                pool.give(buf)
            if code:
                raise _bad(run_id, rel, pos + int(stop), int(code), int(value), size)
            stop = int(stop)
            if stop == 0:  # one event larger than the block
                block *= 4
                continue
            blocks.append((pos, pos + stop, int(cnt), int(most)))
            pos += stop
    return blocks, (_Keys.join(keys) if with_keys else None)


class _Keys:
    """Per event of a file: its byte offset, time tag (ps), board and channel."""

    def __init__(self, n: int) -> None:
        self.offset = np.empty(n, np.int64)
        self.stamp = np.empty(n, np.int64)
        self.board = np.empty(n, np.int32)
        self.channel = np.empty(n, np.int32)

    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.offset, self.stamp, self.board, self.channel

    @classmethod
    def join(cls, parts: list[_Keys]) -> _Keys:
        out = cls(0)
        if parts:
            for name in ("offset", "stamp", "board", "channel"):
                setattr(out, name, np.concatenate([getattr(p, name) for p in parts]))
        return out


def _time_order(scanned, layouts: list[_Layout]) -> tuple[np.ndarray, np.ndarray] | None:
    """The run's rows (files in order) in the staging's time order and each file's first row,
    when filling in that order works (:func:`~..blocks.time_order`; one layout for all files,
    keys kept); else None."""
    if len({(lay.v1, lay.bits) for lay in layouts}) != 1 or any(kk is None for _, kk in scanned):
        return None
    keys = [kk for _, kk in scanned]
    order = time_order(np.concatenate([kk.stamp for kk in keys]) // 1000,
                       np.concatenate([kk.board for kk in keys]),
                       np.concatenate([kk.channel for kk in keys]),
                       [kk.offset.size for kk in keys], [kk.offset for kk in keys])
    if order is None:
        return None
    return order, np.cumsum([0] + [kk.offset.size for kk in keys])


def _ordered_job(order, starts, rels, scanned, r0: int, r1: int):
    """The fill job of output rows ``r0 ... r1`` of the time order: each file's byte range of
    its rows there and where each event goes."""
    rows = order[r0:r1]
    parts, dest = [], []
    for f, idx, lo, hi in file_spans(rows, starts):
        keys = scanned[f][1]
        end = int(keys.offset[hi + 1]) if hi + 1 < keys.offset.size else scanned[f][0][-1][1]
        parts.append((rels[f], int(keys.offset[lo]), end))
        dest.append(idx)
    return r0, r1 - r0, parts, np.concatenate(dest).astype(np.int64)


def read_bin(data_root: Path, files: np.ndarray, run_id: str, sink, info: RunInfo) -> None:
    """Put the events of the BIN ``files`` into ``sink``: records, or trigger rows in list mode."""
    data_root = Path(data_root)
    if len(files) == 0:
        raise NoDataError(f"run {run_id!r}: no files to read")
    k = _kernels()
    files = files[np.lexsort((files["segment"], files["channel"], files["board"]))]
    layouts = _layouts(run_id, data_root, files)
    rels = [str(f["path"]) for f in files]
    sizes = listed_sizes(files)
    pool = BufferPool()
    # the time order is worth its keys (24 bytes an event) only where the sink keeps the rows in
    # memory (the records take at least the files' bytes): else it gathers chunk by chunk anyway
    in_memory = getattr(sink, "in_memory", None)
    with_keys = in_memory is not None and in_memory(sum(
        size_to_read(run_id, rel, data_root / rel, size)[0]
        for rel, size in zip(rels, sizes, strict=True)))
    scanned = thread_map(
        lambda i: _scan_file(k, run_id, rels[i], data_root / rels[i], layouts[i], pool, sizes[i],
                             with_keys),
        range(len(rels)),
    )
    total = sum(b[2] for blocks, _ in scanned for b in blocks)
    if total == 0:
        raise NoDataError(f"run {run_id!r}: the BIN files hold no events")
    has_waves = layouts[0].has_waveforms
    most = max(b[3] for blocks, _ in scanned for b in blocks)
    dtype = st_waveforms_dtype(most) if has_waves else TRIGGERS_DTYPE
    sink.begin(total, dtype)
    records = RecordPool(dtype)
    t0 = int(info.time_offset_ns)
    jobs = []
    row = 0
    ordered = (_time_order(scanned, layouts) if with_keys and in_memory(total * dtype.itemsize)
               else None)
    if ordered is None:  # blocks in file order; the staging puts them in time order
        for rel, (blocks, _) in zip(rels, scanned, strict=True):
            for a, b, cnt, _ in blocks:
                jobs.append((row, cnt, [(rel, a, b)], None))
                row += cnt
    else:  # rows in time order (no gather afterwards): each job the files' bytes of its rows
        order, starts = ordered
        nbytes = sum(b[1] - b[0] for blocks, _ in scanned for b in blocks)
        for r0, r1 in ordered_ranges(total, nbytes, BLOCK_BYTES):
            jobs.append(_ordered_job(order, starts, rels, scanned, r0, r1))

    no_rows = np.empty(0, np.int32)
    lay = layouts[0]  # one layout for all files where the order is filled (_time_order)
    in_file_order = np.empty(0, np.int64)

    def fill(job):
        row0, cnt, parts, dest = job
        n = sum(b - a for _, a, b in parts)
        out = records.take_for(sink, row0, cnt)
        wave = out["wave"] if has_waves else np.empty((cnt, 0), np.int16)
        length = out["length"] if has_waves else no_rows
        dt = out["dt"] if has_waves else no_rows.astype(np.float64)
        one = layouts[rels.index(parts[0][0])] if dest is None else lay
        buf = pool.take(n)
        try:
            at = 0
            for rel, a, b in parts:
                with open_listed(run_id, rel, data_root / rel) as fh:
                    if read_exact(fh, buf[at:], a, b - a) != b - a:
                        raise FormatError(f"run {run_id!r}: file {rel}, byte offset {a}: the file "
                                          "shrank while being read (changed while being read)")
                at += b - a
            got = k.fill(buf, n, one.v1, one.bits, t0, float(info.dt_ns or 0.0), out["board"],
                         out["channel"], out["timestamp"], out["time"], out["energy"],
                         out["energy_calibrated"], out["energy_short"], out["flags"], length, dt,
                         wave, in_file_order if dest is None else dest)
        finally:
            pool.give(buf)
        if got != cnt:  # the walk counted these very bytes: only a file rewritten in between
            raise FormatError(f"run {run_id!r}: file {parts[0][0]}, byte offset {parts[0][1]}: "
                              "changed while being read")
        if info.boards and has_waves:  # several boards: each record its own board's period
            out["dt"] = info.per_row("dt_ns", out["board"])
        info.calibrate(out)
        sink.put(row0, out)
        records.give(out)

    thread_map(fill, jobs)
    pool.clear()
    records.clear()
