"""What a DAQ folder holds while the digitizer writes it: runs, closed segments, finished runs.

A run is *complete* when CoMPASS has written ``run.info`` with a ``time.stop=`` value,
or, for writers that leave no ``run.info``, when none of its files changed for ``settle``
seconds (a ``run.info`` without a stop time says the run is still being taken). Segment *k* of a run is *closed* once every (board, channel) of the run has
a file of a later segment: the digitizer moved on, so the file will not grow again.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RUN_INFO = "run.info"
HEADER_PROBE = 1 << 16  # a CSV header is a line or two: this is plenty


def run_folders(data_root: Path) -> list[str]:
    """Names of the sub-folders of ``data_root`` (hidden ones left out), sorted."""
    try:
        entries = list(os.scandir(data_root))
    except FileNotFoundError:
        return []
    return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def run_stopped(run_dir: Path) -> bool | None:
    """Whether ``run_dir/run.info`` carries a stop time: True (CoMPASS writes it when the
    run ends), False (a ``run.info`` without one: the run is being taken), None (no file)."""
    try:
        text = (run_dir / RUN_INFO).read_text(encoding="latin-1")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "time.stop" and value.strip():
            return True
    return False


def closed_segments(files: np.ndarray) -> list[int]:
    """Segment numbers that every (board, channel) of ``files`` has moved past, ascending."""
    if len(files) == 0:
        return []
    last: dict[tuple[int, int], int] = {}
    for board, channel, segment in zip(files["board"], files["channel"], files["segment"], strict=True):
        key = (int(board), int(channel))
        last[key] = max(last.get(key, -1), int(segment))
    bound = min(last.values())  # every channel has a file of this segment or later
    present = {int(s) for s in files["segment"]}
    return sorted(s for s in present if s < bound)


def header_bytes(path: Path) -> int:
    """Bytes of the header lines at the start of a CSV file (0: its first line is data)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEADER_PROBE)
    except OSError:
        return 0
    pos = 0
    while pos < len(head):
        end = head.find(b"\n", pos)
        if end < 0:
            return 0  # no whole line yet: nothing to lend
        first = head[pos : pos + 1]
        if first.isdigit() or first == b"-":
            break
        pos = end + 1
    return pos


def segment_files(data_root: Path, files: np.ndarray, segment: int) -> np.ndarray:
    """The files of one segment of a run, with the header each CSV channel needs.

    CoMPASS writes the CSV header in a channel's first segment only, so segment
    *k* > 0 is read with its channel's first file cut at the end of its header
    (``size`` = the header's bytes): the columns come from the header, the rows
    from segment *k* alone.
    """
    chosen = files[files["segment"] == segment]
    if segment == 0:
        return chosen
    lenders = []
    for f in files[files["segment"] == 0]:
        rel = str(f["path"])
        if not rel.lower().endswith(".csv"):
            continue
        keys = (chosen["board"] == f["board"]) & (chosen["channel"] == f["channel"])
        n = header_bytes(Path(data_root) / rel)
        if n and keys.any():
            lender = f.copy()
            lender["size"] = n
            lenders.append(lender)
    if not lenders:
        return chosen
    return np.concatenate([np.array(lenders, dtype=files.dtype), chosen])


@dataclass
class Settling:
    """When a run's files last changed, by this process's clock (a network file system's
    mtimes may come from another clock) and by theirs."""

    digest: str = ""
    since: float = field(default_factory=time.monotonic)

    def quiet_for(self, digest: str, files: np.ndarray) -> float:
        """Seconds without a change in ``files`` (whose ``digest`` is given).

        At first sight the files' own mtimes answer, so a folder that finished long
        ago is processed at once; after that, a change seen restarts this clock."""
        now = time.monotonic()
        first, changed = not self.digest, digest != self.digest
        if changed:
            self.digest, self.since = digest, now
        if first:
            newest = int(files["mtime"].max()) if len(files) else 0
            return max(0.0, time.time() - newest * 1e-9) if newest else 0.0
        return 0.0 if changed else now - self.since
