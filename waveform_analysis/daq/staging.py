"""Where a reader puts a run's records as it reads them, and takes them back in time order.

Readers parse their files block by block in file order (one channel's file
after another); ``st_waveforms`` wants the records in time order. A
:class:`RecordStaging` holds the records between the two: in memory when the
run fits the budget, else in a scratch file beside the cache entry, written
with ``pwrite`` and read back through short-lived memory maps of its
descriptor, so that the memory in use stays about one block per reading
thread plus one chunk. Per record it keeps only what sorting needs (time,
board, channel: a few bytes against a record's kilobytes). In memory, a reader
fills its rows where they stay (:meth:`RecordStaging.slot`); when the blocks
came in time order (one channel's file) the records are handed back as they
lie, with no copy, else gathered in time order once (into an array the caller
gives, such as the cache entry's own rows; a scratch file's blocks are freed
as soon as every record in them has been read for the last time). A caller that
wants more per block while the block is in the CPU cache (``st_waveforms``
takes each record's end-window statistics for its baselines) passes
``on_begin(n_rows)`` and ``on_block(records, rows)`` callbacks, so this
module needs nothing of the physics.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import mmap
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..parallel import thread_map

__all__ = ["RecordStaging"]

GATHER_BYTES = 8 << 20  # records read back through one short-lived map of the scratch file
FREE_BYTES = 2 << 20  # the scratch file is freed in blocks of this size once every record in one is read back
_PUNCH_HOLE = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE


@functools.lru_cache(maxsize=1)
def _fallocate():
    """The C library's ``fallocate`` (Linux), or None where there is none."""
    name = ctypes.util.find_library("c")
    try:
        f = ctypes.CDLL(name).fallocate if name else None
    except (OSError, AttributeError):
        return None
    if f is not None:
        f.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
    return f


def _punch_hole(fd: int, offset: int, length: int) -> bool:
    """Free ``length`` bytes of the open file ``fd`` at ``offset``: their pages leave the page
    cache at once and are never written to the disk; the file keeps its size and reads
    zeros there. False where that is not supported."""
    f = _fallocate()
    return f is not None and f(fd, _PUNCH_HOLE, offset, length) == 0


def _take(rows_of: np.ndarray, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``rows_of[rows]``, copied as opaque records: numpy's fancy indexing of a structured
    array copies field by field (10x slower for 48-byte trigger rows). ``out``: a
    contiguous array of ``len(rows)`` records to copy into (no intermediate copy)."""
    item = np.dtype((np.void, rows_of.dtype.itemsize))
    if out is None:
        return np.take(rows_of.view(item), rows).view(rows_of.dtype)
    np.take(rows_of.view(item), rows, out=out.view(item), mode="clip")  # "raise" would buffer out
    return out


def _same_rows(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` is ``b`` itself (a reader filled the staging's own rows)."""
    return a.__array_interface__["data"][0] == b.__array_interface__["data"][0] and a.shape == b.shape


def _is_range(rows: np.ndarray, start: int) -> bool:
    """Whether ``rows`` is ``start, start + 1, ...``."""
    if rows.size == 0:
        return True
    return int(rows[0]) == start and int(rows[-1]) == start + rows.size - 1 and bool(
        np.all(np.diff(rows) == 1))


def _in_order(time: np.ndarray, board: np.ndarray, channel: np.ndarray) -> bool:
    """Whether rows in this order are already sorted by (time, board, channel): a check in
    one pass, so that a run whose blocks come in time order is not sorted."""
    if time.size < 2:
        return True
    step = np.diff(time)
    if np.any(step < 0):
        return False
    tie = np.flatnonzero(step == 0)
    if tie.size == 0:
        return True
    key = board.astype(np.int64) * 65536 + channel
    return bool(np.all(key[tie + 1] >= key[tie]))


class RecordStaging:
    """The rows of one run, put in file order by a reader, gathered in time order.

    ``budget_bytes`` (None: no limit) is the size above which rows go to a
    scratch file ``<scratch_prefix>.<pid>.<random>.staging.tmp`` instead of
    memory (a cache entry's temporary-file prefix, so that the file of a
    process killed meanwhile is cleaned like the entry's other temporary
    files). ``on_begin(n_rows)`` is called by :meth:`begin`, ``on_block(rows,
    where)`` by :meth:`put` for each block (``where`` the slice of rows it
    fills; possibly from several threads at once, for disjoint rows). Use it as
    a context manager: the scratch file is deleted on exit.
    """

    def __init__(
        self,
        budget_bytes: int | None = None,
        scratch_prefix: str | os.PathLike[str] | None = None,
        on_block: Callable[[np.ndarray, slice], None] | None = None,
        on_begin: Callable[[int], None] | None = None,
    ) -> None:
        self.budget_bytes = budget_bytes
        self.scratch_prefix = Path(scratch_prefix) if scratch_prefix is not None else None
        self.on_block = on_block
        self.on_begin = on_begin
        self.dtype: np.dtype | None = None
        self.n_rows = 0
        self._array: np.ndarray | None = None
        self._fd: int | None = None
        self._path: Path | None = None
        self._left: np.ndarray | None = None  # per block of the scratch file: its records not yet read for the last time
        self._done: np.ndarray | None = None  # per row: read for the last time (its block may be gone)

    def in_memory(self, nbytes: int) -> bool:
        """Whether ``nbytes`` of rows would be kept in memory (not in the scratch file): a
        reader that can put the rows in time order at some cost of its own asks first."""
        return self.budget_bytes is None or self.scratch_prefix is None or nbytes <= self.budget_bytes

    def begin(self, n_rows: int, dtype: np.dtype) -> None:
        """Make room for ``n_rows`` rows of ``dtype`` (rows a reader leaves unset are dropped)."""
        self.dtype = np.dtype(dtype)
        self.n_rows = n = int(n_rows)
        self.time = np.zeros(n, np.int64)
        self.board = np.zeros(n, np.int16)
        self.channel = np.zeros(n, np.int16)
        self.valid = np.zeros(n, np.bool_)
        if self.on_begin is not None:
            self.on_begin(n)
        if self.in_memory(n * self.dtype.itemsize):
            self._array = np.zeros(n, self.dtype)
            return
        nbytes = n * self.dtype.itemsize
        prefix = self.scratch_prefix
        prefix.parent.mkdir(parents=True, exist_ok=True)
        self._path = prefix.with_name(f"{prefix.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.staging.tmp")
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.ftruncate(self._fd, nbytes)

    def slot(self, row0: int, n: int) -> np.ndarray | None:
        """Rows ``row0 ... row0 + n`` where they are kept (zeroed), for a reader to fill and
        :meth:`put`; None when they go to the scratch file (the reader fills a buffer of its own)."""
        return None if self._array is None else self._array[row0 : row0 + n]

    def put(self, row0: int, records: np.ndarray) -> None:
        """Store ``records`` (of the staging's dtype, or its :meth:`slot`) at rows ``row0 ...``."""
        n = len(records)
        if n == 0:
            return
        rows = slice(row0, row0 + n)
        self.time[rows] = records["time"]
        self.board[rows] = records["board"]
        self.channel[rows] = records["channel"]
        if self.on_block is not None:
            self.on_block(records, rows)
        if self._array is not None:
            if not _same_rows(records, self._array[rows]):
                self._array[rows] = records
        else:
            data = np.ascontiguousarray(records).reshape(-1).view(np.uint8)
            offset = row0 * self.dtype.itemsize
            view = memoryview(data)
            while view.nbytes:
                k = os.pwrite(self._fd, view, offset)
                view, offset = view[k:], offset + k
        self.valid[rows] = True

    # -- reading back ------------------------------------------------------------

    def order(self) -> np.ndarray:
        """Rows holding records, sorted by (time, board, channel); file order breaks ties.

        Rows already in that order (a run whose blocks come in time order) are checked in
        one pass and not sorted."""
        if self.valid.all():  # every row put: no row to leave out, no keys to copy
            kept, time, board, channel = None, self.time, self.board, self.channel
        else:
            kept = np.flatnonzero(self.valid)
            time, board, channel = self.time[kept], self.board[kept], self.channel[kept]
        self._plan_freeing(kept)
        if _in_order(time, board, channel):
            return np.arange(self.n_rows) if kept is None else kept
        by = np.lexsort((channel, board, time))
        return by if kept is None else kept[by]

    def _blocks(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The first and last block of the scratch file that each row's bytes lie in."""
        item = self.dtype.itemsize
        rows = rows.astype(np.int64)
        return rows * item // FREE_BYTES, ((rows + 1) * item - 1) // FREE_BYTES

    def _count(self, rows: np.ndarray) -> np.ndarray:
        """How many of ``rows`` lie (wholly or in part) in each block of the scratch file."""
        first, last = self._blocks(rows)
        n = -(-self.n_rows * self.dtype.itemsize // FREE_BYTES)
        return np.bincount(first, minlength=n) + np.bincount(last[last != first], minlength=n)

    def _plan_freeing(self, kept: np.ndarray | None) -> None:
        """Count the records each block of the scratch file holds, to free it once they are read."""
        if self._fd is None or self._left is not None:
            return
        self._left = self._count(np.arange(self.n_rows) if kept is None else kept)
        self._done = np.zeros(self.n_rows, np.bool_)

    def gather(self, rows: np.ndarray, last: bool = False, out: np.ndarray | None = None) -> np.ndarray:
        """The records at ``rows`` (in that order): in memory, consecutive rows are a view of
        the staging's own (the caller may change them), others a new array, or ``out`` when
        given (``len(rows)`` records of the staging's dtype). (Moving the records into time
        order in place instead measured slower than this gather: 44 against 24 ms for 65 MB
        of records, 325 against 17 ms for a million 48-byte rows.)

        ``last``: these rows are read for the last time. Each block of the scratch file
        whose records have all been read for the last time is then freed (its pages go
        back to the system at once instead of when the staging closes, and are never
        written to the disk), so the pages of what the caller writes next (the cache
        entry) are recycled ones; reading such a row again is an error."""
        if out is not None and (out.dtype != self.dtype or out.shape != rows.shape):
            raise ValueError(f"gather into {out.shape} rows of {out.dtype}, not {rows.shape} of {self.dtype}")
        if self._array is not None:
            if rows.size and _is_range(rows, int(rows[0])):
                view = self._array[int(rows[0]) : int(rows[0]) + rows.size]
                if out is None:
                    return view
                np.copyto(out.view(np.uint8), view.view(np.uint8))  # as bytes: not field by field
                return out
            return _take(self._array, rows, out)
        if rows.size == 0:
            return np.zeros(0, self.dtype) if out is None else out
        if out is None:
            out = np.empty(rows.size, self.dtype)
        step = max(1, GATHER_BYTES // self.dtype.itemsize)
        parts = [(a, min(a + step, rows.size)) for a in range(0, rows.size, step)]
        if self._done is not None and self._done[rows].any():
            raise ValueError("records read back after they were read for the last time")
        lock = threading.Lock()

        def part(p: tuple[int, int]) -> None:
            self._mapped_rows(rows[p[0] : p[1]], out[p[0] : p[1]])
            if last:  # freed as each part is read: its pages serve this thread's next faults
                with lock:
                    self._free(rows[p[0] : p[1]])

        thread_map(part, parts)
        return out

    def _free(self, rows: np.ndarray) -> None:
        """Mark ``rows`` read for the last time and free the blocks of the scratch file left empty."""
        if self._left is None:
            self._plan_freeing(None if self.valid is None else np.flatnonzero(self.valid))
        rows = rows[~self._done[rows]]
        marked = np.count_nonzero(self._done)
        self._done[rows] = True
        if np.count_nonzero(self._done) - marked != rows.size:  # a row twice: count it once
            rows = np.unique(rows)  # (a sort: only then, time order never repeats a row)
        before = self._left > 0
        self._left -= self._count(rows)
        emptied = np.flatnonzero(before & (self._left == 0))
        # consecutive blocks in one call: the two channels' halves of a run free two runs of blocks
        cuts = np.flatnonzero(np.diff(emptied) != 1) + 1
        for run in np.split(emptied, cuts) if emptied.size else ():
            first, count = int(run[0]), len(run)
            if not _punch_hole(self._fd, first * FREE_BYTES, count * FREE_BYTES):
                return  # not supported here: the blocks go when the staging closes

    def _mapped_rows(self, rows: np.ndarray, out: np.ndarray) -> None:
        """Copy the records at ``rows`` into ``out`` through a map of the scratch file closed
        straight after (the copies of a chunk run on the kernel threads).

        Only the pages read are resident, and only while mapped (a few MB at a time:
        they stay in the page cache, not in this process)."""
        lo, hi = int(rows.min()), int(rows.max()) + 1
        item = self.dtype.itemsize
        start = lo * item
        base = start - start % mmap.ALLOCATIONGRANULARITY
        mm = mmap.mmap(self._fd, hi * item - base, access=mmap.ACCESS_READ, offset=base)
        try:
            view = np.frombuffer(mm, dtype=self.dtype, count=hi - lo, offset=start - base)
            _take(view, rows - lo, out)
            del view
        finally:
            mm.close()

    def records(self) -> np.ndarray:
        """Every record, in time order, in one array."""
        return self.gather(self.order())

    def drop_keys(self) -> None:
        """Free the sort keys once :meth:`order` and the statistics are taken."""
        self.time = self.board = self.channel = self.valid = None

    # -- cleaning up -------------------------------------------------------------

    def close(self) -> None:
        """Free the records and delete the scratch file."""
        self._array = None
        self._left = self._done = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._path is not None:
            self._path.unlink(missing_ok=True)
            self._path = None

    def __enter__(self) -> RecordStaging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
