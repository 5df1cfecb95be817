"""``raw_files``: the table of digitizer files of a run (channel, board, segment, relative path).

Also home of the options every reader of the run shares (``daq_adapter``,
``daq_folder``, ``dt_ns``, ``wavedump_config``, ``board_model``); how a Context resolves them to an adapter, the run's
files and its RunInfo is :mod:`waveform_analysis.daq.runs` (re-exported here).
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

import numpy as np

from ..core.plugin import Option, Plugin
from ..daq.runs import RUN_OPTION_DEFAULTS, adapter_for, list_files, run_info_for
from ..dtypes import RAW_FILES_DTYPE
from ..errors import MissingFileError

__all__ = [
    "RawFilesPlugin",
    "adapter_for",
    "files_digest",
    "list_files",
    "run_info_for",
    "stamp_files",
]

# The listing each thread fingerprinted last, per (data_root, run, plugin, options): the
# Context computes the keys and then, in the same thread, the data, so ``compute`` hands
# out exactly the table (sizes included) that the key was made from.
_LISTED = threading.local()
_LISTED_KEEP = 8  # between a key and its data a thread lists one run; a few spare


class RawFilesPlugin(Plugin):
    """Lists the run's files with the configured DAQ adapter (``"auto"``: the run's format).

    Not saved to the cache (listing is cheap); its fingerprint (relative
    names, sizes and modification times of the files and of the settings
    files the adapter reads, such as CoMPASS's ``settings.xml``) enters every
    downstream key, so a changed or replaced file invalidates the cache,
    while moving the whole data folder elsewhere does not.

    The table records each file's ``size`` and ``mtime`` as fingerprinted and
    the readers read no byte past ``size``, so a file the digitizer is still
    writing is cached under the key of what was actually read: rows appended
    after the keys were made wait for the next key (see docs/online.md).
    """

    provides = "raw_files"
    dtype = RAW_FILES_DTYPE
    depends_on = ()
    version = "1.2.0"
    save_to_cache = False
    options = {
        "daq_adapter": Option(
            default=RUN_OPTION_DEFAULTS["daq_adapter"],
            type=str,
            help="Digitizer file format: 'auto' (recognised per run), 'compass', 'vx2730',"
            " 'v1725', or a registered adapter's name",
        ),
        "daq_folder": Option(
            default=RUN_OPTION_DEFAULTS["daq_folder"],
            type=str,
            help="CoMPASS folder to read: 'auto' (RAW, UNFILTERED, FILTERED: the first that"
            " exists), 'raw' (RAW, else UNFILTERED), 'filtered' or 'unfiltered'",
        ),
        "dt_ns": Option(
            default=RUN_OPTION_DEFAULTS["dt_ns"],
            type=(float, int, type(None)),
            per_channel=True,
            help="Sample period [ns] of runs whose settings and board model do not state it"
            " (in the channels table: that channel's, before the run's)",
        ),
        "wavedump_config": Option(
            default=RUN_OPTION_DEFAULTS["wavedump_config"], type=(str, type(None)),
            help="WaveDump config file of WaveDump runs (absolute, or in the run folder or"
            " data_root; None: WaveDumpConfig*.txt found beside the files)",
        ),
        "board_model": Option(
            default=RUN_OPTION_DEFAULTS["board_model"], type=(str, type(None)),
            help="Board model (e.g. 'DT5730') of WaveDump runs and readout dumps, and of CoMPASS"
            " runs whose names and settings name none; sets the sample period and ADC bits",
        ),
    }

    def _where(self, context, run_id: str) -> tuple:
        options = tuple(context.get_config(self, name) for name in sorted(self.options))
        return (str(context.data_root), run_id, type(self).__qualname__, options)

    def listing(self, context, run_id: str, adapter: Any = None) -> np.ndarray:
        """The run's files as they are now: the table with each file's ``size`` and ``mtime``."""
        return stamp_files(context.data_root, run_id, list_files(context, run_id, adapter))

    def fingerprint(self, context, run_id: str) -> str:
        adapter = adapter_for(context, run_id)
        files = self.listing(context, run_id, adapter)
        listed = _LISTED.__dict__.setdefault("tables", {})
        listed.pop(where := self._where(context, run_id), None)
        listed[where] = files
        while len(listed) > _LISTED_KEEP:
            del listed[next(iter(listed))]
        root = context.data_root
        settings = np.zeros(0, files.dtype)
        rels = [os.path.relpath(p, root) for p in adapter.settings_files(root, run_id, files)]
        if rels:
            settings = np.zeros(len(rels), files.dtype)
            settings["path"] = rels
            settings = stamp_files(root, run_id, settings)
        return files_digest(np.concatenate([files, settings]))

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
