"""CoMPASS CSV files as CAEN software writes them: names, folders, headers, boards, flags."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from waveform_analysis import Context, standard_plugins
from waveform_analysis.daq import get_adapter
from waveform_analysis.dtypes import st_waveforms_dtype
from waveform_analysis.errors import FormatError, MissingFileError, RunNotFoundError
from waveform_analysis.synthetic import generate_run, synthesize, write_vx2730

FIELDS = ["time", "timestamp", "board", "channel", "dt", "length", "wave"]
H2 = "BOARD;CHANNEL;TIMETAG;ENERGY;ENERGYSHORT;FLAGS;PROBE_CODE;SAMPLES"
H2_NO_PROBE = "BOARD;CHANNEL;TIMETAG;ENERGY;ENERGYSHORT;FLAGS;SAMPLES"
H1 = "TIMETAG;ENERGY;ENERGYSHORT;FLAGS;SAMPLES"


def read(root, run, folder="raw"):
    a = get_adapter("vx2730")
    return a.read(root, a.list_files(root, run, folder=folder), run)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_compass2_first_segment_has_no_number(tmp_path):
    # defect: the first file of every channel (no _<n>) was skipped without a word
    generate_run(tmp_path, "run_7", n_channels=2, n_waveforms=100, n_samples=40,
                 layout="compass2", n_segments=3, seed=2)
    names = sorted(p.name for p in (tmp_path / "run_7" / "RAW").iterdir())
    assert names[:3] == ["DataR_CH0@V1730_1463_run_7.CSV", "DataR_CH0@V1730_1463_run_7_1.CSV",
                         "DataR_CH0@V1730_1463_run_7_2.CSV"]
    files = get_adapter("vx2730").list_files(tmp_path, "run_7")
    assert list(files["segment"]) == [0, 1, 2, 0, 1, 2]
    assert list(files["board"]) == [1463] * 6
    ref, _ = synthesize(n_channels=2, n_waveforms=100, n_samples=40, seed=2)
    st = read(tmp_path, "run_7")
    assert len(st) == 200
    for f in FIELDS:
        np.testing.assert_array_equal(st[f], ref[f], err_msg=f)


def test_digits_of_the_run_name_are_not_segments(tmp_path, warnings_log):
    raw = tmp_path / "r" / "RAW"
    row = "0;0;{t};0;0;0x4000;1;{v};{v}\n"
    write(raw / "DataR_CH0@V1730_1463_Background_250322.CSV", H2 + "\n" + row.format(t=1000, v=1))
    write(raw / "DataR_CH0@V1730_1463_Background_250322_1.CSV", row.format(t=2000, v=2))
    write(raw / "DataR_CH1@V1730_1463_Background_250322.CSV", H2 + "\n" + row.format(t=3000, v=3))
    files = get_adapter("vx2730").list_files(tmp_path, "r")
    assert list(files["channel"]) == [0, 0, 1] and list(files["segment"]) == [0, 1, 0]
    st = read(tmp_path, "r")
    assert [int(w[0]) for w in st["wave"]] == [1, 2, 3]
    assert list(st["channel"]) == [0, 0, 0] and not warnings_log  # CHANNEL column says 0


def test_unused_files_and_segment_gaps_are_warned(tmp_path, warnings_log):
    raw = tmp_path / "r" / "RAW"
    row = "0;0;1000;0;0;0x4000;1;5;5\n"
    write(raw / "DataR_CH0@V1730_1463_r.CSV", H2 + "\n" + row)
    write(raw / "DataR_CH0@V1730_1463_r_1.CSV", row)
    write(raw / "DataR_CH0@V1730_1463_r_3.CSV", row)
    write(raw / "DataR_CH0@V1730_1463_r_backup.CSV", H2 + "\n" + row)
    write(raw / "notes.csv", "hello\n")
    files = get_adapter("vx2730").list_files(tmp_path, "r")
    assert list(files["segment"]) == [0, 1, 3]
    text = "\n".join(warnings_log)
    assert "gap in the segment numbers, missing 2" in text
    assert "DataR_CH0@V1730_1463_r_backup.CSV" in text and "not read" in text
    assert "notes.csv" in text


def test_compass1_layout_and_filtered_folder(tmp_path):
    generate_run(tmp_path, "bg", n_channels=2, n_waveforms=50, n_samples=30,
                 layout="compass1", seed=4)
    unf = tmp_path / "bg" / "UNFILTERED"
    names = sorted(p.name for p in unf.iterdir())
    assert names == ["0@DT5730 #2-11-1463_Data_bg.csv", "1@DT5730 #2-11-1463_Data_bg.csv"]
    assert (unf / names[0]).read_text().startswith(H1 + "\n")
    ref, _ = synthesize(n_channels=2, n_waveforms=50, n_samples=30, seed=4)
    st = read(tmp_path, "bg")
    assert np.all(st["board"] == 1463)  # no BOARD column: the serial in the name
    for f in ["time", "timestamp", "channel", "length", "wave"]:
        np.testing.assert_array_equal(st[f], ref[f], err_msg=f)
    # FILTERED/ beside UNFILTERED, chosen by the daq_folder option
    write_vx2730(tmp_path / "bg" / "FILTERED", ref[:10], layout="compass1", run_name="bg")
    assert len(read(tmp_path, "bg", folder="filtered")) == 10
    ctx = Context(storage_dir=tmp_path / "cache",
                  config={"data_root": str(tmp_path), "daq_folder": "filtered"})
    ctx.register(standard_plugins())
    assert len(ctx.get_data("bg", "st_waveforms")) == 10
    ctx.set_config({"daq_folder": "raw"})
    assert len(ctx.get_data("bg", "st_waveforms")) == 100
    (tmp_path / "bg2" / "UNFILTERED").mkdir(parents=True)
    with pytest.raises(RunNotFoundError, match="'bg2': no FILTERED folder"):
        get_adapter("vx2730").list_files(tmp_path, "bg2", folder="filtered")


def test_header_without_probe_code_is_not_shifted(tmp_path):
    # defect: samples were always taken from column 7, so a file without
    # PROBE_CODE was read shifted by one sample with no error
    raw = tmp_path / "r" / "RAW"
    write(raw / "DataR_CH2@V1730_1463_r.CSV", H2_NO_PROBE + "\n0;2;1000;10;5;0x4000;100;101;102\n")
    st = read(tmp_path, "r")
    assert list(st["wave"][0]) == [100, 101, 102] and st["length"][0] == 3
    assert st["flags"][0] == 0x4000 and st["channel"][0] == 2


def test_columns_in_any_order_and_without_board_channel(tmp_path):
    raw = tmp_path / "r" / "RAW"
    write(raw / "DataR_CH5@V1730_321_r.CSV", "FLAGS;TIMETAG;ENERGY;SAMPLES\n16;7000;1;4;5\n")
    write(raw / "DataR_CH5@V1730_321_r_1.CSV", "17;9000;1;6;7\n")  # no header: the first's
    st = read(tmp_path, "r")
    assert list(st["timestamp"]) == [7000, 9000] and list(st["flags"]) == [16, 17]
    assert list(st["board"]) == [321, 321] and list(st["channel"]) == [5, 5]
    assert [list(w) for w in st["wave"]] == [[4, 5], [6, 7]]


def test_field_count_contradicting_the_header(tmp_path):
    raw = tmp_path / "r" / "RAW"
    write(raw / "a_CH0_0.CSV", H2 + "\n0;0;1000;0;0;0x4000;7\n")
    with pytest.raises(FormatError, match=r"a_CH0_0\.CSV, line 2: 7 fields.*PROBE_CODE;SAMPLES"):
        read(tmp_path, "r")
    # without SAMPLES the file is list mode (issue 17): more fields than the header is an error
    write(raw / "a_CH0_0.CSV", "BOARD;CHANNEL;TIMETAG;ENERGY\n0;0;1000;0;5;6\n")
    with pytest.raises(FormatError, match=r"a_CH0_0\.CSV, line 2: 6 fields.*list mode"):
        read(tmp_path, "r")


def test_two_boards_channel_0_kept_apart(tmp_path):
    # defect: two boards' CH0 were one channel (and one record length)
    raw = tmp_path / "r" / "RAW"
    write(raw / "DataR_CH0@V1730_1463_r.CSV", H2 + "\n0;0;1000;0;0;0;1;1;1;1\n0;0;3000;0;0;0;1;1;1;1\n")
    write(raw / "DataR_CH0@V1730_1470_r.CSV", H2 + "\n1;0;1000;0;0;0;1;2;2\n1;0;2000;0;0;0;1;2;2\n")
    st = read(tmp_path, "r")
    assert list(st["board"]) == [0, 1, 1, 0] and list(st["channel"]) == [0, 0, 0, 0]
    assert list(st["length"]) == [3, 2, 2, 3]
    assert list(st["wave"][:, 0]) == [1, 2, 2, 1]


def test_generated_boards_round_trip(tmp_path):
    generate_run(tmp_path, "m", n_channels=2, n_boards=2, n_waveforms=40, n_samples=30,
                 layout="compass2", seed=5)
    assert len(list((tmp_path / "m" / "RAW").iterdir())) == 4
    st = read(tmp_path, "m")
    assert sorted(set(zip(st["board"].tolist(), st["channel"].tolist()))) == [
        (0, 0), (0, 1), (1, 0), (1, 1)]
    ref, _ = synthesize(n_channels=4, n_waveforms=40, n_samples=30, seed=5)
    np.testing.assert_array_equal(st["wave"], ref["wave"])
    np.testing.assert_array_equal(st["board"], ref["channel"] // 2)


def test_comma_delimited_file_says_delimiter(tmp_path):
    raw = tmp_path / "r" / "RAW"
    write(raw / "a_CH0_0.CSV", H2.replace(";", ",") + "\n0,0,1000,0,0,0,1,5,5\n")
    with pytest.raises(FormatError, match=r"a_CH0_0\.CSV, line 1: wrong delimiter"):
        read(tmp_path, "r")
    write(raw / "a_CH0_0.CSV", "0,0,1000,0,0,0,1,5,5\n")
    with pytest.raises(FormatError, match=r"line 1: wrong delimiter"):
        read(tmp_path, "r")


@pytest.mark.parametrize("tag", [10**18, 2**62 + 12345, 2**63 - 1])
def test_timetag_up_to_int64(tmp_path, tag):
    # defect: TIMETAG >= 1e18 ps (11.6 days) failed as "non-numeric"
    write(tmp_path / "r" / "RAW" / "a_CH0_0.CSV", f"{H2}\n0;0;{tag};0;0;0;1;5;5\n")
    st = read(tmp_path, "r")
    assert st["timestamp"][0] == tag and st["time"][0] == tag // 1000


def test_timetag_past_int64_is_an_error(tmp_path):
    write(tmp_path / "r" / "RAW" / "a_CH0_0.CSV", f"{H2}\n0;0;{2**63};0;0;0;1;5;5\n")
    with pytest.raises(FormatError, match=r"line 2: value out of range in column 2"):
        read(tmp_path, "r")


def test_file_gone_mid_run_names_run_and_file(tmp_path):
    generate_run(tmp_path, "g", n_channels=2, n_waveforms=10, n_samples=16)
    a = get_adapter("vx2730")
    files = a.list_files(tmp_path, "g")
    (tmp_path / str(files["path"][1])).unlink()
    with pytest.raises(MissingFileError, match=r"'g'.*DataR_CH1@V2730_0\.CSV.*no longer exists"):
        a.read(tmp_path, files, "g")


def test_flags_and_saturation_in_st_waveforms(tmp_path):
    raw = tmp_path / "s" / "RAW"
    rows = [
        "0;0;1000;0;0;0x4000;1;8000;8000;8000",  # fine
        "0;0;2000;0;0;0x4000;1;8000;16383;8000",  # at the upper limit
        "0;0;3000;0;0;0x4000;1;8000;0;8000",  # at the lower limit
        "0;0;4000;0;0;0x4400;1;8000;8000;8000",  # CoMPASS: input saturating
        "0;0;5000;0;0;0x80;1;8000;8000;8000",  # CoMPASS: saturation in the gate
    ]
    write(raw / "DataR_CH0@V1730_1463_s.CSV", H2 + "\n" + "\n".join(rows) + "\n")
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(tmp_path)})
    ctx.register(standard_plugins())
    st = ctx.get_data("s", "st_waveforms")
    assert st.dtype == st_waveforms_dtype(3)
    assert st.dtype["flags"] == np.uint32
    assert list(st["flags"]) == [0x4000, 0x4000, 0x4000, 0x4400, 0x80]
    assert list(st["saturated"]) == [False, True, True, True, True]
    ctx.set_config({"adc_max": 20000})  # a 14-bit limit is an option
    assert list(ctx.get_data("s", "st_waveforms")["saturated"]) == [False, False, True, True, True]


def test_padding_beyond_length_is_not_saturation(tmp_path):
    from waveform_analysis.saturation import saturated

    st = np.zeros(2, dtype=st_waveforms_dtype(4))
    st["wave"] = 8000
    st["wave"][0, 2:] = 0  # zero padding past length
    st["length"] = [2, 4]
    assert list(saturated(st)) == [False, False]


@settings(max_examples=20, deadline=None)
@given(
    columns=hst.sampled_from([
        ("BOARD", "CHANNEL", "TIMETAG", "ENERGY", "ENERGYSHORT", "FLAGS", "PROBE_CODE"),
        ("BOARD", "CHANNEL", "TIMETAG", "ENERGY", "ENERGYSHORT", "FLAGS"),
        ("TIMETAG", "ENERGY", "ENERGYSHORT", "FLAGS"),
        ("CHANNEL", "FLAGS", "BOARD", "TIMETAG"),
    ]),
    layout=hst.sampled_from(["generator", "compass2"]),
    segments=hst.integers(1, 3),
    seed=hst.integers(0, 2**31 - 1),
    hex_flags=hst.booleans(),
)
def test_property_columns_round_trip(tmp_path_factory, columns, layout, segments, seed, hex_flags):
    rng = np.random.default_rng(seed)
    n, ns = int(rng.integers(1, 8)), int(rng.integers(1, 10))
    st = np.zeros(n, dtype=st_waveforms_dtype(ns))
    st["timestamp"] = np.sort(rng.integers(0, 2**62, n))
    st["channel"] = 3
    st["length"] = ns
    st["wave"] = rng.integers(-32768, 32768, (n, ns))
    flags = rng.integers(0, 2**32, n)
    root = tmp_path_factory.mktemp("cols")
    write_vx2730(root / "p" / "RAW", st, columns=columns, layout=layout, run_name="p",
                 n_segments=min(n, segments), flags=flags, hex_flags=hex_flags)
    back = read(root, "p")
    np.testing.assert_array_equal(back["timestamp"], st["timestamp"])
    np.testing.assert_array_equal(back["wave"], st["wave"])
    np.testing.assert_array_equal(back["channel"], st["channel"])
    np.testing.assert_array_equal(back["flags"], flags)
    want_board = 0 if "BOARD" in columns or layout == "generator" else 1463
    assert np.all(back["board"] == want_board)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # no example may warn
@given(
    run=hst.sampled_from(["run", "run_7", "Background_250322", "x_1_2", "r2", "7"]),
    n_seg=hst.integers(1, 12),
    serial=hst.integers(1, 32767),
)
def test_property_compass2_segments(tmp_path_factory, warnings_log, run, n_seg, serial):
    root = tmp_path_factory.mktemp("names")
    raw = root / run / "RAW"
    raw.mkdir(parents=True)
    for seg in range(n_seg):
        tail = f"_{seg}" if seg else ""
        head = H2 + "\n" if seg == 0 else ""
        (raw / f"DataR_CH3@V1730_{serial}_{run}{tail}.CSV").write_text(
            f"{head}0;3;{1000 * seg};0;0;0;1;{seg};{seg}\n")
    files = get_adapter("vx2730").list_files(root, run)
    assert list(files["segment"]) == list(range(n_seg))
    assert np.all(files["board"] == serial) and np.all(files["channel"] == 3)
    st = read(root, run)
    assert [int(w[0]) for w in st["wave"]] == list(range(n_seg))
    assert not warnings_log


def test_daq_folder_unknown_or_unsupported_is_a_config_error(tmp_path):
    from waveform_analysis.errors import ConfigError

    generate_run(tmp_path, "b", fmt="v1725", n_channels=1, n_waveforms=5, n_samples=16)
    ctx = Context(storage_dir=tmp_path / "cache", config={
        "data_root": str(tmp_path), "daq_adapter": "v1725", "daq_folder": "filtered"})
    ctx.register(standard_plugins())
    with pytest.raises(ConfigError, match="daq_folder='filtered'.*'v1725'"):
        ctx.get_data("b", "st_waveforms")
    with pytest.raises(ConfigError, match="daq_folder: unknown folder 'raws'"):
        get_adapter("vx2730").list_files(tmp_path, "b", folder="raws")


def test_compass2_raw_is_default_unfiltered_on_request(tmp_path):
    row = "0;0;1000;0;0;0;1;5;5\n"
    write(tmp_path / "r" / "RAW" / "DataR_CH0@V1730_1463_r.CSV", H2 + "\n" + row)
    write(tmp_path / "r" / "UNFILTERED" / "DataU_CH0@V1730_1463_r.CSV", H2 + "\n" + row + row)
    assert len(read(tmp_path, "r")) == 1
    assert len(read(tmp_path, "r", folder="unfiltered")) == 2


@given(data=hst.binary(max_size=300), step=hst.integers(1, 64))
def test_newlines_are_counted_in_pieces_as_in_the_whole(data, step):
    from waveform_analysis.daq.compass.csv_files import count_newlines

    assert count_newlines(np.frombuffer(data, np.uint8), step) == data.count(b"\n")
