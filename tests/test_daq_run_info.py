"""What a run says about itself: settings.xml, run.info, board models, the dt_ns rule, folders."""

import numpy as np
import pytest

from waveform_analysis import Context, standard_plugins
from waveform_analysis.daq import detect_adapter, get_adapter
from waveform_analysis.daq.models import drs4_dt_ns, family
from waveform_analysis.errors import ConfigError, FormatError, NoDataError, RunNotFoundError
from waveform_analysis.synthetic import generate_run, synthesize

SMALL = {"n_channels": 2, "n_waveforms": 20, "n_samples": 64, "seed": 2}


def settings_xml(sample_ps=4000, reclen_ns=256.0, pretrg_ns=64.0, serial=1463, channel_extra=""):
    entry = ('<entry><key>{k}</key><value><value xsi:type="xs:{t}" '
             'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">{v}</value></value></entry>')
    params = "".join(entry.format(k=k, t=t, v=v) for k, t, v in [
        ("SRV_PARAM_RECLEN", "double", reclen_ns), ("SRV_PARAM_CH_PRETRG", "double", pretrg_ns),
        ("SRV_PARAM_CH_POLARITY", "string", "POLARITY_NEGATIVE"),
        ("SRV_PARAM_CH_GATE", "double", 300.0), ("SRV_PARAM_CH_GATESHORT", "double", 40.0),
        ("SRV_PARAM_CH_GATEPRE", "double", 48.0),
        ("SW_PARAMETER_CH_ENERGY_CALIBRATION_P0", "double", 1.0),
        ("SW_PARAMETER_CH_ENERGY_CALIBRATION_P1", "double", 0.5),
        ("SW_PARAMETER_CH_ENERGY_CALIBRATION_P2", "double", 0.0),
    ])
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<configuration><board><id>2-11-{serial}</id><modelName>DT5725</modelName>
<serialNumber>{serial}</serialNumber><adcBitCount>14</adcBitCount><sampleTime>{sample_ps}</sampleTime>
<parameters>{params}</parameters>
<channel><index>0</index><values /></channel>
<channel xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><index>1</index><values>
<entry><key>SRV_PARAM_CH_POLARITY</key><value xsi:type="xs:string">POLARITY_POSITIVE</value></entry>
<entry><key>SW_PARAMETER_CH_ENERGY_CALIBRATION_P1</key><value xsi:type="xs:double">2.0</value></entry>
{channel_extra}</values></channel>
</board><acquisitionMemento><runId>r</runId></acquisitionMemento></configuration>
"""


def context(root):
    ctx = Context(storage_dir=root / "cache", config={"data_root": str(root)})
    ctx.register(standard_plugins())
    return ctx


def test_settings_board_values_and_channel_overrides(tmp_path):
    # DT5725 settings beside a run whose names say V1730: the settings' sampleTime wins
    generate_run(tmp_path, "r", fmt="compass-csv", **SMALL)
    (tmp_path / "r" / "settings.xml").write_text(settings_xml())
    ctx = context(tmp_path)
    info = ctx.run_info("r")
    assert info["dt_ns"] == 4.0 and info["sources"]["dt_ns"] == "settings.xml <sampleTime> (ps)"
    assert info["model"] == "DT5725" and info["record_length"] == 64
    assert info["pretrigger_samples"] == 16 and info["polarity"] == "negative"
    assert info["gates"] == {"gate_ns": 300.0, "short_gate_ns": 40.0, "pregate_ns": 48.0}
    assert info["calibration"] == (1.0, 0.5, 0.0)
    assert info["channels"][1] == {"polarity": "positive", "calibration": (0.0, 2.0, 0.0)}
    st = ctx.get_data("r", "st_waveforms")
    assert np.all(st["dt"] == 4.0)
    ch0, ch1 = st["channel"] == 0, st["channel"] == 1
    np.testing.assert_allclose(st["energy_calibrated"][ch0], 1.0 + 0.5 * st["energy"][ch0])
    np.testing.assert_allclose(st["energy_calibrated"][ch1], 2.0 * st["energy"][ch1])


def test_triggers_energy_calibrated_from_the_settings_and_the_option(tmp_path):
    # the settings' per-channel polynomial on the firmware energy, the same in triggers,
    # st_waveforms and basic_features; the calibration option replaces it; none: NaN
    pulses = {**SMALL, "n_samples": 256}
    generate_run(tmp_path, "r", fmt="compass-csv", **pulses)
    generate_run(tmp_path, "plain", fmt="compass-csv", **pulses)
    (tmp_path / "r" / "settings.xml").write_text(settings_xml(reclen_ns=1024.0))
    ctx = context(tmp_path)
    trig = ctx.get_data("r", "triggers")
    ch0, ch1 = trig["channel"] == 0, trig["channel"] == 1
    e = trig["energy"].astype(np.float64)
    assert np.count_nonzero(e > 0) > 10
    np.testing.assert_allclose(trig["energy_calibrated"][ch0], 1.0 + 0.5 * e[ch0])
    np.testing.assert_allclose(trig["energy_calibrated"][ch1], 2.0 * e[ch1])
    feats = ctx.get_data("r", "basic_features")
    fired = e > 0  # basic_features calibrates charge_long where the firmware gave no energy
    np.testing.assert_allclose(feats["energy_calibrated"][fired], trig["energy_calibrated"][fired])
    assert np.all(np.isnan(ctx.get_data("plain", "triggers")["energy_calibrated"]))
    ctx.set_config({"triggers": {"calibration": [2.0, 3.0, 0.01]}})
    for run in ("r", "plain"):
        trig = ctx.get_data(run, "triggers")
        e = trig["energy"].astype(np.float64)
        np.testing.assert_allclose(trig["energy_calibrated"], 2.0 + 3.0 * e + 0.01 * e**2)


def test_settings_in_the_project_folder_above(tmp_path):
    # CoMPASS: <project>/settings.xml, runs in <project>/DAQ/<run>
    root = tmp_path / "DAQ"
    generate_run(root, "r", fmt="compass-csv", **SMALL)
    (tmp_path / "settings.xml").write_text(settings_xml())
    assert context(root).run_info("r")["dt_ns"] == 4.0


def test_record_length_contradicting_the_files(tmp_path):
    generate_run(tmp_path, "r", fmt="compass-csv", **SMALL)
    (tmp_path / "r" / "settings.xml").write_text(settings_xml(reclen_ns=2000.0))
    with pytest.raises(FormatError, match=r"settings.xml: contradicts the files: SRV_PARAM_RECLEN "
                                          r"gives 500 samples at 4.0 ns, the files hold 64"):
        context(tmp_path).run_info("r")


def test_settings_of_another_board_are_not_used(tmp_path, warnings_log):
    generate_run(tmp_path, "r", fmt="compass-csv", **SMALL)
    (tmp_path / "r" / "settings.xml").write_text(settings_xml(serial=999))
    assert context(tmp_path).run_info("r")["dt_ns"] == 2.0  # V1730 in the names
    assert any("no board with serial 1463" in m for m in warnings_log)


def test_run_info_start_time_makes_time_absolute(tmp_path):
    generate_run(tmp_path, "r", fmt="compass-bin", **SMALL)
    (tmp_path / "r" / "run.info").write_text(
        "id=r\ntime.start=2025/03/19 09:47:46.724-0400\ntime.stop=2025/03/19 09:53:05.651-0400\n"
        "board.0-11-1463.0.calibration.energy.c0=0.0\n"
        "board.0-11-1463.0.calibration.energy.c1=3.0\n"
        "board.0-11-1463.0.calibration.energy.c2=0.0\n"
        "board.0-11-1463.0.calibration.energy.uom=MeV\n"
        "board.0-14-292.4.calibration.energy.uom=keV\n"  # another board's
    )
    ctx = context(tmp_path)
    info = ctx.run_info("r")
    assert info["time_offset_ns"] == 1742392066724000000
    assert info["energy_unit"] == "MeV" and "uom" in info["sources"]["energy_unit"]
    st = ctx.get_data("r", "st_waveforms")
    ref, _ = synthesize(**SMALL)
    np.testing.assert_array_equal(st["time"], ref["time"] + 1742392066724000000)
    ch0 = st["channel"] == 0
    np.testing.assert_allclose(st["energy_calibrated"][ch0], 3.0 * st["energy"][ch0])
    assert np.all(np.isnan(st["energy_calibrated"][~ch0]))
    (tmp_path / "r" / "run.info").write_text("time.start=yesterday\n")
    with pytest.raises(FormatError, match=r"run.info, line 1: time.start"):
        context(tmp_path).run_info("r")


def test_no_sample_period_is_a_config_error_naming_dt_ns(tmp_path):
    raw = tmp_path / "r" / "RAW"
    raw.mkdir(parents=True)
    (raw / "a_CH0_0.CSV").write_text("BOARD;CHANNEL;TIMETAG;ENERGY;ENERGYSHORT;FLAGS;SAMPLES\n"
                                     "0;0;1000;5;2;0x4000;1;2;3;4\n")
    ctx = context(tmp_path)
    with pytest.raises(ConfigError, match=r"run 'r': the sample period is not known.*dt_ns"):
        ctx.get_data("r", "st_waveforms")
    ctx.set_config({"dt_ns": 1.5})
    st = ctx.get_data("r", "st_waveforms")
    assert st["dt"][0] == 1.5 and ctx.run_info("r")["sources"]["dt_ns"] == "option dt_ns"
    # the vx2730 adapter names the model: 2 ns
    ctx.set_config({"dt_ns": None, "daq_adapter": "vx2730"})
    assert ctx.get_data("r", "st_waveforms")["dt"][0] == 2.0


@pytest.mark.parametrize("model, dt, bits", [
    ("DT5725", 4.0, 14), ("V1725", 4.0, 14), ("V1730B", 2.0, 14), ("DT5730SB", 2.0, 14),
    ("VX2730", 2.0, 14), ("V2730", 2.0, 14), ("V1751", 1.0, 10), ("DT5720", 4.0, 12),
    ("DT5724", 10.0, 14), ("V1742", None, 12), ("N6725", 4.0, 14),
    ("DT5780", 10.0, 14), ("DT5781A", 10.0, 14), ("V1781", 10.0, 14), ("DT5790", 4.0, 12),
])
def test_board_model_table(model, dt, bits):
    fam = family(model)
    assert fam.dt_ns == dt and fam.adc_bits == bits
    assert family("WAVE") is None and family(None) is None


def test_drs4_frequency():
    assert drs4_dt_ns(0) == 0.2 and drs4_dt_ns(3) == pytest.approx(1.3333333)
    assert drs4_dt_ns(750) == pytest.approx(1.3333333)


def test_list_mode_csv_and_folders(tmp_path):
    generate_run(tmp_path, "r", fmt="compass-csv", samples=False, **SMALL)
    ctx = context(tmp_path)
    trig = ctx.get_data("r", "triggers")
    ref, _ = synthesize(**SMALL)
    np.testing.assert_array_equal(trig["energy"], ref["energy"])
    np.testing.assert_array_equal(trig["energy_short"], ref["energy_short"])
    assert np.all(trig["flags"] == 0x4000) and ctx.run_info("r")["has_waveforms"] is False
    with pytest.raises(NoDataError, match="has no waveforms"):
        ctx.get_data("r", "peaks")


def test_folder_order_and_prefixes(tmp_path, monkeypatch):
    # RAW, else UNFILTERED, else FILTERED (DataF_ names), else the run folder itself
    generate_run(tmp_path, "f", fmt="compass-csv", **SMALL)
    raw = tmp_path / "f" / "RAW"
    filtered = raw.rename(tmp_path / "f" / "FILTERED")
    for p in filtered.iterdir():
        p.rename(p.with_name(p.name.replace("DataR_", "DataF_")))
    assert detect_adapter(tmp_path, "f")[1] == "CoMPASS 2.x CSV in FILTERED"
    assert len(context(tmp_path).get_data("f", "st_waveforms")) == 40
    for p in filtered.iterdir():
        p.rename(tmp_path / "f" / p.name.replace("DataF_", "Data_"))
    filtered.rmdir()
    assert detect_adapter(tmp_path, "f")[1] == "CoMPASS 2.x CSV in the run folder"
    assert len(context(tmp_path).get_data("f", "st_waveforms")) == 40
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoDataError, match=r"run 'empty': no known digitizer format.*looked for"):
        detect_adapter(tmp_path, "empty")
    with pytest.raises(RunNotFoundError):
        detect_adapter(tmp_path, "nope")


def test_compass_1x_bin_names(tmp_path):
    from waveform_analysis.synthetic import write_compass_bin

    st, _ = synthesize(**SMALL)
    raw = tmp_path / "r" / "UNFILTERED"
    for p in write_compass_bin(raw, st, version="1.x", run_name="r"):
        ch = p.name[2]
        p.rename(raw / f"{ch}@DT5730 #2-11-1463_Data_r.bin")
    a = get_adapter("compass")
    files = a.list_files(tmp_path, "r")
    assert list(files["channel"]) == [0, 1] and list(files["board"]) == [1463, 1463]
    out = a.read(tmp_path, files, "r")
    np.testing.assert_array_equal(out["wave"], st["wave"])
    assert a.run_info(tmp_path, "r", files).version == "1.x"


def test_compass_1x_list_mode_and_v1725_triggers(tmp_path):
    generate_run(tmp_path, "old", layout="compass1", samples=False, **SMALL)
    generate_run(tmp_path, "daw", fmt="v1725", **SMALL)
    ctx = context(tmp_path)
    info = ctx.run_info("old")
    assert info["version"] == "1.x" and info["has_waveforms"] is False
    trig = ctx.get_data("old", "triggers")
    ref, _ = synthesize(**SMALL)
    np.testing.assert_array_equal(trig["timestamp"], ref["timestamp"])
    assert np.all(trig["board"] == 1463)  # the serial in the 1.x names
    st = ctx.get_data("daw", "st_waveforms")
    trig = ctx.get_data("daw", "triggers")  # every format has triggers; row i is record i
    np.testing.assert_array_equal(trig["time"], st["time"])
    np.testing.assert_array_equal(trig["channel"], st["channel"])
    assert np.all(np.isnan(trig["energy"])) and np.all(st["dt"] == 4.0)
    assert ctx.run_info("daw")["format"] == "v1725"


def test_peak_times_exact_with_absolute_time_and_float_dt(tmp_path):
    # defect: time + left * dt in float64 lost the low bits of ns since the epoch (~10^18)
    generate_run(tmp_path, "r", fmt="compass-bin", **{**SMALL, "n_samples": 400})
    (tmp_path / "r" / "run.info").write_text("time.start=2025/03/19 09:47:46.724-0400\n")
    ctx = context(tmp_path)
    st = ctx.get_data("r", "st_waveforms")
    peaks = ctx.get_data("r", "peaks")
    assert len(peaks) and st["time"][0] > 10**18
    offset = np.rint(peaks["left"] * st["dt"][peaks["record_i"]]).astype(np.int64)
    np.testing.assert_array_equal(peaks["time"], st["time"][peaks["record_i"]] + offset)
