from pathlib import Path

import numpy as np
import pytest

from waveform_analysis.daq import get_adapter
from waveform_analysis.errors import ConfigError, FormatError
from waveform_analysis.synthetic import generate_run, synthesize

FIELDS = ["time", "timestamp", "board", "channel", "dt", "length", "wave"]
E = 104  # bytes per event of the corrupt-header run (16 + 2 x (12 + 2 x 16))


def read(root, run):
    a = get_adapter("v1725")
    return a.read(root, a.list_files(root, run), run)


def test_round_trip(tmp_path):
    generate_run(tmp_path, "b1", fmt="v1725", n_channels=3, n_waveforms=400, n_samples=200, seed=2)
    ref, _ = synthesize(n_channels=3, n_waveforms=400, n_samples=200, sample_ns=4, seed=2)
    st = read(tmp_path, "b1")
    for f in FIELDS:
        np.testing.assert_array_equal(st[f], ref[f], err_msg=f)
    assert np.all(st["dt"] == 4)
    assert np.all(st["timestamp"] == st["time"] * 1000)
    assert np.all(st["baseline"] == 0.0)


def test_segments_numeric_order(tmp_path):
    generate_run(tmp_path, "b", fmt="v1725", n_channels=2, n_waveforms=110, n_samples=32,
                 n_segments=11, seed=4)
    files = get_adapter("v1725").list_files(tmp_path, "b")
    assert list(files["segment"]) == list(range(11))
    ref, _ = synthesize(n_channels=2, n_waveforms=110, n_samples=32, sample_ns=4, seed=4)
    np.testing.assert_array_equal(read(tmp_path, "b")["wave"], ref["wave"])


def test_odd_samples_rejected(tmp_path):
    with pytest.raises(ConfigError):
        generate_run(tmp_path, "b", fmt="v1725", n_samples=31)


def _corrupt(tmp_path, mutate):
    generate_run(tmp_path, "bad", fmt="v1725", n_channels=2, n_waveforms=5, n_samples=16, seed=0)
    path = tmp_path / "bad" / "RAW" / "raw_b0_seg0.bin"
    data = bytearray(path.read_bytes())
    mutate(data)
    path.write_bytes(bytes(data))
    ev_bytes = 16 + 2 * (12 + 32)
    return ev_bytes


@pytest.mark.parametrize(
    "what,mutate,offset,word",
    [
        ("marker", lambda d: d.__setitem__(2 * E + 3, 0x50), 2 * E, "marker"),
        ("size too big", lambda d: d.__setitem__(4 * E + 2, 0x10), 4 * E, "past the end"),
        ("size too small", lambda d: d.__setitem__(slice(E, E + 3), b"\x02\x00\x00"), E, "too small"),
        ("mask", lambda d: d.__setitem__(E + 4, 0x07), E, "mask"),
        ("channel size", lambda d: d.__setitem__(E + 16, 0x40), E + 16, "channel header"),
        ("trailing", lambda d: d.extend(b"\xa0\x00\x00"), 5 * E, "truncated"),
    ],
)
def test_corrupt_header(tmp_path, what, mutate, offset, word):
    ev = _corrupt(tmp_path, mutate)
    assert ev == E == 104
    with pytest.raises(FormatError) as exc:
        read(tmp_path, "bad")
    msg = str(exc.value)
    assert "'bad'" in msg and "raw_b0_seg0.bin" in msg and f"byte offset {offset}" in msg, msg
    assert word in msg, msg


def test_variable_length_and_truncation_flag(tmp_path):
    # hand-built file: event with channels 0 and 9, different lengths, truncation bit set
    def chan(ticks, samples, trunc=False):
        size = 3 + len(samples) // 2
        w = size | (1 << 30 if trunc else 0)
        return (
            np.array([w], "<u4").tobytes()
            + int(ticks).to_bytes(6, "little")
            + (100).to_bytes(2, "little")
            + np.array(samples, "<i2").tobytes()
        )

    body = chan(10, [1, 2, 3, 4]) + chan(10, [-7, 8], trunc=True)
    mask = (1 << 0) | (1 << 9)
    header = np.array(
        [(0xA << 28) | (4 + len(body) // 4), (mask & 0xFF) | (3 << 27), (mask >> 8) << 24, 10],
        "<u4",
    ).tobytes()
    raw = tmp_path / "h" / "RAW"
    raw.mkdir(parents=True)
    (raw / "x_b3_seg0.bin").write_bytes(header + body)
    st = read(tmp_path, "h")
    assert list(st["channel"]) == [0, 9]
    assert list(st["board"]) == [3, 3]
    assert list(st["length"]) == [4, 2]
    assert list(st["wave"][1]) == [-7, 8, 0, 0]
    assert list(st["time"]) == [40, 40] and list(st["timestamp"]) == [40000, 40000]


def test_read_in_bounded_blocks_same_records(tmp_path, monkeypatch):
    # defect: whole files were loaded; now blocks cut at event boundaries, any block size
    from waveform_analysis.daq.v1725 import reader as v1725

    generate_run(tmp_path, "b", fmt="v1725", n_channels=3, n_waveforms=300, n_samples=64,
                 n_segments=2, seed=7)
    ref = read(tmp_path, "b")
    for block in (16, 100, 1000, 4096):
        monkeypatch.setattr(v1725, "BLOCK_BYTES", block)
        st = read(tmp_path, "b")
        for f in FIELDS + ["flags"]:
            np.testing.assert_array_equal(st[f], ref[f], err_msg=f"{f} at block {block}")


def test_corrupt_event_size_does_not_read_the_rest_of_the_file(tmp_path, monkeypatch):
    # defect: an event size past the end of the file grew the block x4 at a time until it
    # held the rest of the file (a 10 GB file read whole before the error)
    from waveform_analysis.daq import blocks as _blocks
    from waveform_analysis.daq.v1725 import reader as v1725

    generate_run(tmp_path, "b", fmt="v1725", n_channels=2, n_waveforms=400, n_samples=16, seed=3)
    path = tmp_path / "b" / "RAW" / "raw_b0_seg0.bin"
    data = bytearray(path.read_bytes())
    data[10 * E : 10 * E + 4] = (0xA0000000 | 0x0FFFFFFF).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    taken = []
    take = _blocks.BufferPool.take
    monkeypatch.setattr(_blocks.BufferPool, "take", lambda self, n: taken.append(n) or take(self, n))
    monkeypatch.setattr(v1725, "BLOCK_BYTES", 1024)
    with pytest.raises(FormatError, match=rf"byte offset {10 * E}: .*runs past the end of the file"):
        read(tmp_path, "b")
    assert max(taken) <= 1024


def test_board_fail_bit_reported(tmp_path, warnings_log):
    from waveform_analysis.daq.v1725 import FLAG_BOARD_FAIL
    from waveform_analysis.synthetic import write_v1725

    st, _ = synthesize(n_channels=2, n_waveforms=6, n_samples=16, sample_ns=4, seed=1)
    fail = np.zeros(6, bool)
    fail[[2, 4]] = True
    write_v1725(tmp_path / "f" / "RAW", st, board_fail=fail)
    back = read(tmp_path, "f")
    bad = (back["flags"] & FLAG_BOARD_FAIL) != 0
    assert list(np.nonzero(bad)[0]) == [4, 5, 8, 9]  # both channels of events 2 and 4
    assert any("raw_b0_seg0.bin" in m and "2 events with the Board Fail bit" in m
               and f"byte offset {2 * E}" in m for m in warnings_log), warnings_log
    np.testing.assert_array_equal(back["wave"], st["wave"])


def test_trigger_time_tag_rollover_flag_and_timestamp_rollover(tmp_path):
    # TTT bit 31 is CAEN's roll-over flag, not a counter bit; 48-bit channel
    # timestamps that roll over keep increasing times
    from waveform_analysis.synthetic import write_v1725

    st, _ = synthesize(n_channels=2, n_waveforms=4, n_samples=16, sample_ns=4, seed=3)
    want = np.array([2**48 - 20, 2**48 - 10, 2**48 + 5, 2**48 + 2**31 + 7], np.int64)
    st["timestamp"] = np.repeat(want * 4000, 2)
    write_v1725(tmp_path / "t" / "RAW", st)  # writes the 48 low bits, as the board does
    raw = (tmp_path / "t" / "RAW" / "raw_b0_seg0.bin").read_bytes()
    ev = 16 + 2 * (12 + 32)
    ts = [int.from_bytes(raw[i * ev + 20 : i * ev + 26], "little") for i in range(4)]
    assert ts == [2**48 - 20, 2**48 - 10, 5, 2**31 + 7]
    w3 = np.frombuffer(raw, "<u4")[3 :: ev // 4][:4]
    assert list(w3 >> 31) == [1, 1, 1, 1] and w3[2] & 0x7FFFFFFF == 5
    back = read(tmp_path, "t")
    np.testing.assert_array_equal(back["time"][::2], want * 4)
    assert np.all(np.diff(back["time"]) >= 0)


def test_file_gone_mid_run_names_run_and_file(tmp_path):
    from waveform_analysis.errors import MissingFileError

    generate_run(tmp_path, "g", fmt="v1725", n_channels=1, n_waveforms=10, n_samples=16,
                 n_segments=2)
    a = get_adapter("v1725")
    files = a.list_files(tmp_path, "g")
    (tmp_path / str(files["path"][1])).unlink()
    with pytest.raises(MissingFileError, match=r"'g'.*raw_b0_seg1\.bin"):
        a.read(tmp_path, files, "g")


def test_docs_example_event(tmp_path):
    # the byte example of docs/formats.md reads as it says
    text = (Path(__file__).resolve().parents[1] / "docs" / "formats.md").read_text()
    start = text.index("  09 00 00 a0")
    lines = text[start:].splitlines()[:3]
    data = bytes.fromhex(" ".join(_hex_part(ln) for ln in lines))
    raw = tmp_path / "d" / "RAW"
    raw.mkdir(parents=True)
    (raw / "x_b0_seg0.bin").write_bytes(data)
    st = read(tmp_path, "d")
    assert list(st["wave"][0]) == [15000, 14999, 14864, 15001]
    assert st["time"][0] == 4000 and st["channel"][0] == 0


def _hex_part(line):
    words = line.split()
    out = []
    for w in words:
        if len(w) == 2 and all(c in "0123456789abcdef" for c in w):
            out.append(w)
        else:
            break
    return " ".join(out)


def test_two_boards_round_trip(tmp_path):
    generate_run(tmp_path, "m", fmt="v1725", n_channels=2, n_boards=2, n_waveforms=30,
                 n_samples=20, seed=6)
    names = sorted(p.name for p in (tmp_path / "m" / "RAW").iterdir())
    assert names == ["raw_b0_seg0.bin", "raw_b1_seg0.bin"]
    st = read(tmp_path, "m")
    ref, _ = synthesize(n_channels=4, n_waveforms=30, n_samples=20, sample_ns=4, seed=6)
    np.testing.assert_array_equal(st["wave"], ref["wave"])
    np.testing.assert_array_equal(st["board"], ref["channel"] // 2)
    np.testing.assert_array_equal(st["channel"], ref["channel"] % 2)
