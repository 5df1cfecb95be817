"""A file that grows while its run is read: the cache key is made from what was read.

The digitizer keeps appending to the segment it writes; ``raw_files`` fingerprints the
files (size, mtime) when the keys are computed and the reader opens them later. These
tests put a writer between the two and check that the entry cached under the key holds
the data of the files as fingerprinted, never newer data under an older key.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from waveform_analysis import Context, standard_plugins
from waveform_analysis.plugins import RawFilesPlugin
from waveform_analysis.synthetic import generate_run

N_WAVEFORMS = 20
N_CHANNELS = 2
RUN = "run_001"


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _append_rows(raw: Path) -> int:
    """The digitizer writes two more rows (and starts a third) into channel 0's last segment."""
    last = sorted(raw.glob("*CH0*"))[-1]
    rows = _lines(last)[-3:]
    with open(last, "ab") as fh:
        fh.write(rows[0] + rows[1] + rows[2][:30])
    return 2


def _new_segment(raw: Path) -> int:
    """The digitizer closes channel 0's segment and opens the next one."""
    segments = sorted(raw.glob("*CH0*"))
    rows = _lines(segments[-1])[-4:]
    name = segments[-1].name.replace(f"_{len(segments) - 1}.CSV", f"_{len(segments)}.CSV")
    (raw / name).write_bytes(b"".join(rows))
    return 4


def _append_event(raw: Path) -> int:
    """A V1725 board appends one complete event to its binary file."""
    (path,) = raw.glob("*.bin")
    data = path.read_bytes()
    size = len(data) // (N_WAVEFORMS)  # one event per trigger, all channels in it
    with open(path, "ab") as fh:
        fh.write(data[:size])
    return N_CHANNELS


def _append_compass_event(raw: Path) -> int:
    """CoMPASS appends one more event to channel 0's BIN file (2-byte file header, fixed-size events)."""
    (path,) = raw.glob("*CH0*")
    data = path.read_bytes()
    size = (len(data) - 2) // N_WAVEFORMS
    with open(path, "ab") as fh:
        fh.write(data[-size:])
    return 1


class WriterAfterKeys(RawFilesPlugin):
    """``raw_files`` as shipped; the digitizer writes once, right after the keys are made."""

    def __init__(self, write=None) -> None:
        self.write = write
        self.written = 0

    def fingerprint(self, context, run_id: str) -> str:
        fp = super().fingerprint(context, run_id)
        if self.write is not None and not self.written:
            self.written = self.write(context.data_root / run_id / "RAW")
        return fp


@pytest.mark.parametrize(
    ("fmt", "write"),
    [("vx2730", _append_rows), ("vx2730", _new_segment), ("v1725", _append_event),
     ("compass-bin", _append_compass_event)],
    ids=["csv-segment-grows", "csv-new-segment", "bin-file-grows", "compass-bin-grows"],
)
def test_key_and_data_agree_when_a_file_grows(tmp_path, fmt, write):
    root = tmp_path / "DAQ"
    generate_run(root, RUN, fmt=fmt, n_channels=N_CHANNELS, n_waveforms=N_WAVEFORMS,
                 n_samples=64, n_segments=2 if fmt == "vx2730" else 1, seed=1)  # fmt: skip
    n = N_CHANNELS * N_WAVEFORMS
    config = {"data_root": str(root), "daq_adapter": "compass" if fmt == "compass-bin" else fmt}
    ctx = Context(storage_dir=tmp_path / "cache", config=config)
    plugin = WriterAfterKeys(write)
    ctx.register(standard_plugins(), plugin, replace=True)

    st = ctx.get_data(RUN, "st_waveforms")
    old_key = ctx.storage.entries(RUN)[0]["key"] if ctx.storage.entries(RUN) else None

    assert plugin.written > 0  # the writer did write between the keys and the read
    assert len(st) == n  # the files as fingerprinted, not the rows written after
    assert old_key is not None
    # the files changed: a new key, under which the new rows are read
    new_key = ctx.key_for(RUN, "st_waveforms")
    assert new_key != old_key
    assert len(ctx.get_data(RUN, "st_waveforms")) == n + plugin.written
    # a fresh Context reading the cache finds the old entry with the old rows only
    fresh = Context(storage_dir=tmp_path / "cache", config=config)
    fresh.register(standard_plugins())
    old = fresh.storage.load(RUN, "st_waveforms", old_key)
    assert old is not None and len(old) == n
    assert np.array_equal(np.sort(old["timestamp"]), np.sort(st["timestamp"]))
