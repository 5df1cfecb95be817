import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

from waveform_analysis.daq import get_adapter
from waveform_analysis.dtypes import st_waveforms_dtype
from waveform_analysis.errors import FormatError, NoDataError
from waveform_analysis.synthetic import (
    HEADER,
    format_vx2730_rows,
    generate_run,
    synthesize,
    write_vx2730,
)

FIELDS = ["time", "timestamp", "board", "channel", "dt", "length", "wave"]


def read(root, run):
    a = get_adapter("vx2730")
    return a.read(root, a.list_files(root, run), run)


def assert_same(st, ref):
    assert st.dtype == ref.dtype
    for f in FIELDS:
        np.testing.assert_array_equal(st[f], ref[f], err_msg=f)
    assert np.all(st["baseline"] == 0.0)


@pytest.mark.parametrize("legacy,hex_flags", [(False, True), (True, False), (True, True)])
def test_round_trip(tmp_path, legacy, hex_flags):
    generate_run(tmp_path, "run1", n_channels=3, n_waveforms=300, n_samples=240,
                 legacy_header=legacy, hex_flags=hex_flags, seed=5)
    ref, _ = synthesize(n_channels=3, n_waveforms=300, n_samples=240, seed=5)
    st = read(tmp_path, "run1")
    assert_same(st, ref)
    assert np.all(np.diff(st["time"]) >= 0)
    head = (tmp_path / "run1" / "RAW" / "DataR_CH0@V2730_0.CSV").read_text()[:200]
    assert ("0x4000" in head) == hex_flags
    assert head.startswith("CoMPASS") == legacy


def test_segments_numeric_order(tmp_path):
    generate_run(tmp_path, "r", n_channels=1, n_waveforms=120, n_samples=64, n_segments=12, seed=1)
    files = get_adapter("vx2730").list_files(tmp_path, "r")
    assert list(files["segment"]) == list(range(12))
    assert files["path"][2].endswith("_2.CSV") and files["path"][10].endswith("_10.CSV")
    ref, _ = synthesize(n_channels=1, n_waveforms=120, n_samples=64, seed=1)
    assert_same(read(tmp_path, "r"), ref)


def test_segment_order_not_time_sorted_input(tmp_path):
    # identical time tags across segments: order must follow numeric segment order
    raw = tmp_path / "r" / "RAW"
    raw.mkdir(parents=True)
    (raw / "x_CH0_0.CSV").write_text(HEADER + "\n0;0;1000;0;0;0x0;1;1;1\n")
    (raw / "x_CH0_2.CSV").write_text("0;0;5000;0;0;0x0;1;2;2\n")
    (raw / "x_CH0_10.CSV").write_text("0;0;5000;0;0;0x0;1;10;10\n")
    st = read(tmp_path, "r")
    assert [int(w[0]) for w in st["wave"]] == [1, 2, 10]


def test_channels_padded_to_longest(tmp_path):
    raw = tmp_path / "r" / "RAW"
    raw.mkdir(parents=True)
    (raw / "a_CH0_0.CSV").write_text(HEADER + "\n0;0;2000;0;0;16384;1;5;6;7\n")
    (raw / "a_CH3_0.CSV").write_text(HEADER + "\r\n1;3;1000;0;0;0x4000;1;-1;2;3;4;5\r\n")
    st = read(tmp_path, "r")
    assert st.dtype == st_waveforms_dtype(5)
    assert list(st["channel"]) == [3, 0] and list(st["board"]) == [1, 0]
    assert list(st["length"]) == [5, 3] and list(st["time"]) == [1, 2]
    assert list(st["wave"][1]) == [5, 6, 7, 0, 0]
    assert list(st["wave"][0]) == [-1, 2, 3, 4, 5]
    assert list(st["dt"]) == [2, 2]


def _bad_run(tmp_path, lines, header=True, name="bad_CH1_0.CSV"):
    raw = tmp_path / "runx" / "RAW"
    raw.mkdir(parents=True, exist_ok=True)
    text = (HEADER + "\n" if header else "") + "\n".join(lines) + "\n"
    (raw / name).write_text(text)
    return raw / name


GOOD = "0;1;1000;0;0;0x4000;1;10;11;12;13"


@pytest.mark.parametrize(
    "bad,line,word",
    [
        ("0;1;3000;0;0;0x4000;1;10;11", 4, "truncated"),
        ("0;1;3000;0;0", 4, "truncated"),
        ("0;1;3000;0;0;0x4000;1;10;1x;12;13", 4, "non-numeric"),
        ("0;1;3000;0;0;0x4000;1;10;;12;13", 4, "non-numeric"),
        ("0;1;3000;0;0;0x4000;1;10;11;12;13;14", 4, "different lengths"),
        ("0;1;3000;0;0;0x4000;1;10;40000;12;13", 4, "int16 range"),
        ("0;1;3000;0;0;0x4000;1;10;-32769;12;13", 4, "int16 range"),
        ("0;1;3o00;0;0;0x4000;1;10;11;12;13", 4, "non-numeric"),
    ],
)
def test_bad_lines(tmp_path, bad, line, word):
    _bad_run(tmp_path, [GOOD, GOOD, bad, GOOD])
    with pytest.raises(FormatError) as exc:
        read(tmp_path, "runx")
    msg = str(exc.value)
    assert "runx" in msg and "bad_CH1_0.CSV" in msg and f"line {line}" in msg, msg
    assert word in msg, msg


def test_cut_last_line_is_dropped_with_warning(tmp_path, warnings_log):
    # defect: the cut last number read as a valid sample (a fake 14,849 ADC peak)
    raw = tmp_path / "runx" / "RAW"
    raw.mkdir(parents=True)
    good = "0;1;1000;0;0;0x4000;1;15000;15001;15002;14849"
    (raw / "bad_CH1_0.CSV").write_text(HEADER + "\n" + good + "\n" + good[:-3])
    st = read(tmp_path, "runx")
    assert len(st) == 1 and list(st["wave"][0]) == [15000, 15001, 15002, 14849]
    assert any("bad_CH1_0.CSV, line 3" in m and "no line end" in m for m in warnings_log)


def test_whole_last_line_without_line_end_is_kept(tmp_path, warnings_log):
    # defect (issue 17): a complete last line without a line end (a trimmed file, as the
    # libra-toolbox fixture) was dropped; only a line cut inside its last field is
    raw = tmp_path / "r" / "RAW"
    raw.mkdir(parents=True)
    (raw / "a_CH1_0.CSV").write_text(HEADER + "\n" + GOOD + "\n\n" + GOOD)
    st = read(tmp_path, "r")
    assert len(st) == 2 and all(list(w) == [10, 11, 12, 13] for w in st["wave"])
    assert not any("a_CH1_0.CSV, line 4" in m for m in warnings_log)


def test_only_line_cut_is_no_data(tmp_path, warnings_log):
    raw = tmp_path / "r" / "RAW"
    raw.mkdir(parents=True)
    (raw / "a_CH1_0.CSV").write_text(HEADER + "\n" + GOOD[:-2])
    with pytest.raises(NoDataError):
        read(tmp_path, "r")
    assert any("a_CH1_0.CSV, line 2" in m for m in warnings_log)


def test_rows_differ_between_segments_of_a_channel(tmp_path):
    _bad_run(tmp_path, [GOOD])
    _bad_run(tmp_path, ["0;1;5000;0;0;0x4000;1;1;2"], header=False, name="bad_CH1_1.CSV")
    with pytest.raises(FormatError, match=r"runx.*bad_CH1_1\.CSV.*line 1.*different lengths"):
        read(tmp_path, "runx")


def test_header_only_is_no_data(tmp_path):
    raw = tmp_path / "r" / "RAW"
    raw.mkdir(parents=True)
    (raw / "a_CH0_0.CSV").write_text(HEADER + "\n")
    with pytest.raises(NoDataError, match="'r'"):
        read(tmp_path, "r")


def test_many_chunks_line_numbers(tmp_path, monkeypatch):
    # force small parse units so a file is split across threads; line numbers stay exact
    from waveform_analysis.daq import vx2730

    monkeypatch.setattr(vx2730, "CHUNK_BYTES", 1)
    rows = [f"0;1;{1000 * i};0;0;0x4000;1;" + ";".join(["12345"] * 200) for i in range(600)]
    rows[517] = rows[517][:-3] + "z12"
    _bad_run(tmp_path, rows)
    with pytest.raises(FormatError, match="line 519"):
        read(tmp_path, "runx")


@settings(max_examples=25, deadline=None)
@given(
    n=hst.integers(1, 6),
    ns=hst.integers(1, 12),
    seed=hst.integers(0, 2**31 - 1),
    hex_flags=hst.booleans(),
)
def test_property_round_trip(tmp_path_factory, n, ns, seed, hex_flags):
    rng = np.random.default_rng(seed)
    st = np.zeros(n, dtype=st_waveforms_dtype(ns))
    st["timestamp"] = np.sort(rng.integers(0, 2**50, n))
    st["time"] = st["timestamp"] // 1000
    st["channel"] = 4
    st["board"] = rng.integers(0, 3)
    st["dt"] = 2
    st["length"] = ns
    st["wave"] = rng.integers(-32768, 32768, (n, ns))
    root = tmp_path_factory.mktemp("prop")
    write_vx2730(root / "p" / "RAW", st, hex_flags=hex_flags, n_segments=min(n, 3))
    back = read(root, "p")
    for f in FIELDS:
        np.testing.assert_array_equal(back[f], st[f])


def test_format_rows_matches_text():
    st = np.zeros(1, dtype=st_waveforms_dtype(3))
    st["timestamp"] = 123456789
    st["channel"] = 7
    st["wave"] = [0, -5, 16383]
    st["length"] = 3
    assert format_vx2730_rows(st, hex_flags=True) == b"0;7;123456789;0;0;0x4000;1;0;-5;16383\n"
    assert format_vx2730_rows(st, hex_flags=False) == b"0;7;123456789;0;0;16384;1;0;-5;16383\n"


def test_multi_block_file_same_records_and_line_numbers(tmp_path, monkeypatch):
    # tiny blocks: each file is read in many pieces, lines longer than a block included
    from waveform_analysis.daq import vx2730
    from waveform_analysis.daq.compass import csv_files

    generate_run(tmp_path, "big", n_channels=2, n_waveforms=150, n_samples=100,
                 legacy_header=True, n_segments=2, seed=3)
    ref = read(tmp_path, "big")
    for block in (300, 4096, 50_000):
        monkeypatch.setattr(vx2730, "CHUNK_BYTES", block)
        monkeypatch.setattr(vx2730, "MIN_BLOCK_BYTES", 1)
        monkeypatch.setattr(csv_files, "HEADER_BYTES", 16)
        assert_same(read(tmp_path, "big"), ref)

    # an error far into the file, after CRLF lines, blank lines and the two-line header
    rows = [f"0;1;{1000 * i};0;0;0x4000;1;" + ";".join(["-123"] * 50) for i in range(400)]
    rows[100] = ""
    rows[350] = rows[350][:-4] + "99999"
    raw = tmp_path / "runx" / "RAW"
    raw.mkdir(parents=True)
    text = "CoMPASS\r\n" + HEADER + "\r\n" + "\r\n".join(rows)  # no final newline
    (raw / "bad_CH1_0.CSV").write_text(text, newline="")
    for block in (256, 1000, 1 << 20):
        monkeypatch.setattr(vx2730, "CHUNK_BYTES", block)
        with pytest.raises(FormatError, match=r"bad_CH1_0\.CSV, line 353: .*int16 range"):
            read(tmp_path, "runx")
    rows[350] = rows[349]
    (raw / "bad_CH1_0.CSV").write_text("CoMPASS\r\n" + HEADER + "\r\n" + "\r\n".join(rows),
                                       newline="")
    st = read(tmp_path, "runx")  # one blank line; the last line has no line end but is whole
    assert len(st) == 399 and np.all(st["wave"] == -123)
