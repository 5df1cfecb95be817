"""``raw_files``: the table of digitizer files of a run (channel, board, segment, relative path)."""

from __future__ import annotations

import hashlib
import inspect
import os

import numpy as np

from ..core.plugin import Option, Plugin
from ..dtypes import RAW_FILES_DTYPE
from ..errors import ConfigError, MissingFileError

__all__ = ["RawFilesPlugin"]


class RawFilesPlugin(Plugin):
    """Lists the run's files with the configured DAQ adapter.

    Not saved to the cache (listing is cheap); its fingerprint (relative
    names, sizes and modification times of the files) enters every
    downstream key, so a changed or replaced file invalidates the cache,
    while moving the whole data folder elsewhere does not.
    """

    provides = "raw_files"
    dtype = RAW_FILES_DTYPE
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

    def fingerprint(self, context, run_id: str) -> str:
        files = self._files(context, run_id)
        root = context.data_root
        h = hashlib.sha256()
        for rel in files["path"]:
            try:
                st = os.stat(root / str(rel))
            except FileNotFoundError:
                raise MissingFileError(
                    f"run {run_id!r}: file {rel} was listed for the run but no longer exists"
                ) from None
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()

    def compute(self, context, run_id: str) -> np.ndarray:
        return self._files(context, run_id)
