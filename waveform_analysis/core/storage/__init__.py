"""On-disk cache: one ``.npy`` plus one ``.json`` per (run, data name, key).

Layout: ``<storage_dir>/<run_id>/<data_name>-<key>.npy`` and ``.json``.

* Writes are atomic (:mod:`.entry`): each file is written to a temporary name
  in the same folder and moved into place with :func:`os.replace`; the JSON
  goes last and is the commit marker (no JSON, no entry). Writers of one run's
  entries take turns (an advisory lock on the run's folder), so two processes
  computing the same key at once cannot pair one's data with the other's
  metadata. A write that fails (disk full) leaves nothing behind and raises
  :class:`CacheWriteError` naming the entry; temporary files left by a writer
  that was killed are removed on the next write of that entry and by ``cache
  clear``.
* Reads never unpickle: ``np.load(mmap_mode="r", allow_pickle=False)``
  (:mod:`.npy`, which also writes the files piece by piece).
* An entry whose file size, header, dtype or shape disagree with its JSON is
  logged, deleted and reported as missing, so the caller recomputes it.
* Each JSON stores ``checksum``, the xxh3-128 digest of the ``.npy`` bytes
  (``checksum_algorithm``; entries written with BLAKE2b still verify). Checking
  it reads the whole file, so loads check it only with ``verify=True``;
  :func:`verify_entry` / :func:`verify_folder` check on demand (``waveform-analysis
  cache DIR verify``). Both go through one :func:`~.verify.check_entry`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

from ...errors import CacheError, ConfigError
from .entry import STALE_TEMP_SECONDS, EntryWriter, check_array
from .npy import descr_json, load_npy
from .verify import (
    CHECKSUM_ALGORITHM,
    EntryCheck,
    check_entry,
    file_checksum,
    verify_entry,
    verify_folder,
)

__all__ = [
    "CHECKSUM_ALGORITHM",
    "STALE_TEMP_SECONDS",
    "CacheStorage",
    "EntryCheck",
    "EntryWriter",
    "check_array",
    "check_run_id",
    "file_checksum",
    "load_npy",
    "verify_entry",
    "verify_folder",
]


def check_run_id(run_id: Any) -> str:
    """``run_id`` as a string usable as one folder name (ConfigError otherwise)."""
    if not isinstance(run_id, str) or not run_id:
        raise ConfigError(f"run_id must be a non-empty string, got {run_id!r}")
    if run_id in (".", "..") or "/" in run_id or "\\" in run_id or "\0" in run_id:
        raise ConfigError(f"run_id {run_id!r} must not contain path separators or be '.'/'..'")
    return run_id


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
            status, detail = check_entry(meta, npy, checksum=verify)
            if status == "missing":
                raise FileNotFoundError(npy)
            if status not in ("ok", "unchecked"):
                raise ValueError(detail)
            arr = load_npy(npy)
            if list(arr.shape) != list(meta["shape"]):
                raise ValueError(f"shape {arr.shape} differs from metadata {meta['shape']}")
            if descr_json(arr.dtype) != meta["dtype"]:
                raise ValueError("dtype differs from metadata")
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
