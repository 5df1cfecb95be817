"""CoMPASS CSV energies written as decimals: the CALIB_ENERGY column and decimal ENERGY values."""

from __future__ import annotations

import numpy as np
import pytest

from waveform_analysis import Context, standard_plugins
from waveform_analysis.synthetic import generate_run
from waveform_analysis.synthetic.compass_csv import CALIB_KEV_PER_CHANNEL

CALIB_COLUMNS = ("BOARD", "CHANNEL", "TIMETAG", "ENERGY", "CALIB_ENERGY", "FLAGS", "PROBE_CODE")


def _ctx(tmp_path):
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(tmp_path / "DAQ")})
    ctx.register(*standard_plugins())
    return ctx


@pytest.mark.parametrize("samples", [True, False])
def test_calib_energy_column_gives_energy_calibrated(tmp_path, samples):
    columns = CALIB_COLUMNS if samples else CALIB_COLUMNS[:-1]
    generate_run(tmp_path / "DAQ", "run", fmt="compass-csv", n_waveforms=50, n_samples=64,
                 columns=columns, samples=samples)
    ctx = _ctx(tmp_path)
    tr = ctx.get_data("run", "triggers")
    assert len(tr) == 100
    assert np.isfinite(tr["energy_calibrated"]).all()
    np.testing.assert_allclose(tr["energy_calibrated"], tr["energy"] * CALIB_KEV_PER_CHANNEL,
                               atol=6e-4)
    assert np.isnan(tr["energy_short"]).all()  # no ENERGYSHORT column
    info = ctx.run_info("run")
    assert info["sources"]["energy_calibrated"] == "files"
    if samples:
        st = ctx.get_data("run", "st_waveforms")
        np.testing.assert_array_equal(st["energy_calibrated"], tr["energy_calibrated"])


def test_decimal_energies_are_read_as_decimals(tmp_path):
    raw = tmp_path / "DAQ" / "run" / "RAW"
    raw.mkdir(parents=True)
    (raw / "DataR_CH0@V1730_1463_run.CSV").write_text(
        "BOARD;CHANNEL;TIMETAG;ENERGY;ENERGYSHORT;FLAGS;CALIB_ENERGY\n"
        "0;0;1000000;661.657;-12.5;0x4000;661.657\n"
        "0;0;2000000;1332;7.25;0x4000;1332.492\n"
        "0;0;3000000;0.5;0;0x4000;-0.125\n"
    )
    tr = _ctx(tmp_path).get_data("run", "triggers")
    np.testing.assert_allclose(tr["energy"], [661.657, 1332, 0.5], rtol=1e-6)
    np.testing.assert_allclose(tr["energy_short"], [-12.5, 7.25, 0])
    np.testing.assert_allclose(tr["energy_calibrated"], [661.657, 1332.492, -0.125])
