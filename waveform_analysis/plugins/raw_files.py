"""``raw_files``: the table of digitizer files of a run (channel, board, segment, relative path)."""

from __future__ import annotations

import hashlib
import inspect
import os
import threading

import numpy as np

from ..core.plugin import Option, Plugin
from ..errors import ConfigError, MissingFileError

__all__ = ["RawFilesPlugin", "files_digest", "stamp_files"]

# The listing each thread fingerprinted last, per (data_root, run, plugin, options): the
# Context computes the keys and then, in the same thread, the data, so ``compute`` hands
# out exactly the table (sizes included) that the key was made from.
_LISTED = threading.local()
_LISTED_KEEP = 8  # between a key and its data a thread lists one run; a few spare


class RawFilesPlugin(Plugin):
    """Lists the run's files with the configured DAQ adapter.

    Not saved to the cache (listing is cheap); its fingerprint (relative
    names, sizes and modification times of the files) enters every
    downstream key, so a changed or replaced file invalidates the cache,
    while moving the whole data folder elsewhere does not.

    The table records each file's ``size`` and ``mtime`` as fingerprinted and
    the readers read no byte past ``size``, so a file the digitizer is still
    writing is cached under the key of what was actually read: rows appended
    after the keys were made wait for the next key (see docs/online.md).
    """

    provides = "raw_files"
    depends_on = ()
    version = "1.1.0"
    save_to_cache = False
    options = {
        "daq_adapter": Option(
            default="vx2730", type=str, help="Digitizer file format: 'vx2730' or 'v1725'"
        ),
        "daq_folder": Option(
            default="raw",
            type=str,
            help="CoMPASS folder to read: 'raw' (RAW, else UNFILTERED), 'filtered' or 'unfiltered'",
        ),
    }

    def _files(self, context, run_id: str) -> np.ndarray:
        from ..daq import get_adapter

        adapter = get_adapter(context.get_config(self, "daq_adapter"))
        folder = context.get_config(self, "daq_folder")
        if folder == "raw":
            return adapter.list_files(context.data_root, run_id)
        if "folder" not in inspect.signature(adapter.list_files).parameters:
            raise ConfigError(
                f"option daq_folder={folder!r}: the {adapter.name!r} adapter reads one folder only"
            )
        return adapter.list_files(context.data_root, run_id, folder=folder)

    def _where(self, context, run_id: str) -> tuple:
        options = tuple(context.get_config(self, name) for name in sorted(self.options))
        return (str(context.data_root), run_id, type(self).__qualname__, options)

    def listing(self, context, run_id: str) -> np.ndarray:
        """The run's files as they are now: the table with each file's ``size`` and ``mtime``."""
        return stamp_files(context.data_root, run_id, self._files(context, run_id))

    def fingerprint(self, context, run_id: str) -> str:
        files = self.listing(context, run_id)
        listed = _LISTED.__dict__.setdefault("tables", {})
        listed.pop(where := self._where(context, run_id), None)
        listed[where] = files
        while len(listed) > _LISTED_KEEP:
            del listed[next(iter(listed))]
        return files_digest(files)

    def compute(self, context, run_id: str) -> np.ndarray:
        """The listing this thread's last key was made from (listed afresh if there is none)."""
        files = _LISTED.__dict__.get("tables", {}).pop(self._where(context, run_id), None)
        if files is None:
            files = self.listing(context, run_id)
        return files


def stamp_files(data_root, run_id: str, files: np.ndarray) -> np.ndarray:
    """``files`` with each file's current ``size`` and ``mtime`` (a copy): what the key covers."""
    out = files.copy()
    for i, rel in enumerate(files["path"]):
        try:
            st = os.stat(os.path.join(data_root, str(rel)))
        except FileNotFoundError:
            raise MissingFileError(
                f"run {run_id!r}: file {rel} was listed for the run but no longer exists"
            ) from None
        out["size"][i] = st.st_size
        out["mtime"][i] = st.st_mtime_ns
    return out


def files_digest(files: np.ndarray) -> str:
    """sha256 over (relative name, size, mtime) of every file: the fingerprint of a listing."""
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f['path']}\0{int(f['size'])}\0{int(f['mtime'])}\n".encode())
    return h.hexdigest()
