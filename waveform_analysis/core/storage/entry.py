"""Writing one cache entry: pieces into a temporary file, then an atomic commit.

Each file is written to a temporary name in the run's folder and moved into
place with :func:`os.replace`; the JSON goes last and is the commit marker
(no JSON, no entry). Writers of one run's entries take turns (an advisory
lock on the run's folder), so two processes computing the same key at once
cannot pair one's data with the other's metadata. Temporary files left by a
writer that was killed are removed on the next write of that entry.
"""

from __future__ import annotations

import json
import mmap
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from loguru import logger

from ...errors import CacheError, CacheWriteError
from ...parallel import n_threads
from .npy import LARGEST_SHAPE, descr_json, npy_header, write_piece, zero_padding
from .verify import CHECKSUM_ALGORITHM, file_checksum

if TYPE_CHECKING:
    from . import CacheStorage

__all__ = ["STALE_TEMP_SECONDS", "EntryWriter", "check_array", "folder_lock", "remove_stale_temps", "temp_path"]


def temp_path(final: Path) -> Path:
    """A temporary name beside ``final`` that names this process (for the stale-file check)."""
    return final.parent / f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"


def check_array(data: Any, origin: str) -> None:
    """:class:`CacheError` unless ``data`` is a numpy array of plain data (the cache never pickles).

    ``origin`` starts the message and names what produced ``data`` (``"plugin X
    ('name') returned"``, ``"cannot cache 'name': a piece is"``)."""
    if not isinstance(data, np.ndarray):
        raise CacheError(
            f"{origin} {type(data).__module__}.{type(data).__qualname__}, not a numpy array; "
            "return a numpy array or set save_to_cache = False"
        )
    if data.dtype.hasobject:
        raise CacheError(
            f"{origin} an array of dtype {data.dtype}, which holds Python objects; "
            "the cache stores plain numpy data only and never pickles"
        )


#: A temporary file whose writer cannot be checked (another host) is stale after this long.
STALE_TEMP_SECONDS = 3600


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """An advisory lock on a run's cache folder, held while one of its entries is written.

    The folder itself is locked (no lock file is left behind); writes are short,
    and other runs' folders are not affected. A no-op where flock is missing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def remove_stale_temps(folder: Path, *final_names: str) -> None:
    """Delete temporary files of these entry files left by writers that died (SIGKILL, power cut).

    A temp file ``.<final>.<pid>.<hex>.tmp`` is stale when its process is gone, or,
    when that cannot be told (the pid is alive: it may be another host's), when it
    is older than :data:`STALE_TEMP_SECONDS`. The caller holds the entry lock, so no
    live writer of this host is writing them."""
    now = time.time()
    for final in final_names:
        for tmp in folder.glob(f".{final}.*.tmp"):
            if str(tmp) in _ACTIVE_TEMPS:  # being written by a thread of this process
                continue
            try:
                pid = int(tmp.name[len(final) + 2 :].split(".", 1)[0])
            except ValueError:
                continue
            try:
                stale = not _alive(pid) or now - tmp.stat().st_mtime > STALE_TEMP_SECONDS
                if stale:
                    tmp.unlink()
                    logger.info(f"removed {tmp}, left by a writer that did not finish")
            except FileNotFoundError:
                pass


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # not in _ACTIVE_TEMPS: our own earlier write, aborted without cleaning up
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_ACTIVE_TEMPS: set[str] = set()  # temporary files this process is writing now
_ACTIVE_LOCK = threading.Lock()


#: A piece at least this large is synced to the disk by its writer thread, not at commit.
EARLY_SYNC_BYTES = 16 << 20


class _OnThread:
    """``func(*args)`` on a thread of its own: the entry's slow parts (writing a piece, reading
    it back for the checksum) overlap the caller's next work or its wait for the disk.

    :meth:`wait` gives the error once the call has ended (``value`` holds its result). A
    Ctrl-C meanwhile is raised after the call ends, so that the caller never closes or
    deletes the file under the thread."""

    def __init__(self, name: str, func: Any, *args: Any) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(func, args), name=name, daemon=True)
        self._thread.start()

    def _run(self, func: Any, args: tuple) -> None:
        try:
            self.value = func(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by wait()
            self.error = exc

    def wait(self) -> BaseException | None:
        interrupted = None
        while True:
            try:
                self._thread.join()
                break
            except KeyboardInterrupt as exc:
                interrupted = exc
        if interrupted is not None:
            raise interrupted
        return self.error


def _write_piece(f: Any, piece: np.ndarray) -> None:
    """One piece written to the entry's file (on a thread: the copy into the page cache, 0.45 s
    for 220 MB here, overlaps the making of the next piece). A large piece is also flushed
    to the disk there, so that the commit's sync has little left; a small one is not (the
    commit syncs it anyway, and a sync per small piece would double them)."""
    write_piece(f, zero_padding(np.ascontiguousarray(piece)))
    if piece.nbytes >= EARLY_SYNC_BYTES:
        f.flush()
        getattr(os, "fdatasync", os.fsync)(f.fileno())


class EntryWriter:
    """Writes one cache entry piece by piece, so an entry larger than memory can be made.

    Pieces are appended to a temporary file behind a reserved ``.npy`` header
    (rows along the first axis, same dtype and row shape); :meth:`commit`
    writes the header, syncs, checksums and moves the file into place, then
    writes the JSON that commits the entry. Until then nothing is visible: an
    error, a Ctrl-C or a kill leaves no entry (the temporary file is removed,
    or cleaned as stale by the next writer). Use it as a context manager: an
    exception inside aborts, a clean exit commits; ``result`` is then the
    committed entry as a read-only memory map.

    With more than one kernel thread (:func:`~waveform_analysis.parallel.n_threads`)
    a piece is written by a thread while the caller makes the next one: at
    most one piece is being written (:meth:`append` first waits for the one
    before), so memory stays within two pieces, and a piece must not be
    changed once appended. A failed write is raised by the next
    :meth:`append` or by :meth:`commit`, and nothing of the entry is kept.

    A producer that makes its rows itself can make them where they go:
    :meth:`slot` maps the entry's next rows of the file, and appending that
    array writes nothing more (no copy through a buffer of the producer's own,
    and the pages it fills are the page cache's).
    """

    def __init__(
        self, storage: CacheStorage, run_id: str, data_name: str, key: str, meta: dict[str, Any]
    ) -> None:
        self.storage = storage
        self.run_id, self.data_name, self.key, self.meta = run_id, data_name, key, meta
        self.npy, self.meta_path = storage.paths(run_id, data_name, key)
        self.folder = self.npy.parent
        self.dtype: np.dtype | None = None
        self.row_shape: tuple[int, ...] | None = None
        self.rows = 0
        self.scalar = False
        self.result: np.ndarray | None = None
        self._file: Any = None
        self._tmp: Path | None = None
        self._header_size = 0
        self._pending: _OnThread | None = None
        self._threaded = n_threads() > 1
        self._nbytes = 0  # bytes of rows appended so far
        self._slot: tuple[int, int] | None = None  # address and length in bytes of the open slot

    def __enter__(self) -> EntryWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def _open(self, dtype: np.dtype) -> None:
        self._header_size = len(npy_header(dtype, LARGEST_SHAPE + (self.row_shape or ())))
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._tmp = temp_path(self.npy)
            with _ACTIVE_LOCK:
                _ACTIVE_TEMPS.add(str(self._tmp))
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            fd = os.open(self._tmp, flags, 0o666)  # 0o666 honours the umask (a group-shared cache)
            self._file = os.fdopen(fd, "w+b")
            self._file.write(b"\0" * self._header_size)
            self._file.flush()
        except OSError as exc:
            self.abort()
            raise self._write_error(exc) from exc

    def slot(self, n_rows: int, dtype: np.dtype) -> np.ndarray:
        """A writable array of ``n_rows`` rows of ``dtype`` mapped from the entry's file where its
        next rows go, for the caller to fill and :meth:`append` (before asking for another).

        Appending it writes nothing more; an array appended instead of it is written over
        it, and a slot never appended leaves nothing in the entry."""
        dtype = np.dtype(dtype)
        if self.dtype is None:
            self.dtype, self.row_shape = dtype, ()
            self._open(dtype)
        elif dtype != self.dtype or self.row_shape != ():
            return np.empty(n_rows, dtype)  # append will say what does not fit
        nbytes = n_rows * dtype.itemsize
        if nbytes == 0:
            return np.empty(0, dtype)
        try:  # a piece being written meanwhile (on a thread) lies before these rows
            start = self._header_size + self._nbytes
            os.ftruncate(self._file.fileno(), max(start + nbytes, os.fstat(self._file.fileno()).st_size))
            base = start - start % mmap.ALLOCATIONGRANULARITY
            mm = mmap.mmap(self._file.fileno(), start + nbytes - base, offset=base)
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise self._write_error(exc) from exc
            raise
        rows = np.frombuffer(mm, dtype, n_rows, start - base)  # the map lives as long as the array
        self._slot = (rows.__array_interface__["data"][0], nbytes)
        return rows

    def append(self, piece: np.ndarray) -> None:
        """Add rows (a piece of the entry's first axis) at the end of the entry."""
        if self.result is not None or self.scalar:
            raise CacheError(f"cache entry {self.npy}: append after the last piece")
        check_array(piece, f"cannot cache {self.data_name!r}: a piece is")
        if self.dtype is None:
            if piece.ndim == 0:
                self.scalar = True
            self.dtype = piece.dtype
            self.row_shape = tuple(piece.shape[1:])
            self._open(piece.dtype)
        elif piece.dtype != self.dtype or tuple(piece.shape[1:]) != self.row_shape or piece.ndim == 0:
            self.abort()
            raise CacheError(
                f"cannot cache {self.data_name!r}: a piece of dtype {piece.dtype} and shape "
                f"{piece.shape} does not continue the earlier ones (dtype {self.dtype}, rows of "
                f"shape {self.row_shape})"
            )
        slot, self._slot = self._slot, None
        in_place = slot is not None and piece.ndim == 1 and slot == (
            piece.__array_interface__["data"][0], piece.nbytes) and piece.flags.c_contiguous
        try:
            if in_place:  # in the file already; synced by the commit (a sync meanwhile, on a
                # thread of its own, slowed the making of the next slots more than it saved)
                zero_padding(piece)
                self.rows += len(piece)
                self._nbytes += piece.nbytes
                return
            self._finish_pending()
            self._file.seek(self._header_size + self._nbytes)
            if self._threaded:
                self._pending = _OnThread("cache-writer", _write_piece, self._file, piece)
            else:
                write_piece(self._file, zero_padding(np.ascontiguousarray(piece)))
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise self._write_error(exc) from exc
            raise
        self.rows += 1 if piece.ndim == 0 else len(piece)
        self._nbytes += piece.nbytes

    def _finish_pending(self) -> None:
        """Wait for the piece being written, raising its write's error."""
        pending, self._pending = self._pending, None
        if pending is not None and (error := pending.wait()) is not None:
            raise error

    def _write_error(self, exc: OSError) -> CacheWriteError:
        return CacheWriteError(
            exc.errno, f"could not write cache entry {self.npy} ({exc.strerror or exc}); nothing was kept"
        )

    def abort(self) -> None:
        """Forget what was written: no entry, no temporary file."""
        pending, self._pending = self._pending, None
        try:
            if pending is not None:
                pending.wait()  # its error, if any, is moot: nothing is kept
        finally:  # a Ctrl-C while waiting is raised once the file is gone
            self._discard()

    def _discard(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            with _ACTIVE_LOCK:
                _ACTIVE_TEMPS.discard(str(self._tmp))
            self._tmp = None

    def commit(self) -> np.ndarray:
        """Write the header, sync, checksum, move into place and commit the JSON; the entry's memory map."""
        if self.result is not None:
            return self.result
        if self.dtype is None:  # no piece: an empty entry of no known type
            self.append(np.zeros(0))
        shape = () if self.scalar else (self.rows, *self.row_shape)
        try:
            try:
                self._finish_pending()
                f = self._file
                f.seek(0)
                f.write(npy_header(self.dtype, shape, self._header_size))
                f.flush()
                f.truncate(self._header_size + self._nbytes)  # a slot not appended leaves nothing
                # read back from the page cache while the disk syncs
                summing = _OnThread("cache-checksum", file_checksum, self._tmp)
                try:
                    os.fsync(f.fileno())
                    f.close()
                    self._file = None
                finally:
                    error = summing.wait()  # (the sync's own error, if any, goes first)
                if error is not None:
                    raise error
                size = self._tmp.stat().st_size
                checksum = summing.value
                with folder_lock(self.folder):
                    remove_stale_temps(self.folder, self.npy.name, self.meta_path.name)
                    os.replace(self._tmp, self.npy)
                    with _ACTIVE_LOCK:
                        _ACTIVE_TEMPS.discard(str(self._tmp))
                    self._tmp = None
                    self._write_meta(size, checksum, shape)
            except BaseException:
                self.abort()
                raise
        except CacheError:
            raise
        except OSError as exc:  # disk full, permissions, ...: nothing of the entry is kept
            raise self._write_error(exc) from exc
        loaded = self.storage.load(self.run_id, self.data_name, self.key, verify=False)
        if loaded is None:  # pragma: no cover - a concurrent delete
            raise CacheError(f"cache entry {self.npy} vanished right after it was written")
        self.result = loaded
        return loaded

    def _write_meta(self, size: int, checksum: str, shape: tuple[int, ...]) -> None:
        record = {
            "key": self.key,
            "data_name": self.data_name,
            "run_id": self.run_id,
            **self.meta,
            "dtype": descr_json(self.dtype),
            "shape": list(shape),
            "file_size": size,
            "checksum": checksum,
            "checksum_algorithm": CHECKSUM_ALGORITHM,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        payload = json.dumps(record, indent=1, default=repr).encode()
        tmp = temp_path(self.meta_path)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
            os.replace(tmp, self.meta_path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            self.npy.unlink(missing_ok=True)  # data without its metadata is no entry
            raise
