"""The wavedump_config and board_model options: a Context chooses the WaveDump config file and
the board model without registering an adapter instance."""

from __future__ import annotations

import json

import pytest

from waveform_analysis import Context, standard_plugins
from waveform_analysis.errors import ConfigError
from waveform_analysis.synthetic import generate_run

OTHER_CONFIG = """[COMMON]
RECORD_LENGTH  64
POST_TRIGGER  75
PULSE_POLARITY  POSITIVE
OUTPUT_FILE_HEADER  YES
"""


def _ctx(tmp_path, **config):
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(tmp_path / "DAQ"), **config})
    ctx.register(*standard_plugins())
    return ctx


@pytest.fixture
def wavedump_run(tmp_path):
    generate_run(tmp_path / "DAQ", "run", fmt="wavedump", n_waveforms=20, n_samples=64)
    (tmp_path / "V1730_other.txt").write_text(OTHER_CONFIG)
    return tmp_path


def test_wavedump_config_option_chooses_the_file(wavedump_run):
    tmp_path = wavedump_run
    default = _ctx(tmp_path).run_info("run")
    assert default["polarity"] == "negative"
    other = tmp_path / "V1730_other.txt"
    for value in (str(other), "../../V1730_other.txt"):  # absolute, or from the run folder
        ctx = _ctx(tmp_path, wavedump_config=value)
        info = ctx.run_info("run")
        assert info["polarity"] == "positive"
        assert info["pretrigger_samples"] == 16
        assert [f.endswith("V1730_other.txt") for f in info["files"]] == [True]
    keys = {_ctx(tmp_path, **kw).key_for("run", "st_waveforms")
            for kw in ({}, {"wavedump_config": str(other)})}
    assert len(keys) == 2  # the option enters the lineage


def test_board_model_option_sets_the_time_base(wavedump_run):
    tmp_path = wavedump_run
    assert _ctx(tmp_path).run_info("run")["dt_ns"] == 2.0  # x730, from the config's name
    info = _ctx(tmp_path, board_model="DT5751").run_info("run")
    assert info["dt_ns"] == 1.0 and info["adc_bits"] == 10
    assert info["sources"]["model"] == "model option"
    generate_run(tmp_path / "DAQ", "dump", fmt="caen-raw", n_waveforms=10, n_samples=64)
    assert _ctx(tmp_path, board_model="V1725").run_info("dump")["dt_ns"] == 4.0


def test_bad_options_are_clear_errors(wavedump_run):
    tmp_path = wavedump_run
    with pytest.raises(ConfigError, match=r"wavedump_config='nope.txt': no such file"):
        _ctx(tmp_path, wavedump_config="nope.txt").run_info("run")
    with pytest.raises(ConfigError, match=r"board_model='XYZ': not a CAEN digitizer model"):
        _ctx(tmp_path, board_model="XYZ").run_info("run")


def test_show_prints_the_options(wavedump_run):
    from click.testing import CliRunner

    from waveform_analysis.cli import main

    tmp_path = wavedump_run
    opts = tmp_path / "opts.json"
    opts.write_text(json.dumps({"wavedump_config": str(tmp_path / "V1730_other.txt"),
                                "board_model": "DT5751"}))
    res = CliRunner().invoke(main, ["show", str(tmp_path / "DAQ"), "run", "--cache",
                                    str(tmp_path / "cache"), "--config", str(opts)])
    assert res.exit_code == 0, res.output
    assert "V1730_other.txt" in res.output and "model option" in res.output
    assert "options: wavedump_config=" in res.output and "board_model=DT5751" in res.output
