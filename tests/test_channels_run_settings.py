"""Per-channel ``baseline_samples`` and ``dt_ns``; threshold and polarity from the run's settings."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from waveform_analysis import Context, standard_plugins
from waveform_analysis.errors import ConfigError
from waveform_analysis.processing.baselines import baseline_stats
from waveform_analysis.synthetic import generate_run

RUN = "run_001"
REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "realdata"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("chrs") / "DAQ"
    generate_run(root, RUN, n_channels=2, n_waveforms=150, n_samples=200, seed=5)
    return root


def _ctx(data, tmp_path, config=None) -> Context:
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(data), **(config or {})})
    ctx.register(standard_plugins())
    return ctx


@pytest.mark.parametrize("mode", ["fixed", "auto"])
def test_baseline_samples_per_channel(data, tmp_path, mode):
    config = {"baseline_window": mode, "baseline_samples": 40,
              "channels": {"0:1": {"baseline_samples": 12}}}
    st = _ctx(data, tmp_path, config).get_data(RUN, "st_waveforms")
    plain = _ctx(data, tmp_path / "plain", {"baseline_window": mode}).get_data(RUN, "st_waveforms")
    info = _ctx(data, tmp_path / "i").run_info(RUN)
    window = {} if mode == "fixed" else {"pretrigger": info["pretrigger_samples"]}
    for channel, nb in ((0, 40), (1, 12)):
        rows = st["channel"] == channel
        ref = st[rows].copy()
        kw = {"baseline_samples": nb} if mode == "fixed" else {"cap": nb, **window}
        if mode == "auto":
            from waveform_analysis.processing.baselines import (
                end_window_stats,
                finish_baselines,
                recheck_levels,
            )
            from waveform_analysis.processing.rows import record_channel_keys

            mean, rms, last, ends, _ = end_window_stats(ref, **kw)
            low = recheck_levels(record_channel_keys(ref), rms, last)
            finish_baselines(ref, None, mean, rms, low, ends)
            expected = mean
        else:
            expected = baseline_stats(ref, nb)[0]
        np.testing.assert_allclose(st["baseline"][rows], expected, rtol=0, atol=1e-9)
    # channel 0 keeps the run-wide window: its baselines are those without the table
    np.testing.assert_array_equal(st["baseline"][st["channel"] == 0],
                                  plain["baseline"][plain["channel"] == 0])
    if mode == "fixed":
        assert not np.array_equal(st["baseline"][st["channel"] == 1],
                                  plain["baseline"][plain["channel"] == 1])


def test_baseline_stats_takes_one_window_per_record(data, tmp_path):
    st = _ctx(data, tmp_path).get_data(RUN, "st_waveforms").copy()
    nb = np.where(st["channel"] == 1, 16, 30)
    mean, rms, cont = baseline_stats(st, nb)
    for value in (16, 30):
        rows = nb == value
        m, r, c = baseline_stats(st[rows], value)
        np.testing.assert_array_equal(mean[rows], m)
        np.testing.assert_array_equal(rms[rows], r)
        np.testing.assert_array_equal(cont[rows], c)


def test_baseline_samples_table_enters_the_keys(data, tmp_path):
    plain = _ctx(data, tmp_path)
    one = _ctx(data, tmp_path, {"channels": {"0:1": {"baseline_samples": 20}}})
    two = _ctx(data, tmp_path, {"channels": {"0:1": {"baseline_samples": 21}}})
    assert one.key_for(RUN, "raw_files") == plain.key_for(RUN, "raw_files")
    for name in ("st_waveforms", "peaks", "basic_features"):
        assert len({plain.key_for(RUN, name), one.key_for(RUN, name), two.key_for(RUN, name)}) == 3
    with pytest.raises(ConfigError, match="baseline_samples"):
        _ctx(data, tmp_path, {"channels": {"0:1": {"baseline_samples": 0}}}).get_data(RUN, "st_waveforms")


def test_dt_ns_per_channel_in_the_table(data, tmp_path):
    plain = _ctx(data, tmp_path / "p")
    ctx = _ctx(data, tmp_path, {"dt_ns": 7.0, "channels": {"0:1": {"dt_ns": 8.0}}})
    st, ref = ctx.get_data(RUN, "st_waveforms"), plain.get_data(RUN, "st_waveforms")
    run_dt = plain.run_info(RUN)["dt_ns"]
    ch1 = st["channel"] == 1
    assert np.all(st["dt"][ch1] == 8.0) and np.all(st["dt"][~ch1] == run_dt)  # run's before 7.0
    np.testing.assert_array_equal(st["baseline"], ref["baseline"])
    rows = {r["channel"]: r for r in ctx.show_config("raw_files", RUN) if r["option"] == "dt_ns"}
    assert rows["0:1"]["source"] == "channels['0:1']" and rows["*"]["source"] == "run settings"
    assert ctx.key_for(RUN, "st_waveforms") != _ctx(
        data, tmp_path, {"channels": {"0:1": {"dt_ns": 9.0}}}).key_for(RUN, "st_waveforms")


def test_dt_ns_of_a_run_that_states_none(tmp_path):
    raw = tmp_path / "r" / "RAW"
    raw.mkdir(parents=True)
    for ch in (0, 1):
        (raw / f"a_CH{ch}_0.CSV").write_text("BOARD;CHANNEL;TIMETAG;ENERGY;ENERGYSHORT;FLAGS;SAMPLES\n"
                                             f"0;{ch};1000;5;2;0x4000;1;2;3;4\n")
    ctx = _ctx(tmp_path, tmp_path / "c", {"channels": {"0:1": {"dt_ns": 3.0}}})
    with pytest.raises(ConfigError, match=r"run 'r': the sample period is not known.*dt_ns"):
        ctx.get_data("r", "st_waveforms")
    ctx.set_config({"channels": {"default": {"dt_ns": 2.5}, "0:1": {"dt_ns": 3.0}}})
    st = ctx.get_data("r", "st_waveforms")
    assert dict(zip(st["channel"].tolist(), st["dt"].tolist(), strict=True)) == {0: 2.5, 1: 3.0}


SETTINGS = """<configuration><board><modelName>DT5730</modelName><serialNumber>1463</serialNumber>
<dppType>DPP_PSD</dppType><sampleTime>2000</sampleTime><parameters>
<entry><key>SRV_PARAM_CH_POLARITY</key><value><value>POLARITY_POSITIVE</value></value></entry>
<entry><key>SRV_PARAM_CH_THRESHOLD</key><value><value>50.0</value>
<descriptor><id>SRV_PARAM_CH_THRESHOLD</id><udm>{udm}</udm></descriptor></value></entry>
</parameters><channel><index>1</index><values>
<entry><key>SRV_PARAM_CH_THRESHOLD</key><value>70.0</value></entry>
<entry><key>SRV_PARAM_CH_POLARITY</key><value>POLARITY_NEGATIVE</value></entry>
</values></channel></board></configuration>"""


@pytest.mark.parametrize("udm, dpp", [("LSB", "DPP_PSD"), ("mV", "DPP_PSD"), ("LSB", "DPP_PHA")])
def test_compass_threshold_in_adc_and_polarity_per_channel(tmp_path, udm, dpp):
    from waveform_analysis.core.channels import resolve_channel
    from waveform_analysis.daq.base import RunInfo
    from waveform_analysis.daq.compass.settings import read_settings

    run = tmp_path / "r"
    run.mkdir()
    (run / "settings.xml").write_text(SETTINGS.format(udm=udm).replace("DPP_PSD", dpp))
    info = RunInfo(format="compass")
    read_settings(info, tmp_path, "r", run)
    assert info.polarity == "positive" and info.channels[1]["polarity"] == "negative"
    adc = udm == "LSB" and dpp == "DPP_PSD"  # PHA's threshold is on its trigger filter
    assert info.threshold == (50.0 if adc else None)
    assert info.channels[1].get("threshold") == (70.0 if adc else None)
    peaks = next(p for p in standard_plugins() if p.provides == "peaks")
    assert resolve_channel({}, peaks, "polarity", 0, 0, info) == ("positive", "run settings")
    assert resolve_channel({}, peaks, "polarity", 0, 1, info) == ("negative", "run settings")
    assert resolve_channel({}, peaks, "threshold", 0, 1, info) == (
        (70.0, "run settings") if adc else (8.0, "default"))
    # the user's values come first: plugin level, the table's default, the channel's entry
    assert resolve_channel({"polarity": "negative"}, peaks, "polarity", 0, 0, info)[1] == "config"
    table = {"threshold": 20.0, "channels": {"0:1": {"threshold": 30.0}}}
    assert resolve_channel(table, peaks, "threshold", 0, 0, info) == (20.0, "config")
    assert resolve_channel(table, peaks, "threshold", 0, 1, info) == (30.0, "channels['0:1']")


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/realdata is absent")
def test_legend_pulses_are_found_on_the_settings_polarity(tmp_path):
    # legend-testdata: DT5730 DPP-PSD, POLARITY_POSITIVE, threshold 50 LSB (channel 0: 100)
    root = tmp_path / "DAQ"
    (root / "legend" / "RAW").mkdir(parents=True)
    shutil.copyfile(REAL / "legend-testdata/compass_test_data.BIN",
                    root / "legend" / "RAW" / "DataR_CH0@DT5730_1463_single_file_2_channels.BIN")
    shutil.copyfile(REAL / "legend-testdata/compass_test_data_settings.xml",
                    root / "legend" / "settings.xml")
    ctx = _ctx(root, tmp_path)
    st, peaks = ctx.get_data("legend", "st_waveforms"), ctx.get_data("legend", "peaks")
    rows = {(r["option"], r["channel"]): r for r in ctx.show_config("peaks", "legend")}
    assert rows[("polarity", "*")]["source"] == "run settings"
    assert rows[("polarity", "*")]["current"].startswith("'positive'")
    assert rows[("threshold", "0:0")]["current"].startswith("100.0")
    assert rows[("threshold", "*")]["current"].startswith("50.0")
    # each channel-0 record's pulse (up from the baseline) is its highest peak
    up = (st["wave"].astype(float) - st["baseline"][:, None]).max(axis=1)
    ch0 = np.flatnonzero(st["channel"] == 0)
    best = np.zeros(len(st))
    np.maximum.at(best, peaks["record_i"], peaks["height"])
    np.testing.assert_allclose(best[ch0], up[ch0], rtol=0.05)
    assert np.all(peaks["height"][peaks["channel"] == 0] >= 100.0)
    bf = ctx.get_data("legend", "basic_features")
    assert np.all(bf["height"][ch0] > 0.9 * up[ch0])

