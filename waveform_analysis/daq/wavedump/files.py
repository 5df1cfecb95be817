"""Finding a WaveDump run's files: ``wave<c>.dat``, ``wave_<c>.dat``, x742 ``TR_<g>_<n>.dat``, ``wave<c>.txt``.

WaveDump writes into one output folder; a run is that folder
(``<data_root>/<run>/``), or its ``RAW`` sub-folder when the files are there.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ...errors import ConfigError, NoDataError, RunNotFoundError
from ..base import make_file_table

BINARY_RE = re.compile(r"^wave_?(\d+)\.dat$", re.IGNORECASE)
FAST_TRIGGER_RE = re.compile(r"^TR_(\d+)_(\d+)\.dat$", re.IGNORECASE)
ASCII_RE = re.compile(r"^wave_?(\d+)\.txt$", re.IGNORECASE)
PATTERN = "wave<c>.dat, wave_<c>.dat, TR_<g>_<n>.dat or wave<c>.txt"


def run_folder(data_root: Path | str, run_id: str) -> Path:
    """The folder holding the run's WaveDump files: the run folder, else its RAW folder."""
    run_dir = Path(data_root) / str(run_id)
    if not run_dir.is_dir():
        raise RunNotFoundError(f"run {run_id!r}: run folder {run_dir} does not exist")
    for folder in (run_dir, run_dir / "RAW"):
        if folder.is_dir() and any(file_kind(p.name) for p in folder.iterdir()):
            return folder
    return run_dir


def file_kind(name: str) -> str | None:
    """``"binary"`` or ``"ascii"`` for a WaveDump data file name, else None."""
    if BINARY_RE.match(name) or FAST_TRIGGER_RE.match(name):
        return "binary"
    if ASCII_RE.match(name):
        return "ascii"
    return None


def list_files(data_root: Path | str, run_id: str) -> tuple[np.ndarray, str]:
    """The run's files as ``RAW_FILES_DTYPE`` and their kind, ``"binary"`` or ``"ascii"``.

    ``channel`` is the number in the name (-1 for x742 fast-trigger files,
    whose records carry their channel, 8 for TR0, in the event header).
    """
    folder = run_folder(data_root, run_id)
    entries: dict[str, list] = {"binary": [], "ascii": []}
    for p in folder.iterdir():
        kind = file_kind(p.name)
        if not kind or not p.is_file():
            continue
        m = BINARY_RE.match(p.name) or ASCII_RE.match(p.name)
        if m:
            entries[kind].append((0, int(m.group(1)), 0, p))
        else:
            tr = FAST_TRIGGER_RE.match(p.name)
            entries[kind].append((0, -1, int(tr.group(1)) * 1000 + int(tr.group(2)), p))
    if entries["binary"] and entries["ascii"]:
        raise ConfigError(
            f"run {run_id!r}: {folder} holds both WaveDump binary (.dat) and ASCII (.txt) "
            "files; keep one kind per run folder"
        )
    kind = "binary" if entries["binary"] else "ascii"
    if not entries[kind]:
        raise NoDataError(f"run {run_id!r}: no files matching {PATTERN} in {folder}")
    return make_file_table(data_root, run_id, folder, entries[kind], PATTERN), kind


def is_fast_trigger(path: str) -> bool:
    """An x742 fast-trigger file (``TR_<g>_<n>.dat``), which means float32 samples."""
    return bool(FAST_TRIGGER_RE.match(Path(path).name))
