"""CAEN readout dumps (standard firmware, DPP-ZLE, DPP-PSD) and their bad inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from waveform_analysis.daq.caen_raw import CaenRawAdapter, detect_firmware
from waveform_analysis.daq.caen_raw.layout import FLAG_BOARD_FAIL, FLAG_PILEUP, PSD, STANDARD, ZLE
from waveform_analysis.daq.staging import RecordStaging
from waveform_analysis.errors import ConfigError, FormatError
from waveform_analysis.synthetic import synthesize
from waveform_analysis.synthetic.caen_raw import write_caen_raw, zle_suppressed

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def records(n_waveforms=30, n_samples=128, n_channels=2):
    st, _ = synthesize(n_channels=n_channels, n_waveforms=n_waveforms, n_samples=n_samples, seed=5)
    st["timestamp"] = st["timestamp"] // 8000 * 8000
    st["time"] = st["timestamp"] // 1000
    return st


def read(root, run, dt_ns=None, **kw):
    adapter = CaenRawAdapter(**kw)
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


def test_standard_round_trip_over_segments(tmp_path):
    st = records(n_channels=3)
    paths = write_caen_raw(tmp_path / "run", st, n_segments=3)
    assert [p.name for p in paths][-1] == "V1730_standard-Board_0-003.dat"
    got = read(tmp_path, "run")
    same(got, st)
    assert np.all(got["dt"] == 2.0) and np.all(got["flags"] == 0)


def test_zle_round_trip_fills_skipped_samples_with_the_baseline(tmp_path):
    st = records()
    write_caen_raw(tmp_path / "run", st, firmware="zle", zle_threshold=12)
    expected = zle_suppressed(st, 12)
    assert not np.array_equal(expected["wave"], st["wave"])  # something was skipped
    same(read(tmp_path, "run"), expected)


def test_psd_round_trip_keeps_charges_and_sample_tick_times(tmp_path):
    st = records()
    st["timestamp"] += 2000  # DPP time tags count 2 ns samples, not 8 ns ticks
    st["time"] = st["timestamp"] // 1000
    write_caen_raw(tmp_path / "run", st, firmware="psd")
    got = read(tmp_path, "run")
    same(got, st)
    adapter = CaenRawAdapter()
    info = adapter.run_info(tmp_path, "run", adapter.list_files(tmp_path, "run"))
    assert info.encoding == "DPP-PSD" and info.energy_fields == ("energy", "energy_short")
    assert np.all(np.isfinite(got["energy"])) and np.all(got["energy"] >= got["energy_short"])
    assert np.all(np.isnan(got["energy_calibrated"]))


def test_psd_extended_time_tag_beyond_31_bits(tmp_path):
    st = records(n_waveforms=5)
    st["timestamp"] = np.repeat(np.arange(5, dtype=np.int64) * (3 << 30) * 2000 + 2000, 2)
    st["time"] = st["timestamp"] // 1000
    write_caen_raw(tmp_path / "run", st, firmware="psd")
    np.testing.assert_array_equal(read(tmp_path, "run")["timestamp"], st["timestamp"])


def test_board_fail_bit_is_kept_in_flags(tmp_path):
    st = records()
    path = write_caen_raw(tmp_path / "run", st)[0]
    words = np.fromfile(path, "<u4")
    words[1] |= 1 << 26
    words.tofile(path)
    got = read(tmp_path, "run")
    assert np.count_nonzero(got["flags"] & FLAG_BOARD_FAIL) == 2


def test_firmware_detection():
    head = [0xA0000000, 0x3, 0, 7]
    std = np.array([head[0] | 8, *head[1:], 0x3C003C00, 0x3C013C01, 0x3C003C00, 0x3C013C01], np.uint32)
    assert detect_firmware(std, "here") == (STANDARD, False)
    zle = np.array([head[0] | 9, *head[1:], (100 << 16) | 3, 0x80000010, 0x00640064,
                    (100 << 16) | 2, 0x80000011], np.uint32)  # fmt: skip
    assert detect_firmware(zle, "here") == (ZLE, False)
    psd = np.array([head[0] | 7, 0x1, 0, 7, 0x80000003, 0x78000001, 5], np.uint32)
    assert detect_firmware(psd, "here") == (PSD, True)
    odd = np.array([head[0] | 7, *head[1:], 0x3C003C00, 0x3C013C01, 0x3C003C00], np.uint32)
    with pytest.raises(FormatError, match="here: .*neither standard, DPP-ZLE nor DPP-PSD.*DPP-PHA"):
        detect_firmware(odd, "here")


def test_truncated_last_event_reads_complete_events_and_warns(tmp_path, warnings_log):
    st = records()
    path = write_caen_raw(tmp_path / "run", st)[0]
    event = 16 + 2 * 2 * 128
    path.write_bytes(path.read_bytes()[: 7 * event + 100])
    got = read(tmp_path, "run")
    assert len(got) == 14
    assert any(f"run/{path.name}, byte offset {7 * event}" in m and "cut" in m for m in warnings_log)


@pytest.mark.parametrize(
    ("word", "value", "message"),
    [
        (0, 0xA0000002, "impossible event size"),
        (0, 0x50000000, "unknown header word"),
        (0, 0xA0000000 | (4 + 127), "channel mask does not match"),
    ],
)
def test_corrupt_headers_name_file_and_offset(tmp_path, word, value, message):
    st = records()
    path = write_caen_raw(tmp_path / "run", st)[0]
    words = np.fromfile(path, "<u4")
    event = 4 + 128
    words[3 * event + word] = value
    words.tofile(path)
    with pytest.raises(FormatError, match=rf"run 'run': file run/{path.name}, byte offset {12 * event}: .*{message}"):
        read(tmp_path, "run")


def test_unknown_model_needs_dt_ns(tmp_path):
    write_caen_raw(tmp_path / "run", records(), stem="dump")
    with pytest.raises(ConfigError, match=r"run 'run'.*dt_ns"):
        read(tmp_path, "run")
    assert np.all(read(tmp_path, "run", dt_ns=4.0)["dt"] == 4.0)
    assert np.all(read(tmp_path, "run", model="DT5751")["dt"] == 1.0)


def test_files_of_two_firmwares_in_one_run_are_an_error(tmp_path):
    st = records()
    write_caen_raw(tmp_path / "run", st, stem="a_V1730")
    write_caen_raw(tmp_path / "run", st, firmware="psd", stem="b_V1730")
    with pytest.raises(FormatError, match="different firmwares"):
        read(tmp_path, "run")


def test_psd_pileup_bit_becomes_the_pileup_flag(tmp_path):
    st = records(n_waveforms=4)
    path = write_caen_raw(tmp_path / "run", st, firmware="psd")[0]
    words = np.fromfile(path, "<u4")
    first_charge = 4 + 2 + 1 + 64 + 1  # event header, couple header, time tag, samples, extras
    words[first_charge] |= 1 << 15
    words.tofile(path)
    got = read(tmp_path, "run")
    assert np.count_nonzero(got["flags"] == FLAG_PILEUP) == 1


needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/realdata is absent")


def _real_run(tmp_path, name):
    (tmp_path / "r").mkdir()
    shutil.copy(REAL / "pyrate" / name, tmp_path / "r" / name)
    adapter = CaenRawAdapter()
    files = adapter.list_files(tmp_path, "r")
    return adapter, files, adapter.read(tmp_path, files, "r")


@needs_real
def test_real_standard_firmware_dump(tmp_path, warnings_log):
    """pyrate/1730_RAWTest: 158 complete events, mask 0x3, 1030 samples, the last event cut."""
    adapter, files, got = _real_run(tmp_path, "1730_RAWTest-Board_0-001.dat")
    info = adapter.run_info(tmp_path, "r", files)
    assert info.encoding == "standard" and info.model == "1730" and info.dt_ns == 2.0
    assert np.all(np.isnan(got["energy"]))
    assert len(got) == 2 * 158 and np.all(got["length"] == 1030)
    assert sorted(set(got["channel"].tolist())) == [0, 1] and np.all(got["dt"] == 2.0)
    assert got["wave"][0, :3].tolist() == [0x3C26, 0x3C2A, 0x3C2C]
    assert any("byte offset 653488" in m and "4136 bytes" in m for m in warnings_log)


@needs_real
def test_real_dpp_psd_dump(tmp_path):
    """pyrate/1730_PSDTest: 257 complete board aggregates, one 1024-sample event each."""
    _, _, got = _real_run(tmp_path, "1730_PSDTest-Board_0-001.dat")
    assert len(got) == 257 and np.all(got["length"] == 1024)
    assert np.all(got["energy"] > 0) and np.all(np.isfinite(got["energy_short"]))
    assert np.all(np.diff(got["timestamp"]) > 0)


@needs_real
def test_real_dpp_zle_dump(tmp_path):
    """pyrate/1730_ZLETest: 358 events, mask 0x3, every channel 1028 samples once expanded."""
    _, _, got = _real_run(tmp_path, "1730_ZLETest-Board_0-001.dat")
    assert len(got) == 2 * 358 and np.all(got["length"] == 1028)
    assert abs(np.median(got["wave"]) - 15580) < 200


def test_missing_segment_in_the_middle_warns(tmp_path, warnings_log):
    st = records(n_waveforms=30)
    paths = write_caen_raw(tmp_path / "run", st, n_segments=3)
    paths[1].unlink()
    got = read(tmp_path, "run")
    assert len(got) == 2 * 20
    assert any("board 0: gap in the segment numbers, missing 2" in m for m in warnings_log)


def test_auto_recognises_wavedump_dump_and_compass_runs_in_one_folder(tmp_path):
    from waveform_analysis import Context, standard_plugins
    from waveform_analysis.synthetic import generate_run

    fmts = {"wd": "wavedump", "wda": "wavedump-ascii", "dump": "caen-raw", "csv": "compass-csv"}
    for run, fmt in fmts.items():
        generate_run(tmp_path / "data", run, fmt=fmt, n_waveforms=30, n_samples=256, seed=1)
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(tmp_path / "data")})
    ctx.register(standard_plugins())
    waves = {}
    for run in fmts:
        st = ctx.get_data(run, "st_waveforms")
        triggers = ctx.get_data(run, "triggers")
        np.testing.assert_array_equal(triggers["time"], st["time"])
        assert len(ctx.get_data(run, "peaks")) > 0
        waves[run] = st["wave"]
    info = {run: ctx.run_info(run) for run in fmts}
    assert info["wd"]["format"] == "wavedump" and info["wd"]["encoding"] == "binary u16"
    assert info["wda"]["encoding"] == "ascii" and info["dump"]["encoding"] == "standard"
    assert info["dump"]["dt_ns"] == 2.0 and info["wd"]["sources"]["dt_ns"].startswith("board family")
    for run in ("wd", "wda", "dump"):  # the same pulses as the CoMPASS run of the same seed
        np.testing.assert_array_equal(waves[run], waves["csv"])
