"""WaveDump binary, x742 float binary and ASCII runs, the WaveDump config, and their bad inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from waveform_analysis.daq import blockscan
from waveform_analysis.daq.base import RunInfo
from waveform_analysis.daq.staging import RecordStaging
from waveform_analysis.daq.wavedump import WaveDumpAdapter, read_config
from waveform_analysis.daq.wavedump.reader import binary_format
from waveform_analysis.errors import ConfigError, FormatError, MissingFileError
from waveform_analysis.synthetic import synthesize
from waveform_analysis.synthetic.wavedump import write_wavedump

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def records(n_waveforms=40, n_samples=96, tick_ps=8000):
    st, _ = synthesize(n_channels=2, n_waveforms=n_waveforms, n_samples=n_samples, seed=3)
    st["timestamp"] = st["timestamp"] // tick_ps * tick_ps
    st["time"] = st["timestamp"] // 1000
    return st


def read(root, run, dt_ns=None, **kw):
    adapter = WaveDumpAdapter(**kw)
    files = adapter.list_files(root, run)
    info = adapter.run_info(root, run, files, dt_ns)
    with RecordStaging() as sink:
        adapter.read_into(root, files, run, sink, info)
        return sink.records()


def same(got, expected):
    assert len(got) == len(expected)
    for name in ("timestamp", "time", "channel", "board", "length"):
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    np.testing.assert_array_equal(got["wave"], expected["wave"])


@pytest.mark.parametrize("underscore", [False, True])
def test_binary_round_trip(tmp_path, underscore):
    st = records()
    write_wavedump(tmp_path / "run", st, underscore=underscore)
    got = read(tmp_path, "run")
    same(got, st)
    assert np.all(got["dt"] == 2.0)  # V1730 from the config's name


def test_ascii_round_trip(tmp_path):
    st = records()
    write_wavedump(tmp_path / "run", st, kind="ascii")
    same(read(tmp_path, "run"), st)


def test_x742_float_samples_are_rounded_and_drs4_sets_dt(tmp_path):
    st = records(tick_ps=8500)
    write_wavedump(tmp_path / "run", st, model="DT5742", drs4_frequency=750, float_offset=0.3)
    adapter = WaveDumpAdapter()
    files = adapter.list_files(tmp_path, "run")
    info = adapter.run_info(tmp_path, "run", files)
    assert info.encoding == "binary float32 (x742)" and info.dt_ns == pytest.approx(4 / 3)
    assert "DRS4_FREQUENCY" in info.sources["dt_ns"] and info.model == "DT5742"
    got = adapter.read(tmp_path, files, "run")
    same(got, st)
    assert np.all(got["dt"] == pytest.approx(4 / 3))


def test_x742_fast_trigger_file_is_float_even_without_model(tmp_path):
    st = records(tick_ps=8500)
    st = st[st["channel"] == 0]
    write_wavedump(tmp_path / "run", st, model="DT5742", drs4_frequency=5000, config_name="WaveDumpConfig.txt")
    (tmp_path / "run" / "wave0.dat").rename(tmp_path / "run" / "TR_0_0.dat")
    adapter = WaveDumpAdapter()
    files = adapter.list_files(tmp_path, "run")
    assert files["channel"][0] == -1  # read from the event headers
    info = adapter.run_info(tmp_path, "run", files)
    assert info.encoding == "binary float32 (x742)" and info.dt_ns == pytest.approx(0.2)


def test_float_samples_are_recognised_without_a_name(tmp_path):
    st = records(tick_ps=8500)
    write_wavedump(tmp_path / "run", st, model="DT5742", config_name="other.txt")
    adapter = WaveDumpAdapter()
    files = adapter.list_files(tmp_path, "run")
    info = adapter.run_info(tmp_path, "run", files, dt_ns=1.0)
    assert info.encoding == "binary float32 (x742)" and info.sources["dt_ns"] == "option dt_ns"
    with pytest.raises(ConfigError, match=r"run 'run'.*DRS4_FREQUENCY.*dt_ns"):
        adapter.run_info(tmp_path, "run", files)


@pytest.mark.parametrize("eighths", [3, 5, 7])
def test_trigger_time_tag_rolls_over(tmp_path, eighths):
    # triggers 3/8, 5/8 and 7/8 of the 31-bit counter's period apart (6.4, 10.7 and 15 s at
    # 8 ns): every roll-over is seen (a drop by more than half the period missed the last two)
    st = records(n_waveforms=20)
    step = (eighths << 28) * 8000  # eighths/8 of the 31-bit counter per trigger, in ps
    st["timestamp"] = np.repeat(np.arange(20, dtype=np.int64) * step + 8000, 2)
    st["time"] = st["timestamp"] // 1000
    write_wavedump(tmp_path / "run", st)
    got = read(tmp_path, "run")
    np.testing.assert_array_equal(got["timestamp"], st["timestamp"])


def test_unknown_sample_period_names_the_run_and_option(tmp_path):
    write_wavedump(tmp_path / "run", records(), config_name="WaveDumpConfig.txt")
    with pytest.raises(ConfigError, match=r"run 'run'.*dt_ns"):
        read(tmp_path, "run")
    got = read(tmp_path, "run", dt_ns=4.0)
    assert np.all(got["dt"] == 4.0)


def test_config_values_and_channel_overrides(tmp_path):
    path = tmp_path / "WaveDumpConfig.txt"
    path.write_text(
        "# comment\n[COMMON]\nRECORD_LENGTH  1024 # samples\nPOST_TRIGGER 20\n"
        "PULSE_POLARITY NEGATIVE\nDRS4_FREQUENCY 1\n[3]\nPULSE_POLARITY POSITIVE\n"
    )
    cfg = read_config(path)
    assert cfg.record_length == 1024 and cfg.pretrigger_samples == 819
    assert cfg.polarity() == "negative" and cfg.polarity(3) == "positive"
    assert cfg.drs4_dt_ns == 0.4
    path.write_text("[COMMON]\nRECORD_LENGTH lots\n")
    with pytest.raises(ConfigError, match="line 2: RECORD_LENGTH"):
        _ = read_config(path).record_length


def test_config_record_length_disagreeing_with_files_warns(tmp_path, warnings_log):
    write_wavedump(tmp_path / "run", records(n_samples=96))
    cfg = next((tmp_path / "run").glob("WaveDumpConfig*.txt"))
    cfg.write_text(cfg.read_text().replace("RECORD_LENGTH  96", "RECORD_LENGTH  128"))
    got = read(tmp_path, "run")
    assert np.all(got["length"] == 96)
    assert any(
        "wave0.dat, byte offset 24" in m and "RECORD_LENGTH 128" in m and "run 'run'" in m
        for m in warnings_log
    )


def test_config_without_event_headers_is_an_error(tmp_path):
    write_wavedump(tmp_path / "run", records())
    cfg = next((tmp_path / "run").glob("WaveDumpConfig*.txt"))
    cfg.write_text(cfg.read_text().replace("OUTPUT_FILE_HEADER  YES", "OUTPUT_FILE_HEADER  NO"))
    with pytest.raises(ConfigError, match="OUTPUT_FILE_HEADER NO"):
        read(tmp_path, "run")


def test_truncated_last_event_reads_the_complete_ones_and_warns(tmp_path, warnings_log):
    st = records()
    write_wavedump(tmp_path / "run", st[st["channel"] == 0])
    path = tmp_path / "run" / "wave0.dat"
    event = 24 + 2 * 96
    path.write_bytes(path.read_bytes()[: 10 * event + 50])
    got = read(tmp_path, "run")
    assert len(got) == 10
    assert any(f"byte offset {10 * event}" in m and "run 'run'" in m and "wave0.dat" in m
               for m in warnings_log)  # fmt: skip


@pytest.mark.parametrize(
    ("word", "value", "message"),
    [(0, 8, "impossible event size"), (0, 24 + 3, "impossible event size"), (3, 999, "not a WaveDump")],
)
def test_corrupt_event_header_names_file_and_offset(tmp_path, word, value, message):
    st = records()
    write_wavedump(tmp_path / "run", st[st["channel"] == 0])
    path = tmp_path / "run" / "wave0.dat"
    data = np.fromfile(path, np.uint8)
    at = 5 * (24 + 2 * 96)
    data[at + 4 * word : at + 4 * word + 4] = np.frombuffer(np.uint32(value).tobytes(), np.uint8)
    data.tofile(path)
    with pytest.raises(FormatError, match=rf"run 'run': file run/wave0.dat, byte offset {at}: .*{message}"):
        read(tmp_path, "run")


def test_file_shrinking_between_the_passes_is_an_error(tmp_path):
    st = records()
    write_wavedump(tmp_path / "run", st[st["channel"] == 0])
    fmt = binary_format(2)
    scan = blockscan.scan_file(fmt, "run", "run/wave0.dat", tmp_path / "run" / "wave0.dat")
    path = tmp_path / "run" / "wave0.dat"
    path.write_bytes(path.read_bytes()[:1000])
    from waveform_analysis.daq.staging import RecordStaging

    with RecordStaging() as sink, pytest.raises(FormatError, match=r"run/wave0.dat, byte offset 1000.*shrunk"):
        blockscan.read_scans(fmt, "run", tmp_path, [scan], RunInfo("wavedump", dt_ns=2.0), 8.0,
                             1 << 31, sink)  # fmt: skip
    path.unlink()
    with RecordStaging() as sink, pytest.raises(MissingFileError, match="no longer exists"):
        blockscan.read_scans(fmt, "run", tmp_path, [scan], RunInfo("wavedump", dt_ns=2.0), 8.0,
                             1 << 31, sink)  # fmt: skip


def test_blocks_cut_at_event_boundaries_give_the_same_records(tmp_path):
    st = records(n_waveforms=50)
    write_wavedump(tmp_path / "run", st[st["channel"] == 1])
    fmt = binary_format(2)
    whole = blockscan.scan_file(fmt, "run", "run/wave1.dat", tmp_path / "run" / "wave1.dat")
    small = blockscan.scan_file(fmt, "run", "run/wave1.dat", tmp_path / "run" / "wave1.dat",
                                block_bytes=1000)  # fmt: skip
    assert len(small.blocks) > 5
    np.testing.assert_array_equal(whole.meta, small.meta)


def test_ascii_bad_header_line_and_bad_sample(tmp_path):
    st = records()
    write_wavedump(tmp_path / "run", st[st["channel"] == 0], kind="ascii")
    path = tmp_path / "run" / "wave0.txt"
    text = path.read_text()
    second = text.index("Channel: 0", text.index("Channel: 0") + 1)
    path.write_text(text[:second] + "Kanal" + text[second + len("Channel"):])
    with pytest.raises(FormatError, match=rf"byte offset {second}: .*unexpected line"):
        read(tmp_path, "run")
    lines = text.split("\n")
    lines[7 + 96 + 7 + 3] = "abc"
    path.write_text("\n".join(lines))
    with pytest.raises(FormatError, match="not a number"):
        read(tmp_path, "run")


def test_ascii_last_event_cut_is_dropped_with_a_warning(tmp_path, warnings_log):
    st = records()
    write_wavedump(tmp_path / "run", st[st["channel"] == 0], kind="ascii")
    path = tmp_path / "run" / "wave0.txt"
    lines = path.read_text().split("\n")
    path.write_text("\n".join(lines[: 3 * (7 + 96) + 7 + 40]))
    assert len(read(tmp_path, "run")) == 3
    assert any("the last event is cut" in m for m in warnings_log)


def test_binary_and_ascii_in_one_folder_is_an_error(tmp_path):
    st = records()
    write_wavedump(tmp_path / "run", st)
    write_wavedump(tmp_path / "run", st, kind="ascii")
    with pytest.raises(ConfigError, match="both WaveDump binary"):
        WaveDumpAdapter().list_files(tmp_path, "run")


def test_walk_kernel_stops_before_an_event_the_block_cuts():
    from waveform_analysis.daq.wavedump import kernels

    event = np.zeros(6 + 4, np.uint32)
    event[0] = 24 + 16
    buf = np.tile(event, 3).view(np.uint8)
    params = np.array([2, 0, 0, 0], np.int64)
    meta = np.empty((0, len(blockscan.META)), np.int64)
    assert kernels.walk_binary(buf, 100, False, False, 0, meta, params) == (0, 80, 2)
    assert kernels.walk_binary(buf, 100, True, False, 0, meta, params) == (blockscan.TRUNCATED, 80, 2)


needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/realdata is absent")


@needs_real
def test_real_wavedump_binary_v1730b(tmp_path, warnings_log):
    """Wavedump_Wrapper_TPB/wave_1.dat: V1730B ch1, 10 002 events of 130 samples (config says
    128), trigger time tags 125 000 ticks of 8 ns apart (1 ms)."""
    run = tmp_path / "tpb"
    run.mkdir()
    for name in ("wave_1.dat", "WaveDumpConfig_1730B_TPB.txt"):
        shutil.copy(REAL / "Wavedump_Wrapper_TPB" / name, run / name)
    adapter = WaveDumpAdapter()
    files = adapter.list_files(tmp_path, "tpb")
    info = adapter.run_info(tmp_path, "tpb", files)
    assert info.model == "1730B" and info.dt_ns == 2.0 and info.adc_bits == 14
    assert info.pretrigger_samples == 64 and info.polarity == "positive"
    assert info.record_length == 130 and "RECORD_LENGTH 128" in info.notes[0]
    got = adapter.read(tmp_path, files, "tpb")
    assert len(got) == 10002 and np.all(got["length"] == 130) and np.all(got["channel"] == 1)
    assert np.median(np.diff(got["timestamp"])) == 125000 * 8000
    assert 7600 < np.median(got["wave"][:, :20]) < 7800
    assert any("RECORD_LENGTH 128" in m for m in warnings_log)


@needs_real
def test_real_wavedump_ascii(tmp_path):
    """pyrate/WDTestData.txt: 153 events on ch0 of 1030 samples (event numbers 319-471)."""
    (tmp_path / "wd").mkdir()
    shutil.copy(REAL / "pyrate" / "WDTestData.txt", tmp_path / "wd" / "wave0.txt")
    got = read(tmp_path, "wd", model="V1730")
    assert len(got) == 153 and np.all(got["length"] == 1030) and np.all(got["channel"] == 0)
    assert got["wave"][0, :3].tolist() == [15590, 15592, 15600]
    assert got["wave"][-1, 1027:1030].tolist() == [15599, 15593, 15590]


def test_several_configs_in_the_run_folder_is_an_error_unless_one_is_named(tmp_path):
    write_wavedump(tmp_path / "run", records(), config_name="WaveDumpConfig_V1730.txt")
    write_wavedump(tmp_path / "run", records(), config_name="WaveDumpConfig_V1725.txt")
    with pytest.raises(ConfigError, match="several WaveDump configs"):
        read(tmp_path, "run")
    assert np.all(read(tmp_path, "run", config="WaveDumpConfig_V1725.txt")["dt"] == 4.0)


def test_ascii_fractions_hex_and_crlf_lines(tmp_path):
    (tmp_path / "run").mkdir()
    header = ("Record Length: 4\r\nBoardID:  3\r\nChannel: 8\r\nEvent Number: 0\r\nPattern: 0x0010\r\n"
              "Trigger Time Stamp: {t}\r\nDC offset (DAC): 0x1999\r\n")  # fmt: skip
    body = header.format(t=0x7FFFFF00) + "1.6\r\n2.4\r\n-0.7\r\n3000\r\n"
    body += header.format(t=0x80000000 | 50) + "1\r\n2\r\n3\r\n4"  # rolled over; no final line end
    (tmp_path / "run" / "wave8.txt").write_text(body, newline="")
    got = read(tmp_path, "run", model="DT5742", dt_ns=1.0)
    assert got["wave"][:, :4].tolist() == [[2, 2, -1, 3000], [1, 2, 3, 4]]
    assert got["board"].tolist() == [3, 3] and got["channel"].tolist() == [8, 8]
    assert got["timestamp"].tolist() == [0x7FFFFF00 * 8500, ((1 << 31) + 50) * 8500]


def test_channel_files_are_copied_in_time_order(tmp_path):
    # one time-sorted file per channel: the records reach the staging in time order (no
    # gather of every record afterwards), and equal to the files' records in that order
    st = records(n_waveforms=300)
    write_wavedump(tmp_path / "run", st)
    adapter = WaveDumpAdapter()
    files = adapter.list_files(tmp_path, "run")
    info = adapter.run_info(tmp_path, "run", files)
    with RecordStaging() as sink:
        adapter.read_into(tmp_path, files, "run", sink, info)
        np.testing.assert_array_equal(sink.order(), np.arange(len(st)))
        same(sink.records(), st)


def test_bad_sample_in_the_second_channel_file_names_it(tmp_path):
    st = records()
    write_wavedump(tmp_path / "run", st, kind="ascii")
    path = tmp_path / "run" / "wave1.txt"
    lines = path.read_text().split("\n")
    lines[7 + 96 + 7 + 3] = "abc"
    at = sum(len(line) + 1 for line in lines[: 7 + 96 + 7 + 3])
    path.write_text("\n".join(lines))
    with pytest.raises(FormatError, match=rf"file run/wave1.txt, byte offset {at}: .*not a number"):
        read(tmp_path, "run")
