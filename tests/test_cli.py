"""The waveform-analysis and celestialflow command lines, end to end in a temporary folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("click")
pytest.importorskip("matplotlib")

from click.testing import CliRunner  # noqa: E402

from waveform_analysis.cli import main  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "DAQ"
    r = invoke("generate", root, "--runs", "2", "--waveforms", "200")
    assert r.exit_code == 0, r.output
    return root


def _assert_png(path: Path, min_bytes: int = 10_000) -> None:
    raw = path.read_bytes()
    assert raw[:8] == PNG_MAGIC, path
    assert min_bytes < len(raw) < 5_000_000, (path, len(raw))


def test_generate_run_plots_graph_cache_show(data, tmp_path):
    cache, plots = tmp_path / "wa_cache", tmp_path / "plots"
    r = invoke("run", data, "--all", "--cache", cache, "--plots", plots, "--workers", "1")
    assert r.exit_code == 0, r.output
    assert "run_001" in r.output and "run_002" in r.output and "success" in r.output
    assert "2/2 runs to peaks" in r.output
    for run in ("run_001", "run_002"):
        for what in ("waveforms", "spectrum", "rate"):
            _assert_png(plots / f"{run}_{what}.png")

    out = tmp_path / "lineage.dot"
    r = invoke("graph", data, "--target", "basic_features", "-o", out)
    assert r.exit_code == 0, r.output
    assert "digraph" in out.read_text() and "peaks" in out.read_text()
    r = invoke("graph", data, "--batch", "-o", tmp_path / "batch.svg")
    assert r.exit_code == 0, r.output
    drawn = list(tmp_path.glob("batch.*"))
    assert drawn and ("note:" in r.output or drawn[0].suffix == ".svg")

    r = invoke("cache", cache, "list")
    assert r.exit_code == 0 and "st_waveforms" in r.output and "4 entries" in r.output
    r = invoke("cache", cache, "verify")
    assert r.exit_code == 0 and "0 damaged" in r.output

    r = invoke("show", data, "--cache", cache)
    assert r.exit_code == 0, r.output
    assert "2 runs" in r.output and "compass" in r.output and "RAW" in r.output
    assert "CoMPASS 2.x CSV in RAW" in r.output
    r = invoke("show", data, "run_001", "--cache", cache)
    assert r.exit_code == 0 and "peaks" in r.output and "CH0" in r.output
    file_header = next(line for line in r.output.splitlines() if line.startswith("file "))
    assert file_header.split() == ["file", "channel", "board", "segment", "size"]  # one size: the file's

    r = invoke(
        "plot", data, "run_001", "--what", "spectrum", "-o", tmp_path / "s.png", "--cache", cache
    )
    assert r.exit_code == 0, r.output
    _assert_png(tmp_path / "s.png")

    r = invoke("cache", cache, "clear", "--run", "run_001", "--data", "peaks")
    assert r.exit_code == 0 and "removed 2 files" in r.output
    assert "3 entries" in invoke("cache", cache, "list").output


def test_verify_exits_1_on_changed_bytes(data, tmp_path):
    cache = tmp_path / "c"
    assert invoke("run", data, "run_001", "--cache", cache, "--workers", "1").exit_code == 0
    npy = next((cache / "run_001").glob("peaks-*.npy"))
    raw = bytearray(npy.read_bytes())
    raw[-4:] = bytes(b ^ 0xFF for b in raw[-4:])
    npy.write_bytes(bytes(raw))
    r = invoke("cache", cache, "verify")
    assert r.exit_code == 1
    assert "mismatch" in r.output and "1 damaged" in r.output


def test_failed_run_exits_1_with_reason(data, tmp_path):
    root = tmp_path / "DAQ"
    (root / "good").mkdir(parents=True)
    src = data / "run_001" / "RAW"
    (root / "good" / "RAW").mkdir()
    for f in src.iterdir():
        (root / "good" / "RAW" / f.name).write_bytes(f.read_bytes())
    bad = root / "bad" / "RAW"
    bad.mkdir(parents=True)
    first = next(src.iterdir())
    (bad / first.name).write_bytes(first.read_bytes()[:3000] + b"\n0;0;xx;garbage\n")
    r = invoke("run", root, "--all", "--cache", tmp_path / "c", "--workers", "1")
    assert r.exit_code == 1
    assert "FAILED bad" in r.output and "FormatError" in r.output and first.name in r.output
    assert "success" in r.output  # the good run is still reported


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "{data}", "run_01"], "Did you mean 'run_001'"),
        (["run", "{data}", "run_01"], "Runs found: run_001, run_002"),
        (["run", "{data}"], "--all"),
        (["run", "{data}", "--all", "--target", "peks"], "did you mean 'peaks'"),
        (["run", "{data}", "--all", "--wrokers", "2"], "--workers"),
        (["rn", "{data}"], "Did you mean 'run'"),
        (["run", "{data}", "--all", "--dask-address", "tcp://x:1"], "--executor dask"),
        (["plot", "{data}", "run_001", "--what", "spectra", "-o", "x.png"], "spectrum"),
    ],
)
def test_bad_usage_exits_2(data, args, message):
    r = CliRunner().invoke(main, [a.format(data=data) for a in args])
    assert r.exit_code == 2, r.output
    assert message in r.output


def test_config_file_and_version(data, tmp_path):
    cfg = tmp_path / "opts.toml"
    cfg.write_text("[peaks]\nthreshold = 40.0\n")
    r = invoke("run", data, "run_002", "--cache", tmp_path / "c", "--config", cfg, "--workers", "1")
    assert r.exit_code == 0, r.output
    js = tmp_path / "opts.json"
    js.write_text(json.dumps({"peaks": {"threshold": 15.0}}))
    r2 = invoke("run", data, "run_002", "--cache", tmp_path / "c", "--config", js, "--workers", "1")
    assert r2.exit_code == 0, r2.output
    assert _peaks(r.output, "run_002") < _peaks(r2.output, "run_002")  # a higher threshold finds fewer peaks
    assert invoke("--version").output.startswith("waveform-analysis, version ")


def _peaks(output: str, run: str) -> int:
    """The peaks column of ``run``'s row in the summary table."""
    return int(next(line for line in output.splitlines() if line.startswith(run)).split()[3])


def test_every_command_help_shows_an_example():
    for cmd in ("generate", "run", "graph", "cache", "show", "plot"):
        r = invoke(cmd, "--help")
        assert (
            r.exit_code == 0 and "Example:" in r.output and "waveform-analysis " + cmd in r.output
        )


def _script(name: str) -> Path:
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.skip(f"console script {name} is not installed")
    return path


def test_console_scripts_in_a_subprocess(data, tmp_path):
    env_cache = tmp_path / "c"
    done = subprocess.run(
        [
            _script("waveform-analysis"),
            "run",
            data,
            "run_001",
            "--cache",
            env_cache,
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "1/1 runs to peaks" in done.stdout
    bad = subprocess.run(
        [_script("waveform-analysis"), "run", data, "nope"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "nope" in bad.stderr
    version = subprocess.run([sys.executable, "-m", "waveform_analysis", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("waveform-analysis, version")
    demo_help = subprocess.run(
        [_script("celestialflow-demo"), "--help"], capture_output=True, text=True
    )
    assert demo_help.returncode == 0 and "usage" in demo_help.stdout
    assert "chain of 3 stages" not in demo_help.stdout  # help only, the demo did not run


def test_celestialflow_render(tmp_path, monkeypatch):
    from celestialflow.cli import main as cf_main

    (tmp_path / "mypipe.py").write_text(
        "from celestialflow import TaskChain, TaskManager\n"
        "def build():\n"
        "    return TaskChain([TaskManager(abs, name='a', log_to_file=False),\n"
        "                      TaskManager(abs, name='b', log_to_file=False)], name='two')\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cf_main(["render", "mypipe:build", "-o", "out/g.dot"]) == 0
    assert '"a" -> "b"' in (tmp_path / "out" / "g.dot").read_text()
    with pytest.raises(SystemExit) as exc:
        cf_main(["render", "mypipe:missing", "-o", "g.svg"])
    assert exc.value.code == 2


def test_import_stays_free_of_click_and_matplotlib():
    code = (
        "import sys, waveform_analysis; print('click' in sys.modules, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_config_file_typo_suggests_the_option(data, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[peaks]\nthreshhold = 3.0\n")
    r = CliRunner().invoke(main, ["run", str(data), "--all", "--config", str(cfg)])
    assert r.exit_code == 2
    assert "'threshhold'" in r.output and "did you mean 'threshold'" in r.output
    broken = tmp_path / "broken.toml"
    broken.write_text("[peaks\n")
    r = CliRunner().invoke(main, ["run", str(data), "--all", "--config", str(broken)])
    assert r.exit_code == 2 and "broken.toml" in r.output


def test_v1725_runs_are_detected(tmp_path):
    root = tmp_path / "DAQ"
    assert invoke("generate", root, "--runs", "1", "--waveforms", "50", "--format", "v1725").exit_code == 0
    r = invoke("show", root, "--cache", tmp_path / "c")
    assert r.exit_code == 0 and "v1725" in r.output and "in file" in r.output
    r = invoke("run", root, "--all", "--cache", tmp_path / "c", "--workers", "1")
    assert r.exit_code == 0 and "success" in r.output
    again = invoke("run", root, "--all", "--cache", tmp_path / "c", "--workers", "1")
    assert "cached" in again.output  # nothing was read the second time


def test_run_all_over_a_folder_of_mixed_formats(tmp_path):
    from waveform_analysis.synthetic import generate_run

    root = tmp_path / "DAQ"
    generate_run(root, "csv_run", layout="compass2", n_boards=2, n_waveforms=100)
    generate_run(root, "v1_run", layout="compass1", n_waveforms=100)
    generate_run(root, "bin_run", fmt="v1725", n_waveforms=100)
    r = invoke("run", root, "--all", "--cache", tmp_path / "cache")
    assert r.exit_code == 0, r.output
    assert "3/3 runs to peaks" in r.output
    for run in ("csv_run", "v1_run", "bin_run"):
        assert any(line.startswith(run) and "success" in line for line in r.output.splitlines()), r.output


@pytest.mark.parametrize("fmt, found", [("compass-bin", "CoMPASS 2.x BIN in RAW"),
                                        ("compass-csv", "CoMPASS 2.x CSV in RAW")])
def test_generate_compass_formats_show_run_info(tmp_path, fmt, found):
    root = tmp_path / "DAQ"
    r = invoke("generate", root, "--runs", "1", "--waveforms", "40", "--format", fmt)
    assert r.exit_code == 0, r.output
    assert (root / "run_001" / "truth.npy").is_file()
    r = invoke("show", root, "--cache", tmp_path / "c")
    assert r.exit_code == 0 and found in r.output
    r = invoke("show", root, "run_001", "--cache", tmp_path / "c")
    assert r.exit_code == 0, r.output
    assert f"format: {found}" in r.output
    assert "dt_ns" in r.output and "(x730 family)" in r.output
    r = invoke("run", root, "--all", "--cache", tmp_path / "c", "--workers", "1", "--target",
               "triggers")
    assert r.exit_code == 0 and "success" in r.output


def test_generate_list_mode_run_has_triggers_only(tmp_path):
    root = tmp_path / "DAQ"
    r = invoke("generate", root, "--runs", "1", "--waveforms", "40", "--format", "compass-bin",
               "--list-mode")
    assert r.exit_code == 0, r.output
    r = invoke("show", root, "run_001", "--cache", tmp_path / "c")
    assert "has_waveforms   False" in r.output
    r = invoke("run", root, "--all", "--cache", tmp_path / "c", "--workers", "1")
    assert r.exit_code == 1 and "has no waveforms" in r.output
    r = invoke("generate", tmp_path / "V", "--runs", "1", "--format", "v1725", "--list-mode")
    assert r.exit_code != 0


def test_a_run_folder_given_as_data_root_is_named_as_such(data, tmp_path):
    # DATA_ROOT holds runs; pointing at one run used to say only "no runs found"
    run = tmp_path / "run_a"
    run.mkdir()
    for f in (data / "run_001" / "RAW").iterdir():
        (run / f.name).write_bytes(f.read_bytes())
    r = CliRunner().invoke(main, ["run", str(run), "--all"])
    assert r.exit_code == 2, r.output
    assert "itself a run" in r.output and "'run_a'" in r.output
    r = invoke("show", run)
    assert f"pass {tmp_path.resolve()} and the run 'run_a'" in " ".join(r.output.split())


def test_data_files_no_format_reads_are_listed(tmp_path):
    # a CoMPASS BIN renamed by hand (as in legend's test data) is not a run: say which file
    (tmp_path / "run_x").mkdir()
    (tmp_path / "run_x" / "compass_test_data.BIN").write_bytes(b"\xed\xca" + bytes(100))
    r = invoke("show", tmp_path)
    assert "no runs found" in r.output and "run_x/compass_test_data.BIN" in r.output


def test_set_gives_options_on_the_command_line(data, tmp_path):
    # a WaveDump-like run naming no model needed a --config file for its sample period
    r = invoke("run", data, "run_001", "--cache", tmp_path / "c", "--set", "peaks.threshold=40",
               "--set", "dt_ns=4")
    assert r.exit_code == 0, r.output
    from waveform_analysis import Context, standard_plugins

    ctx = Context(storage_dir=tmp_path / "c", config={
        "data_root": str(data), "dt_ns": 4, "daq_adapter": "compass", "peaks": {"threshold": 40}})
    ctx.register(standard_plugins())
    assert ctx.is_cached("run_001", "peaks")  # the same options, so the same cache entry
    r = CliRunner().invoke(main, ["run", str(data), "--all", "--set", "peaks.thresold=4"])
    assert r.exit_code == 2 and "did you mean 'threshold'" in r.output
    r = CliRunner().invoke(main, ["show", str(data), "--set", "oops"])
    assert r.exit_code == 2 and "KEY=VALUE" in r.output


def test_parse_settings_values_are_toml_literals():
    from waveform_analysis.cli.common import parse_settings

    assert parse_settings(["dt_ns=2", "peaks.threshold=20.5", "triggers.calibration=[0, 0.3, 0]",
                           "board_model=DT5730", "flag=true"]) == {
        "dt_ns": 2, "peaks": {"threshold": 20.5}, "triggers": {"calibration": [0, 0.3, 0]},
        "board_model": "DT5730", "flag": True}
