"""Block reads shared by the readers: exact reads, reused buffers, files gone mid-run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FormatError, MissingFileError


def read_exact(fh, buf: np.ndarray, offset: int, n: int) -> int:
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


class BufferPool:
    """Read buffers reused across blocks: one per thread at a time, so at most
    ``n_threads()`` of them are alive."""

    def __init__(self, dtype: np.dtype = np.uint8) -> None:
        self.dtype = np.dtype(dtype)
        self._free: list[np.ndarray] = []
        self._made: set[int] = set()  # ids of the buffers this pool allocated

    def take(self, n: int) -> np.ndarray:
        try:
            buf = self._free.pop()
        except IndexError:
            buf = None
        if buf is None or buf.size < n:
            buf = None  # free the small one first
            buf = np.empty(n + (n >> 4), self.dtype)
            self._made.add(id(buf))
        return buf

    def give(self, buf: np.ndarray) -> None:
        self._free.append(buf)

    def clear(self) -> None:
        self._free.clear()
        self._made.clear()


class RecordPool(BufferPool):
    """Zeroed record buffers of exactly the rows asked for, reused across blocks.

    Allocating a fresh buffer of a few MB per block and freeing it leaves the
    allocator's heaps fragmented, so the process keeps memory it no longer
    uses; a run of thousands of blocks then grows its RSS with its size."""

    def take(self, n: int) -> np.ndarray:
        out = super().take(n)[:n]
        out.view(np.uint8)[:] = 0
        return out

    def take_for(self, sink, row0: int, n: int) -> np.ndarray:
        """Rows ``row0 ...`` of ``sink`` to fill: the sink's own where it keeps them in memory
        (``sink.slot``: no copy on ``put``), else a buffer of this pool."""
        slot = getattr(sink, "slot", None)
        out = slot(row0, n) if slot is not None else None
        return self.take(n) if out is None else out

    def give(self, buf: np.ndarray) -> None:
        """Return a buffer of :meth:`take` (a sink's own rows are not the pool's: ignored)."""
        base = buf.base if buf.base is not None else buf
        if id(base) in self._made:
            super().give(base)


def open_listed(run_id: str, rel: str, full: Path):
    """``open(full, "rb")``; a file gone since the run was listed is a :class:`MissingFileError`."""
    try:
        return open(full, "rb", buffering=0)
    except FileNotFoundError:
        raise MissingFileError(
            f"run {run_id!r}: file {rel} was listed for the run but no longer exists "
            "(deleted or moved while the run was read)"
        ) from None


def listed_sizes(files: np.ndarray) -> list[int]:
    """The ``size`` column of a file table (-1, read to the end, where it has none)."""
    if "size" not in (files.dtype.names or ()):
        return [-1] * len(files)
    return [int(n) for n in files["size"]]


def size_to_read(run_id: str, rel: str, full: Path, listed: int) -> tuple[int, bool]:
    """Bytes of ``full`` to read: its size when the run was listed (``listed`` >= 0), else now;
    and whether the file holds more than that (it grew, or it lends a header: online.folder).

    A file the digitizer still writes has grown since: what was appended belongs to
    the next listing and its key. One that shrank was rewritten, not appended to."""
    try:
        current = full.stat().st_size
    except FileNotFoundError:
        open_listed(run_id, rel, full)  # raises MissingFileError
        raise
    if listed < 0:
        return current, False
    if current < listed:
        raise FormatError(
            f"run {run_id!r}: file {rel} changed while being read: {current} bytes, "
            f"{listed} when the run was listed"
        )
    return listed, current > listed


# -- filling a run in time order -------------------------------------------------------------
# A run of one time-sorted file per channel is read fastest in time order: each job takes the
# next rows of the time order, reads each file's bytes of them (contiguous, since each file
# keeps its own order) and puts them where they stay, so that the staging need not gather.


def time_order(time_ns: np.ndarray, board: np.ndarray, channel: np.ndarray,
               file_rows: list[int], offsets: list[np.ndarray]) -> np.ndarray | None:  # fmt: skip
    """Output row -> row in file order (files one after another, ``file_rows`` rows each),
    in the staging's order (time, board, channel; file order breaks ties), when filling in
    that order pays and works: None when the rows already are in order, or when a file's rows
    would not keep their own order in it or its ``offsets`` (each row's byte offset) fall."""
    order = np.lexsort((channel, board, time_ns))
    if np.all(order[1:] > order[:-1]):
        return None
    inv = np.empty(order.size, np.int64)
    inv[order] = np.arange(order.size)
    start = 0
    for n, offset in zip(file_rows, offsets, strict=True):
        if n > 1 and (np.any(np.diff(inv[start : start + n]) <= 0) or np.any(np.diff(offset) < 0)):
            return None
        start += n
    return order


def ordered_ranges(n_rows: int, nbytes: int, block_bytes: int) -> list[tuple[int, int]]:
    """Ranges of output rows of about ``block_bytes`` of file each (``nbytes`` in all), at
    least two per thread."""
    from ..parallel import n_threads

    step = max(1, min(n_rows * block_bytes // max(nbytes, 1), -(-n_rows // (2 * n_threads()))))
    return [(a, min(a + step, n_rows)) for a in range(0, n_rows, step)]


def file_spans(rows: np.ndarray, starts: np.ndarray) -> list[tuple[int, np.ndarray, int, int]]:
    """Per file among ``rows`` (rows in file order; file ``f`` holds ``starts[f]`` to
    ``starts[f + 1]``): ``(f, positions in rows, its first row, its last row)`` (rows of the
    file itself)."""
    file_of = np.searchsorted(starts, rows, side="right") - 1
    out = []
    for f in np.unique(file_of).tolist():
        idx = np.flatnonzero(file_of == f)
        out.append((f, idx, int(rows[idx[0]] - starts[f]), int(rows[idx[-1]] - starts[f])))
    return out
