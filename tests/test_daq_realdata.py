"""Files CAEN software wrote in other labs (``../shared/realdata``, see its SOURCES.md).

Each test copies the files it needs into a temporary run folder laid out as
CoMPASS lays out a project (the shared folder is read-only and never copied
into the repository); all are skipped when the folder is absent.
"""

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pytest

from waveform_analysis import Context, standard_plugins
from waveform_analysis.daq import detect_adapter

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "realdata"
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/realdata is absent")

LEGEND_BIN = "legend-testdata/compass_test_data.BIN"
LEGEND_XML = "legend-testdata/compass_test_data_settings.xml"
LIBRA_WAVE = "libra-toolbox/Data_CH4@DT5725_1360_Co60_0_872uCi_19Mar2014_20241213_4in.CSV"
LIBRA_WAVE_1 = "libra-toolbox/Data_CH4@DT5725_1360_Co60_0_872uCi_19Mar2014_20241213_4in_1.CSV"
LIBRA_LIST = "libra-toolbox/Data_CH2@V1725_292_Co60_0_872uCi_19Mar14_241107.CSV"
LIBRA_RUN_INFO = "libra-toolbox/run.info"


def place(root: Path, run: str, folder: str, files: dict[str, str]) -> Path:
    """Copy ``{real file: name in the run}`` into ``root/run/folder`` ("" : the run folder)."""
    where = root / run / folder
    where.mkdir(parents=True, exist_ok=True)
    for src, name in files.items():
        shutil.copyfile(REAL / src, where / name)
    return where


def context(root: Path) -> Context:
    ctx = Context(storage_dir=root.parent / "cache", config={"data_root": str(root)})
    ctx.register(standard_plugins())
    return ctx


@pytest.mark.parametrize("name", ["DataR_CH0@DT5730_1463_single_file_2_channels.BIN",
                                  "SDataR_single_file_2_channels.BIN"])
def test_legend_bin_single_file_two_channels(tmp_path, name):
    # legend-testdata/compass_test_data.BIN: CoMPASS 2.x BIN, header 0xCAED, DT5730 (serial
    # 1463), 102 events of channels 0 and 1 in one file (SINGLEFILE), 1000 samples, 2 ns,
    # energy and energy short; its settings.xml beside the run. Under CoMPASS's own
    # SINGLEFILE name (SDataR_<run>) the model and serial come from the settings alone.
    root = tmp_path / "DAQ"
    place(root, "legend", "RAW", {LEGEND_BIN: name})
    place(root, "legend", "", {LEGEND_XML: "settings.xml"})
    assert detect_adapter(root, "legend")[1] == "CoMPASS 2.x BIN in RAW"
    ctx = context(root)
    info = ctx.run_info("legend")
    assert info["format"] == "compass" and info["version"] == "2.x" and info["encoding"] == "bin"
    assert info["model"] == "DT5730" and info["serial"] == 1463 and info["adc_bits"] == 14
    assert info["dt_ns"] == 2.0 and info["sources"]["dt_ns"] == "settings.xml <sampleTime> (ps)"
    assert info["record_length"] == 1000 and info["pretrigger_samples"] == 48
    assert info["polarity"] == "positive"
    assert info["gates"] == {"gate_ns": 300.0, "short_gate_ns": 80.0, "pregate_ns": 50.0}
    assert info["energy_unit"] == "keV"  # SW_PARAMETER_CH_ENERGY_CALIBRATION_UDM
    st = ctx.get_data("legend", "st_waveforms")
    assert len(st) == 102 and set(np.unique(st["channel"])) == {0, 1}
    assert np.all(st["length"] == 1000) and np.all(st["dt"] == 2.0)
    assert st["energy"][0] == 798 and st["energy_short"][0] == 135  # the first event's
    assert np.all(np.isfinite(st["energy"])) and np.all(np.isfinite(st["energy_short"]))
    # calibration P0..P2 = 0, 1, 0 in the settings: the calibrated energy is the energy
    np.testing.assert_array_equal(st["energy_calibrated"], st["energy"])
    assert set(np.unique(st["flags"])) <= {0x4000, 0x4040, 0x4080, 0x40C0}
    assert np.all(np.diff(st["time"]) >= 0)  # sorted, although 3 pairs come back in the file
    trig = ctx.get_data("legend", "triggers")
    np.testing.assert_array_equal(trig["timestamp"], st["timestamp"])


def test_libra_dt5725_csv_with_continuation(tmp_path):
    # libra-toolbox: CoMPASS 2.x CSV with waveforms from a DT5725 (4 ns), 6 events of 200
    # samples in a file without a final line end, then a headerless _1 file with 2 events
    root = tmp_path / "DAQ"
    place(root, "co60", "RAW", {LIBRA_WAVE: Path(LIBRA_WAVE).name,
                                LIBRA_WAVE_1: Path(LIBRA_WAVE_1).name})
    ctx = context(root)
    info = ctx.run_info("co60")
    assert info["model"] == "DT5725" and info["serial"] == 1360 and info["dt_ns"] == 4.0
    assert info["sources"]["dt_ns"] == "board model DT5725 (x725 family)"
    st = ctx.get_data("co60", "st_waveforms")
    assert len(st) == 8  # the 6th, complete but without a line end, is kept
    assert np.all(st["length"] == 200) and np.all(st["dt"] == 4.0) and np.all(st["channel"] == 4)
    before = np.median(st["wave"][:, :16])  # the pulses start near sample 20
    assert abs(before - 13150) < 20
    assert np.all(st["wave"].min(axis=1) < before - 100)  # negative pulses
    assert list(st["energy"][:3]) == [1727, 613, 1539]
    assert list(st["energy_short"][:3]) == [1407, 499, 1239]
    assert np.all(np.isnan(st["energy_calibrated"]))


def test_libra_v1725_list_mode_csv_with_run_info(tmp_path):
    # libra-toolbox: CoMPASS 2.x list-mode CSV (no waveforms), V1725 serial 292, 100 000
    # triggers over 25.6 s; FLAGS 99 903 x 0x4000 and 97 x 0x4100; run.info with the start time
    root = tmp_path / "DAQ"
    place(root, "co60", "UNFILTERED", {LIBRA_LIST: Path(LIBRA_LIST).name})
    place(root, "co60", "", {LIBRA_RUN_INFO: "run.info"})
    assert detect_adapter(root, "co60")[1] == "CoMPASS 2.x CSV in UNFILTERED"
    ctx = context(root)
    info = ctx.run_info("co60")
    assert info["has_waveforms"] is False and info["dt_ns"] == 4.0 and info["folder"] == "UNFILTERED"
    start = dt.datetime(2025, 3, 19, 13, 47, 46, 724000, tzinfo=dt.UTC)
    assert info["start_time"] == "2025-03-19T09:47:46.724000-04:00"
    assert info["time_offset_ns"] == int(start.timestamp() * 1e6) * 1000
    assert "Unix epoch" in info["time_reference"]
    assert info["channels"][4]["calibration"] == (0.0, 1.0, 0.0)
    trig = ctx.get_data("co60", "triggers")
    assert len(trig) == 100_000 and np.all(trig["channel"] == 2)
    assert np.count_nonzero(trig["flags"] == 0x4000) == 99_903
    assert np.count_nonzero(trig["flags"] == 0x4100) == 97
    assert np.all(np.diff(trig["timestamp"]) >= 0)
    assert np.count_nonzero(trig["timestamp"] % 4000) / len(trig) > 0.98  # fine time kept
    span = (trig["timestamp"][-1] - trig["timestamp"][0]) / 1e12
    assert 25.0 < span < 26.0
    assert np.all(trig["time"] == trig["timestamp"] // 1000 + info["time_offset_ns"])
    assert np.all(np.isfinite(trig["energy"])) and not trig["pileup"].any()
    assert np.all(np.isnan(trig["energy_calibrated"]))  # run.info calibrates channels 4, 5 only
    ctx.set_config({"triggers": {"calibration": [1.0, 0.5, 1e-5]}})
    cal = ctx.get_data("co60", "triggers")
    e = cal["energy"].astype(np.float64)
    np.testing.assert_allclose(cal["energy_calibrated"], 1.0 + 0.5 * e + 1e-5 * e**2)
    with pytest.raises(Exception, match="has no waveforms.*'triggers'"):
        ctx.get_data("co60", "st_waveforms")
