"""CoMPASS BIN 2.x and 1.x: written by the generator (an independent writer), read back."""

from pathlib import Path

import numpy as np
import pytest

from waveform_analysis import Context, standard_plugins
from waveform_analysis.daq import detect_adapter, get_adapter
from waveform_analysis.errors import FormatError, MissingFileError, NoDataError
from waveform_analysis.synthetic import generate_run, synthesize, write_compass_bin
from waveform_analysis.synthetic.compass_bin import CALIBRATION_GAIN

FIELDS = ["time", "timestamp", "board", "channel", "length", "wave", "energy", "energy_short"]
SMALL = {"n_channels": 2, "n_waveforms": 60, "n_samples": 48, "seed": 5}


def read(root, run, adapter="compass"):
    a = get_adapter(adapter)
    return a.read(root, a.list_files(root, run), run)


def assert_records(st, ref, fields=FIELDS):
    assert len(st) == len(ref)
    for f in fields:
        np.testing.assert_array_equal(st[f], ref[f], err_msg=f)


@pytest.mark.parametrize("version", ["2.x", "1.x"])
def test_round_trip_with_waveforms(tmp_path, version):
    layout = "compass1" if version == "1.x" else "compass2"
    generate_run(tmp_path, "r", fmt="compass-bin", layout=layout, n_segments=2, **SMALL)
    adapter, found = detect_adapter(tmp_path, "r")
    folder = "UNFILTERED" if version == "1.x" else "RAW"
    assert adapter.name == "compass" and found == f"CoMPASS {version} BIN in {folder}"
    st = read(tmp_path, "r")
    ref, _ = synthesize(**SMALL)
    ref["board"] = 0  # the events' own board field
    assert_records(st, ref)
    assert np.all(st["dt"] == 2.0) and np.all(st["flags"] == 0x4000)
    assert np.all(np.isnan(st["energy_calibrated"]))
    info = adapter.run_info(tmp_path, "r", adapter.list_files(tmp_path, "r"))
    assert info.version == version and info.model == "DT5730" and info.record_length == 48
    assert info.sources["dt_ns"] == "board model DT5730 (x730 family)"


def test_list_mode_gives_triggers_and_st_waveforms_points_to_them(tmp_path):
    generate_run(tmp_path, "r", fmt="compass-bin", samples=False, **SMALL)
    ctx = Context(storage_dir=tmp_path / "c", config={"data_root": str(tmp_path)})
    ctx.register(standard_plugins())
    info = ctx.run_info("r")
    assert info["has_waveforms"] is False and info["version"] == "2.x"
    trig = ctx.get_data("r", "triggers")
    ref, _ = synthesize(**SMALL)
    assert len(trig) == len(ref)
    np.testing.assert_array_equal(trig["energy"], ref["energy"])
    np.testing.assert_array_equal(trig["timestamp"], ref["timestamp"])
    with pytest.raises(NoDataError, match=r"run 'r' has no waveforms.*get 'triggers'"):
        ctx.get_data("r", "st_waveforms")


def test_single_file_holds_channels_interleaved(tmp_path):
    # CoMPASS's SINGLEFILE option: one file for the board, events of all channels in it
    generate_run(tmp_path, "r", fmt="compass-bin", single_file=True, **SMALL)
    assert len(list((tmp_path / "r" / "RAW").iterdir())) == 1
    st = read(tmp_path, "r")
    ref, _ = synthesize(**SMALL)
    assert_records(st, ref, ["time", "channel", "wave", "energy"])


@pytest.mark.parametrize("ext", [".BIN", ".CSV"])
def test_singlefile_named_as_compass_names_it(tmp_path, ext):
    # CoMPASS 2.x names its SINGLEFILE output RAW/SDataR_<run>.BIN|CSV: no channel, model or
    # serial in the name (each record names its board and channel; the settings the model)
    fmt = "compass-bin" if ext == ".BIN" else "compass-csv"
    kw = {"single_file": True} if ext == ".BIN" else {"layout": "compass2"}
    generate_run(tmp_path, "r", fmt=fmt, **kw, **SMALL)
    raw = tmp_path / "r" / "RAW"
    if ext == ".BIN":
        (only,) = raw.iterdir()
        only.rename(raw / "SDataR_r.BIN")
    else:  # the channels' files as one, rows in time order
        rows, header = [], ""
        for p in sorted(raw.iterdir()):
            header, *lines = p.read_text().splitlines()
            rows += lines
            p.unlink()
        rows.sort(key=lambda line: int(line.split(";")[2]))
        (raw / "SDataR_r.CSV").write_text("\n".join([header, *rows]) + "\n")
    assert detect_adapter(tmp_path, "r")[1] == f"CoMPASS 2.x {ext[1:]} in RAW"
    files = get_adapter("compass").list_files(tmp_path, "r")
    assert len(files) == 1 and files["channel"][0] == -1  # "in file"
    ctx = Context(storage_dir=tmp_path / "c", config={"data_root": str(tmp_path), "dt_ns": 2.0})
    ctx.register(standard_plugins())
    st = ctx.get_data("r", "st_waveforms")
    ref, _ = synthesize(**SMALL)
    assert_records(st, ref, ["time", "channel", "wave", "energy"])


def test_continuation_without_header_word_takes_the_first_files_layout(tmp_path):
    raw = tmp_path / "r" / "RAW"
    st0, _ = synthesize(**SMALL)
    write_compass_bin(raw, st0, n_segments=3, run_name="r", continuation_header=False,
                      calibrated=True)
    names = sorted(p.name for p in raw.iterdir())
    assert (raw / names[1]).read_bytes()[:2] != b"\xef\xca"
    st = read(tmp_path, "r")
    ref, _ = synthesize(**SMALL)
    assert_records(st, ref, ["time", "channel", "wave", "energy", "energy_short"])
    np.testing.assert_allclose(st["energy_calibrated"], ref["energy"] * CALIBRATION_GAIN)


def test_continuations_sorted_by_number(tmp_path):
    # defect (issue 17): names sorted as text put _10 before _2
    raw = tmp_path / "r" / "RAW"
    st0, _ = synthesize(n_channels=1, n_waveforms=120, n_samples=8, seed=1)
    write_compass_bin(raw, st0, n_segments=12, run_name="r")
    files = get_adapter("compass").list_files(tmp_path, "r")
    assert list(files["segment"]) == list(range(12))
    assert str(files["path"][10]).endswith("_r_10.BIN")
    st = read(tmp_path, "r")
    assert np.all(np.diff(st["time"]) >= 0) and len(st) == 120


def _bin_file(tmp_path, **kw):
    generate_run(tmp_path, "r", fmt="compass-bin", **{**SMALL, **kw})
    return sorted((tmp_path / "r" / "RAW").iterdir())[0]


EVENT = 25 + 2 * 48  # a 0xCAED event with 48 samples


def test_truncated_event_names_file_and_offset(tmp_path):
    path = _bin_file(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: 2 + 10 * EVENT + 30])
    with pytest.raises(FormatError, match=rf"{path.name}, byte offset {2 + 10 * EVENT}: truncated event"):
        read(tmp_path, "r")


def test_impossible_size_field(tmp_path):
    path = _bin_file(tmp_path)
    data = bytearray(path.read_bytes())
    at = 2 + 3 * EVENT
    data[at + 21 : at + 25] = (0x7FFFFFFF).to_bytes(4, "little")  # n_samples of event 3
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=rf"byte offset {at}: impossible event size: n_samples"):
        read(tmp_path, "r")


def test_unknown_header_word(tmp_path):
    path = _bin_file(tmp_path)
    data = bytearray(path.read_bytes())
    data[:2] = (0xBEEF).to_bytes(2, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=rf"{path.name}, byte offset 0: unknown header word 0xBEEF"):
        read(tmp_path, "r")


def test_missing_middle_segment_is_a_warning(tmp_path, warnings_log):
    generate_run(tmp_path, "r", fmt="compass-bin", n_segments=3, **SMALL)
    middle = next(p for p in (tmp_path / "r" / "RAW").iterdir() if p.stem.endswith("_r_1"))
    middle.unlink()
    st = read(tmp_path, "r")
    assert 0 < len(st) < 2 * 60
    assert any("gap in the segment numbers, missing 1" in m for m in warnings_log)


def test_file_shrinking_or_gone_mid_read(tmp_path, monkeypatch):
    from waveform_analysis.daq.compass import bin_reader

    path = _bin_file(tmp_path)
    a = get_adapter("compass")
    files = a.list_files(tmp_path, "r")
    info = a.run_info(tmp_path, "r", files)
    scan = bin_reader._scan_file

    def shrink_then_scan(k, run_id, rel, full, lay, pool, *listed):
        blocks = scan(k, run_id, rel, full, lay, pool, *listed)
        if full == path:
            full.write_bytes(full.read_bytes()[: 2 + 5 * EVENT])
        return blocks

    monkeypatch.setattr(bin_reader, "_scan_file", shrink_then_scan)
    with pytest.raises(FormatError, match=rf"{path.name}, byte offset \d+: the file shrank"):
        bin_reader.read_bin(tmp_path, files, "r", _Sink(), info)
    monkeypatch.setattr(bin_reader, "_scan_file", scan)
    path.unlink()
    with pytest.raises(MissingFileError, match=f"{path.name} was listed"):
        bin_reader.read_bin(tmp_path, files, "r", _Sink(), info)


class _Sink:
    def begin(self, n, dtype):
        pass

    def put(self, row0, rows):
        pass


def test_block_size_does_not_change_the_records(tmp_path, monkeypatch):
    from waveform_analysis.daq.compass import bin_reader

    generate_run(tmp_path, "r", fmt="compass-bin", **SMALL)
    ref = read(tmp_path, "r")
    for block in (7, 200, 5000):
        monkeypatch.setattr(bin_reader, "BLOCK_BYTES", block)
        assert_records(read(tmp_path, "r"), ref)


def test_triggers_row_i_is_record_i(tmp_path):
    generate_run(tmp_path, "r", fmt="compass-bin", flags=0x8000 | 0x4000, **SMALL)
    ctx = Context(storage_dir=tmp_path / "c", config={"data_root": str(tmp_path)})
    ctx.register(standard_plugins())
    st = ctx.get_data("r", "st_waveforms")
    trig = ctx.get_data("r", "triggers")
    for f in ("time", "timestamp", "board", "channel", "energy", "energy_short", "flags"):
        np.testing.assert_array_equal(trig[f], st[f], err_msg=f)
    assert trig["pileup"].all() and not trig["fake"].any()
    np.testing.assert_array_equal(trig["saturated"], st["saturated"])


def test_path_in_errors_is_relative_to_data_root(tmp_path):
    path = _bin_file(tmp_path)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(FormatError, match=r"run 'r': file r/RAW/DataR_CH0@DT5730_1463_r\.BIN"):
        read(tmp_path, "r")
    assert Path(path).exists()


@pytest.mark.parametrize("samples", [True, False])
def test_channel_files_are_filled_in_time_order(tmp_path, samples):
    # one time-sorted file per channel (two segments each): the records reach the staging in
    # time order, so that it need not gather them again
    from waveform_analysis.daq.staging import RecordStaging

    generate_run(tmp_path, "r", fmt="compass-bin", n_segments=2, samples=samples, **SMALL)
    a = get_adapter("compass")
    files = a.list_files(tmp_path, "r")
    with RecordStaging() as sink:
        a.read_into(tmp_path, files, "r", sink)
        np.testing.assert_array_equal(sink.order(), np.arange(sink.n_rows))
        st = sink.records()
    ref, _ = synthesize(**SMALL)
    assert_records(st, ref, ["time", "timestamp", "channel", "energy"] + (["wave"] if samples else []))


def test_staging_past_its_budget_gets_the_file_order_fill(tmp_path):
    # rows that go to the scratch file: no time-order keys kept (the staging sorts), same records
    from waveform_analysis.daq.staging import RecordStaging

    generate_run(tmp_path, "r", fmt="compass-bin", n_segments=2, **SMALL)
    a = get_adapter("compass")
    files = a.list_files(tmp_path, "r")
    with RecordStaging(4096, tmp_path / "scratch" / "entry") as sink:
        a.read_into(tmp_path, files, "r", sink)
        assert sink._array is None  # in the scratch file
        assert not np.array_equal(sink.order(), np.arange(sink.n_rows))  # put in file order
        st = sink.records()
    assert_records(st, read(tmp_path, "r"))
