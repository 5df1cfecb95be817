"""On-disk cache: one ``.npy`` plus one ``.json`` per (run, data name, key).

Layout: ``<storage_dir>/<run_id>/<data_name>-<key>.npy`` and ``.json``.

* Writes are atomic: each file is written to a temporary name in the same
  folder and moved into place with :func:`os.replace`; the JSON goes last and
  is the commit marker (no JSON, no entry). Writers of one run's entries take turns
  (an advisory lock on the run's folder), so two processes computing the same key at once
  cannot pair one's data with the other's metadata. A write that fails (disk
  full) leaves nothing behind and raises :class:`CacheWriteError` naming the
  entry; temporary files left by a writer that was killed are removed on the
  next write of that entry and by ``cache clear``.
* Reads never unpickle: ``np.load(mmap_mode="r", allow_pickle=False)``.
* An entry whose file size, header, dtype or shape disagree with its JSON is
  logged, deleted and reported as missing, so the caller recomputes it.
* Each JSON stores ``checksum``, the xxh3-128 digest of the ``.npy`` bytes
  (``checksum_algorithm``; entries written with BLAKE2b still verify). Checking it reads the whole file, so loads check it only with
  ``verify=True``; :func:`verify_entry` / :func:`verify_folder` check on demand
  (``waveform-analysis cache DIR verify``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

from ..errors import CacheError, CacheWriteError, ConfigError

__all__ = ["CacheStorage", "EntryCheck", "check_run_id", "file_checksum", "verify_entry", "verify_folder"]

CHECKSUM_ALGORITHM = "xxh3-128"
_CHUNK = 1 << 22

# numpy parses .npy headers with ast.literal_eval, which Python 3.11 does not make
# safe to call from several threads at once (a SystemError about the AST recursion
# depth): one header at a time, so a sound entry is never taken for a corrupt one.
_HEADER_LOCK = threading.Lock()


def load_npy(path: str | os.PathLike[str]) -> np.ndarray:
    """``np.load(path, mmap_mode="r", allow_pickle=False)``, safe to call from any thread."""
    with _HEADER_LOCK:
        return np.load(path, mmap_mode="r", allow_pickle=False)


def _hasher(algorithm: str) -> Any:
    if algorithm == "xxh3-128":
        import xxhash

        return xxhash.xxh3_128()
    if algorithm == "blake2b-128":  # entries written before xxh3 was used
        return hashlib.blake2b(digest_size=16)
    raise CacheError(f"unknown checksum algorithm {algorithm!r} in cache metadata")


def file_checksum(path: str | os.PathLike[str], algorithm: str = CHECKSUM_ALGORITHM) -> str:
    """Hex digest of the file's bytes, read in 4 MiB chunks (xxh3-128 by default).

    xxh3 hashes about 7 GB/s here against 0.65 GB/s for BLAKE2b: the checksum of
    a freshly written entry costs a few milliseconds, not a tenth of its write.
    It detects corruption, not tampering (a cache folder is trusted by its users)."""
    h = _hasher(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class EntryCheck:
    """The outcome of checking one cache entry against its stored checksum.

    ``status`` is ``"ok"``, ``"mismatch"`` (bytes changed), ``"size"`` (file
    size differs), ``"missing"`` (no data file), ``"unchecked"`` (written
    before checksums were stored) or ``"unreadable"`` (bad JSON).
    """

    run_id: str
    data_name: str
    key: str
    npy: Path
    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Whether nothing is wrong with the entry (an unchecked entry counts as fine)."""
        return self.status in ("ok", "unchecked")


def verify_entry(meta_path: str | os.PathLike[str]) -> EntryCheck:
    """Check the ``.npy`` of the entry whose JSON is ``meta_path`` against its checksum."""
    meta_path = Path(meta_path)
    npy = meta_path.with_suffix(".npy")
    run_id = meta_path.parent.name
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        return EntryCheck(run_id, meta_path.stem, "", npy, "unreadable", str(exc))
    name, key = str(meta.get("data_name", "")), str(meta.get("key", ""))
    try:
        size = npy.stat().st_size
    except FileNotFoundError:
        return EntryCheck(run_id, name, key, npy, "missing", "no data file")
    if size != meta.get("file_size"):
        return EntryCheck(run_id, name, key, npy, "size", f"{size} bytes, metadata says {meta.get('file_size')}")
    stored = meta.get("checksum")
    if not stored:
        return EntryCheck(run_id, name, key, npy, "unchecked", "no checksum stored")
    try:
        actual = file_checksum(npy, meta.get("checksum_algorithm", "blake2b-128"))
    except CacheError as exc:
        return EntryCheck(run_id, name, key, npy, "unreadable", str(exc))
    if actual != stored:
        return EntryCheck(run_id, name, key, npy, "mismatch", f"checksum {actual}, metadata says {stored}")
    return EntryCheck(run_id, name, key, npy, "ok")


def verify_folder(root: str | os.PathLike[str], run_id: str | None = None) -> list[EntryCheck]:
    """:func:`verify_entry` for every entry under the cache folder ``root`` (or one run)."""
    root = Path(root)
    pattern = f"{run_id}/*.json" if run_id else "*/*.json"
    return [verify_entry(p) for p in sorted(root.glob(pattern)) if not p.name.startswith(".")]


def check_run_id(run_id: Any) -> str:
    """``run_id`` as a string usable as one folder name (ConfigError otherwise)."""
    if not isinstance(run_id, str) or not run_id:
        raise ConfigError(f"run_id must be a non-empty string, got {run_id!r}")
    if run_id in (".", "..") or "/" in run_id or "\\" in run_id or "\0" in run_id:
        raise ConfigError(f"run_id {run_id!r} must not contain path separators or be '.'/'..'")
    return run_id


#: A temporary file whose writer cannot be checked (another host) is stale after this long.
STALE_TEMP_SECONDS = 3600


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
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


def _remove_stale_temps(folder: Path, *final_names: str) -> None:
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


def _descr_json(dtype: np.dtype) -> Any:
    return json.loads(json.dumps(np.lib.format.dtype_to_descr(dtype)))


_ACTIVE_TEMPS: set[str] = set()  # temporary files this process is writing now
_ACTIVE_LOCK = threading.Lock()
_LARGEST_SHAPE = (10**15,)  # the header is sized for this many rows, then padded to fit


def _npy_header(dtype: np.dtype, shape: tuple[int, ...], size: int | None = None) -> bytes:
    """A ``.npy`` version 2.0 header for a C-ordered array, padded with spaces to ``size`` bytes.

    numpy pads its own headers the same way; a fixed size lets a writer reserve the
    header before it knows how many rows it will write, and fill it in at the end."""
    import io

    buf = io.BytesIO()
    d = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    try:
        np.lib.format.write_array_header_2_0(buf, d)
        prefix, text = buf.getvalue()[:12], buf.getvalue()[12:]
    except UnicodeEncodeError:  # field titles beyond latin-1: the utf-8 variant of the format
        np.lib.format._write_array_header(buf, d, (3, 0))
        prefix, text = buf.getvalue()[:12], buf.getvalue()[12:]
    text = text.rstrip(b" \n")
    if size is None:
        size = -(-(12 + len(text) + 1) // 64) * 64
    pad = size - 12 - len(text) - 1
    if pad < 0:  # pragma: no cover - a shape beyond _LARGEST_SHAPE
        raise CacheError(f"array shape {shape} does not fit the reserved .npy header")
    return prefix[:8] + (size - 12).to_bytes(4, "little") + text + b" " * pad + b"\n"


def _write_piece(f: Any, piece: np.ndarray) -> None:
    """Append the bytes of a C-contiguous array to an open file."""
    if piece.nbytes:
        f.write(memoryview(piece.reshape(-1).view(np.uint8)))


@functools.lru_cache(maxsize=64)
def _padding(dtype: np.dtype) -> tuple[tuple[int, int], ...]:
    """Byte ranges of a structured dtype that belong to no field (alignment padding)."""
    if dtype.fields is None:
        return ()
    taken = sorted((off, off + dt.itemsize) for dt, off, *_ in dtype.fields.values())
    gaps, pos = [], 0
    for a, b in taken:
        if a > pos:
            gaps.append((pos, a))
        pos = max(pos, b)
    if pos < dtype.itemsize:
        gaps.append((pos, dtype.itemsize))
    return tuple(gaps)


def _zero_padding(piece: np.ndarray) -> np.ndarray:
    """``piece`` (C-contiguous) with its padding bytes zeroed.

    numpy copies structured arrays field by field and leaves padding
    uninitialised: written as it is, a cache file would hold stray bytes of
    this process's memory and differ from run to run."""
    gaps = _padding(piece.dtype)
    if not gaps or piece.size == 0:
        return piece
    if not piece.flags.writeable:
        piece = piece.copy()
    raw = piece.reshape(-1).view(np.uint8).reshape(piece.size, piece.dtype.itemsize)
    for a, b in gaps:
        raw[:, a:b] = 0
    return piece


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
    """

    def __init__(self, storage: CacheStorage, run_id: str, data_name: str, key: str,
                 meta: dict[str, Any]) -> None:  # fmt: skip
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

    def __enter__(self) -> EntryWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def _open(self, dtype: np.dtype) -> None:
        self._header_size = len(_npy_header(dtype, _LARGEST_SHAPE + (self.row_shape or ())))
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._tmp = self.folder / f".{self.npy.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
            with _ACTIVE_LOCK:
                _ACTIVE_TEMPS.add(str(self._tmp))
            fd = os.open(self._tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)  # fmt: skip - 0o666 honours the umask (a group-shared cache)
            self._file = os.fdopen(fd, "w+b")
            self._file.write(b"\0" * self._header_size)
        except OSError as exc:
            self.abort()
            raise self._write_error(exc) from exc

    def append(self, piece: np.ndarray) -> None:
        """Add rows (a piece of the entry's first axis) at the end of the entry."""
        if self.result is not None or self.scalar:
            raise CacheError(f"cache entry {self.npy}: append after the last piece")
        if not isinstance(piece, np.ndarray):
            raise CacheError(f"cannot cache {self.data_name!r}: a piece is {type(piece).__name__}, not an array")
        if piece.dtype.hasobject:
            raise CacheError(
                f"cannot cache {self.data_name!r}: dtype {piece.dtype} holds Python objects "
                "(the cache stores plain numpy data only and never pickles)"
            )
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
        try:
            _write_piece(self._file, _zero_padding(np.ascontiguousarray(piece)))
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise self._write_error(exc) from exc
            raise
        self.rows += 1 if piece.ndim == 0 else len(piece)

    def _write_error(self, exc: OSError) -> CacheWriteError:
        return CacheWriteError(
            exc.errno, f"could not write cache entry {self.npy} ({exc.strerror or exc}); nothing was kept"
        )

    def abort(self) -> None:
        """Forget what was written: no entry, no temporary file."""
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
                f = self._file
                f.seek(0)
                f.write(_npy_header(self.dtype, shape, self._header_size))
                f.flush()
                os.fsync(f.fileno())
                f.close()
                self._file = None
                size = self._tmp.stat().st_size
                checksum = file_checksum(self._tmp)  # just written: read back from the page cache
                with _folder_lock(self.folder):
                    _remove_stale_temps(self.folder, self.npy.name, self.meta_path.name)
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
            "dtype": _descr_json(self.dtype),
            "shape": list(shape),
            "file_size": size,
            "checksum": checksum,
            "checksum_algorithm": CHECKSUM_ALGORITHM,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        payload = json.dumps(record, indent=1, default=repr).encode()
        tmp = self.folder / f".{self.meta_path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
            os.replace(tmp, self.meta_path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            self.npy.unlink(missing_ok=True)  # data without its metadata is no entry
            raise


class CacheStorage:
    """The cache folder of a Context."""

    def __init__(
        self, root: str | os.PathLike[str], *, readonly: bool = False, verify: bool = False
    ) -> None:
        self.root = Path(root)
        self.readonly = readonly
        self.verify_on_load = verify

    def __repr__(self) -> str:
        extra = ", verify=True" if self.verify_on_load else ""
        return f"CacheStorage({str(self.root)!r}, readonly={self.readonly}{extra})"

    def verify(self, run_id: str, data_name: str, key: str) -> EntryCheck:
        """Check one entry's ``.npy`` bytes against the checksum in its JSON."""
        return verify_entry(self.paths(run_id, data_name, key)[1])

    def paths(self, run_id: str, data_name: str, key: str) -> tuple[Path, Path]:
        base = self.root / run_id / f"{data_name}-{key}"
        return base.with_name(base.name + ".npy"), base.with_name(base.name + ".json")

    # -- reading -----------------------------------------------------------------

    def has(self, run_id: str, data_name: str, key: str) -> bool:
        """Whether a committed entry exists with a data file of the recorded size (no load)."""
        npy, meta_path = self.paths(run_id, data_name, key)
        try:
            meta = json.loads(meta_path.read_text())
            return npy.stat().st_size == int(meta["file_size"])
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def load(
        self, run_id: str, data_name: str, key: str, *, verify: bool | None = None
    ) -> np.ndarray | None:
        """The cached array as a read-only memory map, or None (missing or corrupt).

        ``verify`` (default: the storage's ``verify_on_load``) also compares the
        bytes with the stored checksum; a mismatch counts as a corrupt entry.
        """
        if verify is None:
            verify = self.verify_on_load
        npy, meta_path = self.paths(run_id, data_name, key)
        try:
            text = meta_path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning(f"cache entry {meta_path} unreadable ({exc}); recomputing")
            return None
        try:
            meta = json.loads(text)
            if meta.get("key") != key or meta.get("data_name") != data_name:
                raise ValueError("metadata names another entry")
            size = npy.stat().st_size
            if size != int(meta["file_size"]):
                raise ValueError(f"data file holds {size} bytes, metadata says {meta['file_size']}")
            arr = load_npy(npy)
            if list(arr.shape) != list(meta["shape"]):
                raise ValueError(f"shape {arr.shape} differs from metadata {meta['shape']}")
            if _descr_json(arr.dtype) != meta["dtype"]:
                raise ValueError("dtype differs from metadata")
            if verify and meta.get("checksum"):
                actual = file_checksum(npy, meta.get("checksum_algorithm", "blake2b-128"))
                if actual != meta["checksum"]:
                    raise ValueError(f"checksum {actual} differs from metadata {meta['checksum']}")
        except FileNotFoundError:
            logger.warning(f"cache entry {meta_path} has no data file; recomputing")
            self._remove(npy, meta_path)
            return None
        except (SystemError, MemoryError, RecursionError):  # the interpreter's trouble, not the entry's
            raise
        except Exception as exc:  # any failure to read means: not a usable entry
            logger.warning(f"corrupt cache entry {npy} ({exc}); deleting and recomputing")
            self._remove(npy, meta_path)
            return None
        return arr

    # -- writing -----------------------------------------------------------------

    def save(
        self,
        run_id: str,
        data_name: str,
        key: str,
        array: np.ndarray,
        meta: dict[str, Any],
    ) -> np.ndarray:
        """Write ``array`` atomically and return it re-opened as a read-only memory map."""
        with self.writer(run_id, data_name, key, meta) as w:
            w.append(array)
        return w.result

    def writer(self, run_id: str, data_name: str, key: str, meta: dict[str, Any]) -> EntryWriter:
        """An :class:`EntryWriter` for one entry: append its pieces, then commit (or abort)."""
        if self.readonly:
            raise CacheError(f"cache {self.root} is read-only; cannot write {data_name!r}")
        return EntryWriter(self, run_id, data_name, key, meta)

    # -- deleting ----------------------------------------------------------------

    def _remove(self, *paths: Path) -> None:
        if self.readonly:
            return
        for p in paths:
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.warning(f"could not delete cache file {p}: {exc}")

    def delete(self, run_id: str, data_name: str | None = None) -> int:
        """Delete the entries of ``run_id`` (all, or those of ``data_name``); number of files removed."""
        folder = self.root / run_id
        if self.readonly or not folder.is_dir():
            return 0
        n = 0
        for p in folder.iterdir():
            name = p.name
            if name.startswith("."):
                stem = name[1:]
            else:
                stem = name
            if data_name is not None and not stem.startswith(f"{data_name}-"):
                continue
            if data_name is not None:
                # "<data_name>-<key>.<ext>": the rest must be exactly one key part
                rest = stem[len(data_name) + 1 :]
                if "-" in rest.split(".")[0]:
                    continue
            if p.is_file():
                self._remove(p)
                n += 1
        if data_name is None:
            try:
                folder.rmdir()
            except OSError:
                pass
        return n

    def entries(self, run_id: str) -> list[dict[str, Any]]:
        """Metadata of every committed entry of ``run_id``."""
        folder = self.root / run_id
        out = []
        if folder.is_dir():
            for p in sorted(folder.glob("*.json")):
                try:
                    out.append(json.loads(p.read_text()))
                except (OSError, ValueError):
                    continue
        return out
