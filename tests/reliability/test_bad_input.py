"""Malformed digitizer files: a clear error or a documented warning, never a wrong result.

Each case writes a good small run with the synthetic writers, corrupts it, and
runs ``BatchProcessor.process_runs([good1, bad, good2], "peaks")`` on two
threads. It checks that the bad run either fails with the expected error class
and a message naming the run, the file and the line (CSV) or byte offset
(binary), or is read with the documented warning and the documented records
dropped; that the good runs succeed; and that the cache holds no partial entry
of the bad run and no temporary file. The table is in docs/reliability.md
("Bad digitizer input").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from waveform_analysis import BatchProcessor, Context, standard_plugins
from waveform_analysis.core.storage import verify_folder
from waveform_analysis.daq import get_adapter
from waveform_analysis.errors import FormatError, MissingFileError, NoDataError
from waveform_analysis.synthetic import generate_run

N_CHANNELS = 2
N_WAVEFORMS = 20  # records per channel
N_SAMPLES = 256  # the generator puts the trigger pulse near sample 170
RECORDS = N_CHANNELS * N_WAVEFORMS
BAD = "bad"
RUNS = ["good1", BAD, "good2"]

CH0 = "DataR_CH0@V2730_0.CSV"
CH1 = "DataR_CH1@V2730_0.CSV"
C2_CH0 = f"DataR_CH0@V1730_1463_{BAD}.CSV"  # CoMPASS 2.x names, first segment
C1_CH0 = f"0@DT5730 #2-11-1463_Data_{BAD}.csv"  # CoMPASS 1.x
BIN = "raw_b0_seg0.bin"
# one V1725 event of the generated runs: header + per channel (header + samples)
EVENT_BYTES = 16 + N_CHANNELS * (12 + 2 * N_SAMPLES)
CB = f"DataR_CH0@DT5730_1463_{BAD}.BIN"  # CoMPASS 2.x BIN, channel 0, header word 0xCAED
CB_EVENT = 25 + 2 * N_SAMPLES  # board, channel, timetag, E, Eshort, flags, code, n, samples


# -- corruptions: each takes the bad run's data folder, returns the records it drops ----------


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _edit_line(name: str, line_no: int, edit: Callable[[bytes], bytes]) -> Callable[[Path], int]:
    def corrupt(raw: Path) -> int:
        lines = _lines(raw / name)
        lines[line_no - 1] = edit(lines[line_no - 1])
        (raw / name).write_bytes(b"".join(lines))
        return 0

    return corrupt


def _drop_fields(n: int) -> Callable[[bytes], bytes]:
    return lambda line: b";".join(line.rstrip(b"\n").split(b";")[:-n]) + b"\n"


def _replace_field(col: int, value: bytes) -> Callable[[bytes], bytes]:
    def edit(line: bytes) -> bytes:
        fields = line.rstrip(b"\n").split(b";")
        fields[col] = value
        return b";".join(fields) + b"\n"

    return edit


def _cut_last_number(raw: Path) -> int:
    data = (raw / CH0).read_bytes()
    (raw / CH0).write_bytes(data[:-3])  # "\n" and the last two digits
    return 1


def _comma(raw: Path) -> int:
    (raw / CH1).write_bytes((raw / CH1).read_bytes().replace(b";", b","))
    return 0


def _shorter_segment(raw: Path) -> int:
    seg = raw / f"DataR_CH1@V1730_1463_{BAD}_1.CSV"
    seg.write_bytes(b"".join(_drop_fields(1)(line) for line in _lines(seg)))
    return 0


def _empty(raw: Path) -> int:
    (raw / CH1).write_bytes(b"")
    return N_WAVEFORMS


def _header_only(raw: Path) -> int:
    (raw / CH1).write_bytes(_lines(raw / CH1)[0])
    return N_WAVEFORMS


def _all_header_only(raw: Path) -> int:
    for p in raw.iterdir():
        p.write_bytes(_lines(p)[0])
    return RECORDS


def _header_in_later_segment(raw: Path) -> int:
    seg = raw / f"DataR_CH0@V1730_1463_{BAD}_1.CSV"
    seg.write_bytes(b"BOARD;CHANNEL;TIMETAG;ENERGY;ENERGYSHORT;FLAGS;SAMPLES\n" + seg.read_bytes())
    return 0


def _header_mid_file(raw: Path) -> int:
    lines = _lines(raw / CH0)
    (raw / CH0).write_bytes(b"".join(lines[:9] + lines[:1] + lines[9:]))
    return 0


def _segment_gap(raw: Path) -> int:
    seg = raw / f"DataR_CH0@V1730_1463_{BAD}_1.CSV"
    n = len(_lines(seg))
    seg.unlink()
    return n


def _no_samples_column(raw: Path) -> int:
    lines = _lines(raw / CH0)
    lines[0] = lines[0].replace(b";SAMPLES", b"")
    (raw / CH0).write_bytes(b"".join(lines))
    return 0


def _delete(name: str) -> Callable[[Path], int]:
    def corrupt(raw: Path) -> int:
        (raw / name).unlink()
        return 0

    return corrupt


def _grow_csv(raw: Path) -> int:
    lines = _lines(raw / CH0)
    with open(raw / CH0, "ab") as fh:  # two complete rows, then one being written
        fh.write(lines[1] + lines[2] + lines[3][:40])
    return -2


def _patch_u32(offset: int, value: Callable[[int], int]) -> Callable[[Path], int]:
    def corrupt(raw: Path) -> int:
        data = bytearray((raw / BIN).read_bytes())
        old = int.from_bytes(data[offset : offset + 4], "little")
        data[offset : offset + 4] = value(old).to_bytes(4, "little")
        (raw / BIN).write_bytes(bytes(data))
        return 0

    return corrupt


def _no_channels(raw: Path) -> int:
    data = bytearray((raw / BIN).read_bytes())
    data[5 * EVENT_BYTES + 4] = 0  # channel mask [7:0]
    data[5 * EVENT_BYTES + 11] = 0  # channel mask [15:8]
    (raw / BIN).write_bytes(bytes(data))
    return 0


def _truncate_bin(raw: Path) -> int:
    data = (raw / BIN).read_bytes()
    (raw / BIN).write_bytes(data[: 19 * EVENT_BYTES + 100])
    return 0


def _append(name: str, tail: bytes) -> Callable[[Path], int]:
    def corrupt(raw: Path) -> int:
        with open(raw / name, "ab") as fh:
            fh.write(tail)
        return 0

    return corrupt


def _grow_bin(raw: Path) -> int:
    data = (raw / BIN).read_bytes()
    with open(raw / BIN, "ab") as fh:  # one complete event, then one being written
        fh.write(data[:EVENT_BYTES] + data[:100])
    return 0


def _patch_bin(offset: int, value: bytes) -> Callable[[Path], int]:
    def corrupt(raw: Path) -> int:
        data = bytearray((raw / CB).read_bytes())
        data[offset : offset + len(value)] = value
        (raw / CB).write_bytes(bytes(data))
        return 0

    return corrupt


def _cut_compass_bin(raw: Path) -> int:
    (raw / CB).write_bytes((raw / CB).read_bytes()[: 2 + 19 * CB_EVENT + 100])
    return 0


def _bin_segment_gap(raw: Path) -> int:
    (raw / f"DataR_CH0@DT5730_1463_{BAD}_1.BIN").unlink()
    return 7  # channel 0's 20 records in segments of 7, 7 and 6


def _contradicting_settings(raw: Path) -> int:
    (raw.parent / "settings.xml").write_text(
        "<configuration><board><modelName>DT5730</modelName><serialNumber>1463</serialNumber>"
        "<sampleTime>2000</sampleTime><parameters><entry><key>SRV_PARAM_RECLEN</key><value>"
        "<value>4000.0</value></value></entry></parameters></board></configuration>"
    )
    return 0


def _settings_of_one_board(raw: Path) -> int:
    """Settings of the run's first board only (its second, serial 1464, has none)."""
    (raw.parent / "settings.xml").write_text(
        "<configuration><board><modelName>DT5730</modelName><serialNumber>1463</serialNumber>"
        "<sampleTime>2000</sampleTime></board></configuration>"
    )
    return 0


# -- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A corruption of the bad run and what the user must see."""

    id: str
    corrupt: Callable[[Path], int]
    outcome: str  # "error" (the run fails) or "warn" (a warning, records dropped, run read)
    expect: str  # regex the error message / a warning must match (it names file and line/offset)
    error: type | None = None
    gen: dict = field(default_factory=dict)  # generate_run options beyond the small defaults
    after_listing: bool = False  # corrupt once the run is listed (in the adapter's read)
    # data names whose entries stay: read as listed before the change, complete and right
    kept: tuple[str, ...] = ()


V1725 = {"fmt": "v1725"}
CBIN = {"fmt": "compass-bin"}
COMPASS2 = {"layout": "compass2", "n_segments": 2}
F = re.escape

CASES = [
    Case("csv-truncated-line", _edit_line(CH0, 6, _drop_fields(10)), "error",
         rf"{F(CH0)}, line 6: truncated line", FormatError),
    Case("csv-last-number-cut", _cut_last_number, "warn",
         rf"{F(CH0)}, line 21: last line has no line end"),
    Case("csv-comma-delimiter", _comma, "error", rf"{F(CH1)}, line 1: wrong delimiter", FormatError),
    Case("csv-letters-in-samples", _edit_line(CH0, 9, _replace_field(17, b"15a02")), "error",
         rf"{F(CH0)}, line 9: non-numeric value in column 17: '15a02'", FormatError),
    Case("csv-longer-row-in-file", _edit_line(CH1, 4, lambda s: s[:-1] + b";15000;15000\n"),
         "error", rf"{F(CH1)}, line 4: rows of different lengths", FormatError),
    Case("csv-sample-out-of-range", _edit_line(CH1, 12, _replace_field(30, b"70000")), "error",
         rf"{F(CH1)}, line 12: sample out of int16 range in column 30", FormatError),
    Case("csv-lengths-differ-between-segments", _shorter_segment, "error",
         rf"DataR_CH1@V1730_1463_{BAD}_1\.CSV, line 1: rows of different lengths", FormatError,
         gen=COMPASS2),
    Case("csv-empty-file", _empty, "warn", rf"{F(CH1)}: the file is empty"),
    Case("csv-header-only-file", _header_only, "warn", rf"{F(CH1)}: .*header only"),
    Case("csv-all-files-header-only", _all_header_only, "error",
         rf"no records.*{F(CH0)}: header only", NoDataError),
    Case("csv-header-in-later-segment", _header_in_later_segment, "error",
         rf"DataR_CH0@V1730_1463_{BAD}_1\.CSV, line 1: header .* differs from", FormatError,
         gen=COMPASS2),
    Case("csv-header-inside-data", _header_mid_file, "error",
         rf"{F(CH0)}, line 10: .*header line inside the data", FormatError),
    Case("csv-missing-segment", _segment_gap, "warn",
         rf"{F(C2_CH0[:-4])}\): gap in the segment numbers, missing 1 \({F(C2_CH0[:-4])}_1\.CSV\)",
         gen={**COMPASS2, "n_segments": 3}),
    Case("csv-no-samples-column", _no_samples_column, "error",
         rf"{F(CH0)}, line 2: \d+ fields, but the header .* \(list mode: no SAMPLES column\)",
         FormatError),
    Case("compass1-truncated-line", _edit_line(C1_CH0, 15, _drop_fields(3)), "error",
         rf"{F(C1_CH0)}, line 15: truncated line", FormatError, gen={"layout": "compass1"}),
    Case("csv-file-disappears", _delete(CH1), "error",
         rf"file {BAD}/RAW/{F(CH1)} was listed for the run but no longer exists", MissingFileError,
         after_listing=True),
    Case("csv-file-grows", _grow_csv, "warn", rf"{F(CH0)}, line 24: last line has no line end",
         after_listing=True),
    Case("bin-corrupt-event-size", _patch_u32(3 * EVENT_BYTES, lambda w: w | 0x0FFFFFFF), "error",
         rf"{BIN}, byte offset {3 * EVENT_BYTES}: bad event header: event size", FormatError,
         gen=V1725),
    Case("bin-event-size-too-small", _patch_u32(7 * EVENT_BYTES, lambda w: 0xA0000002), "error",
         rf"{BIN}, byte offset {7 * EVENT_BYTES}: bad event header: event size", FormatError,
         gen=V1725),
    Case("bin-corrupt-channel-size", _patch_u32(2 * EVENT_BYTES + 16, lambda w: 1), "error",
         rf"{BIN}, byte offset {2 * EVENT_BYTES + 16}: bad channel header", FormatError, gen=V1725),
    Case("bin-truncated-event", _truncate_bin, "error",
         rf"{BIN}, byte offset {19 * EVENT_BYTES}: .*past the end of the file", FormatError,
         gen=V1725),
    Case("bin-mask-no-channels", _no_channels, "error",
         rf"{BIN}, byte offset {5 * EVENT_BYTES}: bad event header: channel mask", FormatError,
         gen=V1725),
    Case("bin-garbage-at-end", _append(BIN, b"\xff" * 40), "error",
         rf"{BIN}, byte offset {20 * EVENT_BYTES}: bad event header: marker", FormatError, gen=V1725),
    Case("bin-short-garbage-at-end", _append(BIN, b"\x00" * 7), "error",
         rf"{BIN}, byte offset {20 * EVENT_BYTES}: truncated event header", FormatError, gen=V1725),
    Case("bin-file-disappears", _delete(BIN), "error",
         rf"file {BAD}/RAW/{BIN} was listed for the run but no longer exists", MissingFileError,
         gen=V1725, after_listing=True),
    Case("bin-file-grows", _grow_bin, "error",
         rf"{BIN}, byte offset {21 * EVENT_BYTES}: .*past the end of the file", FormatError,
         gen=V1725, after_listing=True, kept=("st_waveforms",)),
    Case("compass-bin-truncated-event", _cut_compass_bin, "error",
         rf"{F(CB)}, byte offset {2 + 19 * CB_EVENT}: truncated event", FormatError, gen=CBIN),
    Case("compass-bin-impossible-size", _patch_bin(2 + 3 * CB_EVENT + 21, b"\xff\xff\xff\x7f"),
         "error", rf"{F(CB)}, byte offset {2 + 3 * CB_EVENT}: impossible event size", FormatError,
         gen=CBIN),
    Case("compass-bin-unknown-header-word", _patch_bin(0, b"\xef\xbe"), "error",
         rf"{F(CB)}, byte offset 0: unknown header word 0xBEEF", FormatError, gen=CBIN),
    Case("compass-bin-channel-out-of-range", _patch_bin(2 + 5 * CB_EVENT + 2, b"\xe7\x03"),
         "error", rf"{F(CB)}, byte offset {2 + 5 * CB_EVENT}: channel 999 out of range",
         FormatError, gen=CBIN),
    Case("compass-bin-missing-segment", _bin_segment_gap, "warn",
         rf"gap in the segment numbers, missing 1 \(DataR_CH0@DT5730_1463_{BAD}_1\.BIN\)",
         gen={**CBIN, "n_segments": 3}),
    Case("compass-bin-file-shrinks", _cut_compass_bin, "error",
         rf"{F(CB)} changed while being read: \d+ bytes, \d+ when the run was listed",
         FormatError, gen=CBIN, after_listing=True),
    Case("compass-bin-file-disappears", _delete(CB), "error",
         rf"file {BAD}/RAW/{F(CB)} was listed for the run but no longer exists",
         MissingFileError, gen=CBIN, after_listing=True),
    Case("compass-settings-contradict-the-files", _contradicting_settings, "error",
         r"settings.xml: contradicts the files: SRV_PARAM_RECLEN gives 2000 samples at 2.0 ns, "
         rf"the files hold {N_SAMPLES}", FormatError, gen=CBIN),
    Case("compass-settings-lack-a-board", _settings_of_one_board, "warn",
         r"settings.xml: no <board> for board 1 \(serial 1464\) of the files",
         gen={**CBIN, "n_boards": 2, "n_channels": 1, "models": ("DT5730", "DT5725")}),
]  # fmt: skip


ADAPTERS = {"compass-bin": "compass"}  # the adapter of a generator format named otherwise


def _adapter(case: Case) -> str:
    fmt = case.gen.get("fmt", "vx2730")
    return ADAPTERS.get(fmt, fmt)


def _generate(root: Path, case: Case) -> None:
    for i, run in enumerate(RUNS):
        generate_run(root, run, **{"n_channels": N_CHANNELS, "n_waveforms": N_WAVEFORMS,
                                   "n_samples": N_SAMPLES, "seed": i, **case.gen})  # fmt: skip


def _data_dir(root: Path, case: Case) -> Path:
    return root / BAD / ("UNFILTERED" if case.gen.get("layout") == "compass1" else "RAW")


def _entries(cache: Path) -> list[str]:
    """The bad run's st_waveforms and peaks files in the cache."""
    names = ("st_waveforms", "peaks")
    return sorted(p.name for p in (cache / BAD).glob("*") if p.name.startswith(names))


def _temp_files(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.name.endswith(".tmp"))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_in_a_batch(tmp_path, monkeypatch, warnings_log, case):
    root, cache = tmp_path / "data", tmp_path / "cache"
    _generate(root, case)
    raw = _data_dir(root, case)
    dropped = 0
    done: list[int] = []
    if case.after_listing:
        adapter = type(get_adapter(_adapter(case)))
        read_into = adapter.read_into

        def read_after_change(self, data_root, files, run_id, sink):
            if run_id == BAD and not done:  # the run is listed (and fingerprinted) by now
                done.append(case.corrupt(raw))
            return read_into(self, data_root, files, run_id, sink)

        monkeypatch.setattr(adapter, "read_into", read_after_change)
    else:
        dropped = case.corrupt(raw)
    config = {"data_root": str(root), "daq_adapter": _adapter(case)}
    ctx = Context(storage_dir=cache, config=config)
    ctx.register(standard_plugins())

    out = BatchProcessor(ctx).process_runs(RUNS, "peaks", max_workers=2, show_progress=False)

    for run in ("good1", "good2"):  # the other runs are not affected
        assert out["meta"][run]["status"] == "success", out["errors"].get(run)
        assert len(out["results"][run]) > 0
    if case.outcome == "error":
        err = out["errors"][BAD]
        assert err["type"] == case.error.__name__, err["message"]
        message = err["message"]
        assert f"run {BAD!r}" in message
        assert re.search(case.expect, message), message
        assert {e.split("-")[0] for e in _entries(cache)} == set(case.kept)
        assert _temp_files(cache) == [] and all(c.ok for c in verify_folder(cache, BAD))
        for name in case.kept:  # the entry holds the file as listed: the records written then
            (entry,) = [e for e in ctx.storage.entries(BAD) if e["data_name"] == name]
            assert len(ctx.storage.load(BAD, name, entry["key"])) == RECORDS
    else:
        assert out["meta"][BAD]["status"] == "success", out["errors"].get(BAD)
        text = "\n".join(warnings_log)
        assert f"run {BAD!r}" in text and re.search(case.expect, text), text
        assert _temp_files(cache) == []
        checks = verify_folder(cache, BAD)  # complete entries only
        assert {c.data_name for c in checks} == {"st_waveforms", "peaks"}
        assert all(c.ok for c in checks), checks
        dropped = done[0] if done else dropped
        st = ctx.get_data(BAD, "st_waveforms")
        assert len(st) == RECORDS - dropped
        assert np.all(st["length"] == N_SAMPLES)


def test_table_covers_the_brief():
    """At least 15 cases, each format represented, each outcome named."""
    assert len(CASES) >= 15
    assert {c.outcome for c in CASES} == {"error", "warn"}
    assert any(c.gen.get("fmt") == "v1725" for c in CASES)
    assert any(c.gen.get("fmt") == "compass-bin" for c in CASES)
    assert any(c.gen.get("layout") == "compass1" for c in CASES)
