"""A CoMPASS run of two boards of different models: each board's records get their own board's
settings (sample period, pre-trigger, polarity, gates, calibration) from settings.xml and
run.info, and run_info / show report each board."""

import numpy as np
import pytest

from waveform_analysis import Context, standard_plugins
from waveform_analysis.synthetic import generate_run

# 2 boards x 2 channels; board 0 is a DT5725 (serial 1463), board 1 a DT5730 (serial 1464)
RUN = {"n_boards": 2, "n_channels": 2, "n_waveforms": 30, "n_samples": 64, "seed": 5,
       "models": ("DT5725", "DT5730")}

ENTRY = ('<entry><key>{k}</key><value><value xsi:type="xs:{t}" '
         'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">{v}</value></value></entry>')


def board_xml(model, serial, sample_ps, reclen_ns, pretrg_ns, polarity, p1, gate_ns, channel1=""):
    params = "".join(ENTRY.format(k=k, t=t, v=v) for k, t, v in [
        ("SRV_PARAM_RECLEN", "double", reclen_ns), ("SRV_PARAM_CH_PRETRG", "double", pretrg_ns),
        ("SRV_PARAM_CH_POLARITY", "string", f"POLARITY_{polarity}"),
        ("SRV_PARAM_CH_GATE", "double", gate_ns), ("SRV_PARAM_CH_GATESHORT", "double", 40.0),
        ("SRV_PARAM_CH_GATEPRE", "double", 16.0),
        ("SW_PARAMETER_CH_ENERGY_CALIBRATION_P0", "double", 0.0),
        ("SW_PARAMETER_CH_ENERGY_CALIBRATION_P1", "double", p1),
    ])
    return (f"<board><id>2-11-{serial}</id><modelName>{model}</modelName>"
            f"<serialNumber>{serial}</serialNumber><adcBitCount>14</adcBitCount>"
            f"<sampleTime>{sample_ps}</sampleTime><parameters>{params}</parameters>"
            f"<channel><index>1</index><values>{channel1}</values></channel></board>")


def two_boards_xml():
    """The DT5730 listed first: boards are matched by serial, not position."""
    over = ('<entry><key>SW_PARAMETER_CH_ENERGY_CALIBRATION_P1</key>'
            '<value xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xsi:type="xs:double">3.0</value></entry>')
    b1 = board_xml("DT5730", 1464, 2000, 128.0, 40.0, "POSITIVE", 2.0, 200.0, over)
    b0 = board_xml("DT5725", 1463, 4000, 256.0, 64.0, "NEGATIVE", 0.5, 300.0)
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f"<configuration>{b1}{b0}</configuration>\n")


def context(root, **config):
    ctx = Context(storage_dir=root / "cache", config={"data_root": str(root), **config})
    ctx.register(standard_plugins())
    return ctx


@pytest.mark.parametrize("fmt", ["compass-csv", "compass-bin"])
def test_two_boards_without_settings_take_each_model(tmp_path, fmt):
    generate_run(tmp_path, "r", fmt=fmt, **RUN)
    ctx = context(tmp_path)
    info = ctx.run_info("r")
    assert info["boards"][0]["model"] == "DT5725" and info["boards"][0]["dt_ns"] == 4.0
    assert info["boards"][1]["model"] == "DT5730" and info["boards"][1]["dt_ns"] == 2.0
    assert info["boards"][1]["serial"] == 1464
    assert info["dt_ns"] == 4.0 and info["model"] == "DT5725"  # the run level: the first board
    st = ctx.get_data("r", "st_waveforms")
    assert set(np.unique(st["board"]).tolist()) == {0, 1}
    np.testing.assert_array_equal(st["dt"], np.where(st["board"] == 0, 4.0, 2.0))


@pytest.mark.parametrize("fmt", ["compass-csv", "compass-bin"])
def test_each_board_gets_its_own_settings(tmp_path, fmt):
    generate_run(tmp_path, "r", fmt=fmt, **RUN)
    (tmp_path / "r" / "settings.xml").write_text(two_boards_xml())
    (tmp_path / "r" / "run.info").write_text(
        "time.start=2025/03/19 09:47:46.724-0400\n"
        "board.0-11-1464.0.calibration.energy.c0=1.0\n"
        "board.0-11-1464.0.calibration.energy.c1=5.0\n"
    )
    ctx = context(tmp_path)
    info = ctx.run_info("r")
    b0, b1 = info["boards"][0], info["boards"][1]
    assert (b0["model"], b0["serial"], b0["dt_ns"]) == ("DT5725", 1463, 4.0)
    assert (b1["model"], b1["serial"], b1["dt_ns"]) == ("DT5730", 1464, 2.0)
    assert b0["sources"]["dt_ns"] == "settings.xml <sampleTime> (ps)"
    assert (b0["pretrigger_samples"], b1["pretrigger_samples"]) == (16, 20)
    assert (b0["polarity"], b1["polarity"]) == ("negative", "positive")
    assert (b0["gates"]["gate_ns"], b1["gates"]["gate_ns"]) == (300.0, 200.0)
    assert (b0["calibration"], b1["calibration"]) == ((0.0, 0.5, 0.0), (0.0, 2.0, 0.0))
    assert b1["channels"][1]["calibration"] == (0.0, 3.0, 0.0)  # a channel override
    assert b1["channels"][0]["calibration"] == (1.0, 5.0)  # run.info, by serial
    assert b0["channels"] == {} and info["channels"] == {}
    assert info["dt_ns"] == 4.0 and info["pretrigger_samples"] == 16  # the first board's
    st = ctx.get_data("r", "st_waveforms")
    on0 = st["board"] == 0
    np.testing.assert_array_equal(st["dt"], np.where(on0, 4.0, 2.0))
    cal = np.select([on0, st["channel"] == 1], [0.5, 3.0], 5.0) * st["energy"]
    cal += np.where(~on0 & (st["channel"] == 0), 1.0, 0.0)
    np.testing.assert_allclose(st["energy_calibrated"], cal)
    trig = ctx.get_data("r", "triggers")
    np.testing.assert_allclose(trig["energy_calibrated"], cal)
    # the per-channel options of core/channels.py take each record's board's settings
    from waveform_analysis.core.channels import resolve_channel

    plugin = ctx.plugins["basic_features"]
    assert resolve_channel(ctx.config, plugin, "polarity", 0, 0, ctx_info(ctx))[0] == "negative"
    assert resolve_channel(ctx.config, plugin, "polarity", 1, 0, ctx_info(ctx))[0] == "positive"
    assert resolve_channel(ctx.config, plugin, "gate_long_ns", 1, 1, ctx_info(ctx))[0] == 200.0
    feats = ctx.get_data("r", "basic_features")
    assert len(feats) == len(st)
    rows = {(r["option"], r["channel"]): r for r in ctx.show_config("basic_features", "r")}
    assert rows[("calibration", "1:1")]["current"].startswith("(0.0, 3.0")  # board 1's channel 1
    assert rows[("calibration", "1:1")]["source"] == "run settings"


def ctx_info(ctx):
    from waveform_analysis.daq.runs import run_info_for

    return run_info_for(ctx, "r")[1]


def test_unmatched_board_takes_its_model_and_warns(tmp_path, warnings_log):
    generate_run(tmp_path, "r", fmt="compass-bin", **RUN)
    xml = two_boards_xml()
    (tmp_path / "r" / "settings.xml").write_text(xml.replace("1464", "999"))
    info = context(tmp_path).run_info("r")
    assert info["boards"][1]["dt_ns"] == 2.0  # DT5730 in its file names
    assert "polarity" not in info["boards"][1]  # not the other board's
    assert any("no <board> for board 1 (serial 1464)" in m for m in warnings_log)


def test_show_reports_each_board(tmp_path):
    pytest.importorskip("click")
    from click.testing import CliRunner

    from waveform_analysis.cli import main

    generate_run(tmp_path, "r", fmt="compass-bin", **RUN)
    (tmp_path / "r" / "settings.xml").write_text(two_boards_xml())
    r = CliRunner().invoke(main, ["show", str(tmp_path), "r", "--cache", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    assert "board 0: model=DT5725, serial=1463, adc_bits=14, dt_ns=4.0" in r.output
    assert "board 1: model=DT5730, serial=1464, adc_bits=14, dt_ns=2.0" in r.output
    assert "board 1 channel 1: calibration=(0.0, 3.0, 0.0)" in r.output


def test_peaks_judge_saturation_at_their_own_boards_adc_limit(tmp_path):
    # a 14-bit DT5725 and a 12-bit DT5720 in one run: a sample at 4095 is the 12-bit board's
    # limit and mid-range for the 14-bit one. peaks used the first board's limit for all.
    from waveform_analysis.synthetic import synthesize, write_compass_bin

    rec, _ = synthesize(n_channels=2, n_waveforms=40, n_samples=64, seed=5)
    rec["board"] = np.arange(len(rec)) % 2
    rec["wave"][:, 30] = 4095  # in every record's pulse or on its baseline, either way a peak
    write_compass_bin(tmp_path / "r" / "RAW", rec, model=("DT5725", "DT5720"))
    ctx = Context(storage_dir=tmp_path / "c", config={"data_root": str(tmp_path)})
    ctx.register(standard_plugins())
    st = ctx.get_data("r", "st_waveforms")
    assert set(ctx.run_info("r")["boards"]) == {0, 1}
    assert st["saturated"][st["board"] == 1].all() and not st["saturated"][st["board"] == 0].any()
    peaks = ctx.get_data("r", "peaks")
    at_30 = (peaks["left"] <= 30) & (peaks["right"] > 30)
    board = st["board"][peaks["record_i"]]
    assert at_30[board == 1].any() and at_30[board == 0].any()
    assert peaks["saturated"][at_30 & (board == 1)].all()
    assert not peaks["saturated"][at_30 & (board == 0)].any()
    assert np.all(np.diff(peaks["record_i"]) >= 0)  # still in record order
