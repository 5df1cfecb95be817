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
        return False  # our own earlier write of this entry: we hold its lock now, so it is over
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _descr_json(dtype: np.dtype) -> Any:
    return json.loads(json.dumps(np.lib.format.dtype_to_descr(dtype)))


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
        if self.readonly:
            raise CacheError(f"cache {self.root} is read-only; cannot write {data_name!r}")
        if array.dtype.hasobject:
            raise CacheError(
                f"cannot cache {data_name!r}: dtype {array.dtype} holds Python objects "
                "(the cache stores plain numpy data only and never pickles)"
            )
        folder = self.root / run_id
        npy, meta_path = self.paths(run_id, data_name, key)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with _folder_lock(folder):
                _remove_stale_temps(folder, npy.name, meta_path.name)
                self._commit(folder, run_id, data_name, key, array, meta, npy, meta_path)
        except CacheError:
            raise
        except OSError as exc:  # disk full, permissions, ...: nothing of the entry is kept
            raise CacheWriteError(
                exc.errno, f"could not write cache entry {npy} ({exc.strerror or exc}); nothing was kept"
            ) from exc
        loaded = self.load(run_id, data_name, key, verify=False)  # hashed a moment ago
        if loaded is None:  # pragma: no cover - a concurrent delete
            raise CacheError(f"cache entry {npy} vanished right after it was written")
        return loaded

    def _commit(self, folder, run_id, data_name, key, array, meta, npy: Path, meta_path: Path) -> None:
        """Write the data file, then the metadata that commits it (the caller holds the entry lock)."""
        tmp_npy = self._write_tmp(
            folder, npy.name, lambda f: np.save(f, array, allow_pickle=False), sync=True
        )
        try:
            size = tmp_npy.stat().st_size
            checksum = file_checksum(tmp_npy)  # just written: read back from the page cache
            os.replace(tmp_npy, npy)
        except BaseException:
            tmp_npy.unlink(missing_ok=True)
            raise
        record = {
            "key": key,
            "data_name": data_name,
            "run_id": run_id,
            **meta,
            "dtype": _descr_json(array.dtype),
            "shape": list(array.shape),
            "file_size": size,
            "checksum": checksum,
            "checksum_algorithm": CHECKSUM_ALGORITHM,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        payload = json.dumps(record, indent=1, default=repr).encode()
        tmp_meta = self._write_tmp(folder, meta_path.name, lambda f: f.write(payload), sync=False)
        try:
            os.replace(tmp_meta, meta_path)
        except BaseException:
            tmp_meta.unlink(missing_ok=True)
            raise

    @staticmethod
    def _write_tmp(folder: Path, final_name: str, write, sync: bool) -> Path:
        # os.open with mode 0o666 honours the umask (mkstemp would force 0o600,
        # which breaks a cache folder shared by a group).
        tmp_path = folder / f".{final_name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
        fd = os.open(
            tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666
        )
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                if sync:
                    f.flush()
                    os.fsync(f.fileno())
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
        return tmp_path

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
