"""``raw_files``: the table of digitizer files of a run (channel, board, segment, relative path)."""

from __future__ import annotations

import hashlib
import os

import numpy as np

from ..core.plugin import Option, Plugin

__all__ = ["RawFilesPlugin"]


class RawFilesPlugin(Plugin):
    """Lists the run's files with the configured DAQ adapter.

    Not saved to the cache (listing is cheap); its fingerprint (relative
    names, sizes and modification times of the files) enters every
    downstream key, so a changed or replaced file invalidates the cache,
    while moving the whole data folder elsewhere does not.
    """

    provides = "raw_files"
    depends_on = ()
    version = "1.0.0"
    save_to_cache = False
    options = {
        "daq_adapter": Option(
            default="vx2730", type=str, help="Digitizer file format: 'vx2730' or 'v1725'"
        ),
    }

    def _files(self, context, run_id: str) -> np.ndarray:
        from ..daq import get_adapter

        adapter = get_adapter(context.get_config(self, "daq_adapter"))
        return adapter.list_files(context.data_root, run_id)

    def fingerprint(self, context, run_id: str) -> str:
        files = self._files(context, run_id)
        root = context.data_root
        h = hashlib.sha256()
        for rel in files["path"]:
            st = os.stat(root / str(rel))
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()

    def compute(self, context, run_id: str) -> np.ndarray:
        return self._files(context, run_id)
