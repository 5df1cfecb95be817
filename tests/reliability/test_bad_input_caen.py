"""Malformed WaveDump and CAEN readout-dump files in a batch: a clear error or a documented warning.

As ``test_bad_input.py`` for the CSV and V1725 readers: each case writes three
small runs with the synthetic writers, corrupts the middle one, and runs
``BatchProcessor.process_runs([good1, bad, good2], "peaks")`` on two threads
with ``daq_adapter="auto"``. The bad run fails with a message naming the run,
the file and the byte offset, or is read with the documented warning and
records dropped; the good runs succeed; the cache holds no partial entry and
no temporary file. The table is in docs/reliability.md ("Bad digitizer input").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from waveform_analysis import BatchProcessor, Context, standard_plugins
from waveform_analysis.core.storage import verify_folder
from waveform_analysis.daq import blockscan
from waveform_analysis.errors import ConfigError, FormatError, MissingFileError
from waveform_analysis.synthetic import generate_run

N_CHANNELS = 2
N_WAVEFORMS = 20
N_SAMPLES = 256
RECORDS = N_CHANNELS * N_WAVEFORMS
BAD = "bad"
RUNS = ["good1", BAD, "good2"]

WAVE0 = "wave0.dat"
WD_EVENT = 24 + 2 * N_SAMPLES  # one WaveDump binary event
DUMP = "V1730_standard-Board_0-001.dat"
RAW_EVENT = 16 + N_CHANNELS * 2 * N_SAMPLES  # one standard-firmware event, both channels


def _patch_u32(name: str, offset: int, value: int) -> Callable[[Path], int]:
    def corrupt(folder: Path) -> int:
        data = bytearray((folder / name).read_bytes())
        data[offset : offset + 4] = value.to_bytes(4, "little")
        (folder / name).write_bytes(bytes(data))
        return 0

    return corrupt


def _cut(name: str, keep: int, dropped: int) -> Callable[[Path], int]:
    def corrupt(folder: Path) -> int:
        (folder / name).write_bytes((folder / name).read_bytes()[:keep])
        return dropped

    return corrupt


def _edit_config(old: str, new: str) -> Callable[[Path], int]:
    def corrupt(folder: Path) -> int:
        cfg = next(folder.glob("WaveDumpConfig*.txt"))
        cfg.write_text(cfg.read_text().replace(old, new))
        return 0

    return corrupt


def _ascii_bad_line(folder: Path) -> int:
    text = (folder / "wave1.txt").read_text()
    (folder / "wave1.txt").write_text(text.replace("Event Number: 3\n", "Event No: 3\n"))
    return 0


def _delete(name: str) -> Callable[[Path], int]:
    def corrupt(folder: Path) -> int:
        (folder / name).unlink()
        return 0

    return corrupt


@dataclass(frozen=True)
class Case:
    id: str
    fmt: str  # generate_run format
    corrupt: Callable[[Path], int]
    outcome: str  # "error" or "warn"
    expect: str
    error: type | None = None
    after_listing: bool = False


F = re.escape
CASES = [
    Case("wavedump-truncated-event", "wavedump", _cut(WAVE0, 15 * WD_EVENT + 100, 5), "warn",
         rf"{WAVE0}, byte offset {15 * WD_EVENT}: the last event is cut"),
    Case("wavedump-impossible-size", "wavedump", _patch_u32(WAVE0, 4 * WD_EVENT, 10), "error",
         rf"{WAVE0}, byte offset {4 * WD_EVENT}: .*impossible event size", FormatError),
    Case("wavedump-unknown-header", "wavedump", _patch_u32(WAVE0, 6 * WD_EVENT + 12, 4000),
         "error", rf"{WAVE0}, byte offset {6 * WD_EVENT}: .*not a WaveDump event header",
         FormatError),
    Case("wavedump-config-record-length", "wavedump",
         _edit_config(f"RECORD_LENGTH  {N_SAMPLES}", "RECORD_LENGTH  1024"), "warn",
         rf"{WAVE0}, byte offset 24: 20 events hold {N_SAMPLES} samples where "
         r"WaveDumpConfig_V1730\.txt says RECORD_LENGTH 1024"),
    Case("wavedump-config-no-header", "wavedump",
         _edit_config("OUTPUT_FILE_HEADER  YES", "OUTPUT_FILE_HEADER  NO"), "error",
         r"OUTPUT_FILE_HEADER NO", ConfigError),
    Case("wavedump-file-shrinks", "wavedump", _cut(WAVE0, 3 * WD_EVENT, 0), "error",
         rf"{WAVE0}, byte offset {3 * WD_EVENT}: .*shrunk or replaced", FormatError,
         after_listing=True),
    Case("wavedump-file-disappears", "wavedump", _delete(WAVE0), "error",
         rf"{WAVE0} was listed for the run but no longer exists", MissingFileError,
         after_listing=True),
    Case("wavedump-ascii-bad-header-line", "wavedump-ascii", _ascii_bad_line, "error",
         r"wave1\.txt, byte offset \d+: .*unexpected line", FormatError),
    Case("caen-raw-truncated-event", "caen-raw", _cut(DUMP, 12 * RAW_EVENT + 1000, 16), "warn",
         rf"{F(DUMP)}, byte offset {12 * RAW_EVENT}: the last event is cut"),
    Case("caen-raw-unknown-header-word", "caen-raw", _patch_u32(DUMP, 5 * RAW_EVENT, 0x12345678),
         "error", rf"{F(DUMP)}, byte offset {5 * RAW_EVENT}: .*unknown header word", FormatError),
    Case("caen-raw-impossible-size", "caen-raw", _patch_u32(DUMP, 7 * RAW_EVENT, 0xA0000001),
         "error", rf"{F(DUMP)}, byte offset {7 * RAW_EVENT}: .*impossible event size", FormatError),
    Case("caen-raw-mask-mismatch", "caen-raw", _patch_u32(DUMP, 2 * RAW_EVENT + 4, 0x7), "error",
         rf"{F(DUMP)}, byte offset {2 * RAW_EVENT}: .*channel mask does not match", FormatError),
    Case("caen-raw-file-shrinks", "caen-raw", _cut(DUMP, 4 * RAW_EVENT, 0), "error",
         rf"{F(DUMP)}, byte offset {4 * RAW_EVENT}: .*shrunk or replaced", FormatError,
         after_listing=True),
]  # fmt: skip


def _folder(root: Path, case: Case) -> Path:
    return root / BAD / ("RAW" if case.fmt == "caen-raw" else "")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_in_a_batch(tmp_path, monkeypatch, warnings_log, case):
    root, cache = tmp_path / "data", tmp_path / "cache"
    for i, run in enumerate(RUNS):
        generate_run(root, run, fmt=case.fmt, n_channels=N_CHANNELS, n_waveforms=N_WAVEFORMS,
                     n_samples=N_SAMPLES, seed=i)  # fmt: skip
    folder = _folder(root, case)
    done: list[int] = []
    dropped = 0
    if case.after_listing:
        read_scans = blockscan.read_scans

        def read_after_change(fmt, run_id, *args):
            if run_id == BAD and not done:  # listed and scanned: the second pass is next
                done.append(case.corrupt(folder))
            return read_scans(fmt, run_id, *args)

        monkeypatch.setattr(blockscan, "read_scans", read_after_change)
    else:
        dropped = case.corrupt(folder)
    ctx = Context(storage_dir=cache, config={"data_root": str(root), "daq_adapter": "auto"})
    ctx.register(standard_plugins())

    out = BatchProcessor(ctx).process_runs(RUNS, "peaks", max_workers=2, show_progress=False)

    for run in ("good1", "good2"):
        assert out["meta"][run]["status"] == "success", out["errors"].get(run)
    temp = [p for p in cache.rglob("*") if p.name.endswith(".tmp")]
    if case.outcome == "error":
        err = out["errors"][BAD]
        assert err["type"] == case.error.__name__, err["message"]
        assert f"run {BAD!r}" in err["message"], err["message"]
        assert re.search(case.expect, err["message"]), err["message"]
        names = ("st_waveforms", "peaks")
        assert not [p for p in (cache / BAD).glob("*") if p.name.startswith(names)]
        assert temp == []
    else:
        assert out["meta"][BAD]["status"] == "success", out["errors"].get(BAD)
        text = "\n".join(warnings_log)
        assert f"run {BAD!r}" in text and re.search(case.expect, text), text
        assert temp == []
        checks = verify_folder(cache, BAD)
        assert all(c.ok for c in checks), checks
        st = ctx.get_data(BAD, "st_waveforms")
        assert len(st) == RECORDS - dropped
        assert np.all(st["length"] == N_SAMPLES)
