"""The examples of the user guides in docs/ run as written."""

from __future__ import annotations

import contextlib
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def run_guide(name: str, tmp_path: Path, min_blocks: int) -> subprocess.CompletedProcess:
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(), re.S)  # name relative to docs/
    assert len(blocks) >= min_blocks
    script = tmp_path / "guide.py"
    script.write_text("\n".join(blocks))
    res = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr
    return res


def test_engine_guide_examples_run(tmp_path):
    out = run_guide("engine.md", tmp_path, 9).stdout
    assert "[0, 1, 2, 4, 5, 6, 7]\nTrue" in out
    assert "{(1, 2): 3, (3, 4): 7}" in out and "[('parse', 'x')]" in out and "[0, 3, 6]" in out
    # outputs printed in a fixed order, as the comments next to them say
    assert "{'negate': [-2, -1], 'square': [1, 4]}" in out
    assert "[('negate', 2, 0), ('parse', 2, 1), ('square', 2, 0)]" in out
    assert "[(0, 0), (1, 10), (2, 20), (3, 30), (4, 40)]" in out
    assert "1 of 2 tasks succeeded\n{'ValueError': [(-1, 2)]}" in out
    assert "both numbers must be at least 0, got -1 and 2" in out
    assert "[20, 30, 40]" in out and "{'minus': [-2, -1], 'plus': [101, 102]}" in out


def test_engine_guide_names_no_unused_import_and_no_unnamed_guide():
    text = (DOCS / "engine.md").read_text()
    assert "defaultdict" not in text and "the guide's" not in text


def test_batch_guide_examples_run(tmp_path):
    out = run_guide("batch.md", tmp_path, 2).stdout
    assert "RunNotFoundError" in out and "{'threshold': 10.0}" in out


def test_context_guide_examples_run(tmp_path):
    out = run_guide("context.md", tmp_path, 8).stdout
    assert "plugin 'peaks', option 'threshold'" in out
    assert (tmp_path / "wa_cache" / "run_001").is_dir()


def test_readme_examples_run(tmp_path):
    out = run_guide("../README.md", tmp_path, 2).stdout
    assert "[2, 4, 6, 8, 10, 12, 14, 16, 18, 20]" in out and "'status': 'success'" in out


def test_formats_guide_examples_run(tmp_path):
    out = run_guide("formats.md", tmp_path, 3).stdout
    assert "4 10" in out
    daq = tmp_path / "DAQ"
    assert (daq / "run_7" / "RAW" / "DataR_CH0@V1730_1464_run_7_2.CSV").is_file()
    assert (daq / "Background" / "UNFILTERED" / "1@DT5730 #2-11-1463_Data_Background.csv").is_file()


def run_blocks_in_order(name: str, tmp_path: Path) -> str:
    """Run a page's blocks in order: python blocks as scripts, ``waveform-analysis`` lines of bash blocks.

    The commands run in this process through click's test runner (one import, not
    one interpreter per command). A ``toml`` block is written to ``options.toml``
    first (the page's commands read it).
    """
    from click.testing import CliRunner

    from waveform_analysis.cli import main

    text = (DOCS / name).read_text()
    for toml in re.findall(r"```toml\n(.*?)```", text, re.S):
        (tmp_path / "options.toml").write_text(toml)
    out = []
    for lang, body in re.findall(r"```(python|bash)\n(.*?)```", text, re.S):
        if lang == "python":
            res = subprocess.run([sys.executable, "-c", body], cwd=tmp_path, capture_output=True, text=True, timeout=240)
            assert res.returncode == 0, f"{body}\n{res.stdout}\n{res.stderr}"
            out.append(res.stdout)
            continue
        for line in (ln.split("#")[0].strip() for ln in body.splitlines()):
            if not line.startswith("waveform-analysis "):
                continue
            with contextlib.chdir(tmp_path):
                res = CliRunner().invoke(main, shlex.split(line)[1:], catch_exceptions=False)
            assert res.exit_code == 0, f"{line}\n{res.output}"
            out.append(res.output)
    return "\n".join(out)


def test_quick_start_runs(tmp_path):
    out = run_guide("index.md", tmp_path, 6).stdout
    assert "['run_001', 'run_002', 'run_003']\nRunNotFoundError" in out
    assert "ADC x samples" in out and "compute  peaks" in out
    assert (tmp_path / "waveforms.png").stat().st_size > 10_000
    assert (tmp_path / "spectrum.png").stat().st_size > 10_000


def test_own_data_page_runs(tmp_path):
    pytest.importorskip("click")
    out = run_blocks_in_order("own-data.md", tmp_path)
    assert "run_8       compass  CoMPASS 2.x CSV in RAW         RAW              0,1       2         1      4  3.9 MB" in out
    assert "['Background', 'run_7', 'run_8']\nTrue True\n[0, 1]" in out
    assert (tmp_path / "plots").is_dir() and any((tmp_path / "plots").iterdir())


def _blocks(name: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(), re.S)


def test_scaling_page_runs(tmp_path):
    pytest.importorskip("distributed")
    local = [b for b in _blocks("scaling.md") if "SLURMCluster" not in b]
    script = tmp_path / "guide.py"
    script.write_text("\n".join(local))
    res = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["True", "{'success'}", "True", "True", "True"]


def test_scaling_page_slurm_cluster_is_made(tmp_path, monkeypatch):
    """The SLURM example builds its cluster object (no job is submitted); skipped without dask-jobqueue."""
    pytest.importorskip("dask_jobqueue")
    (block,) = [b for b in _blocks("scaling.md") if "SLURMCluster" in b]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "docs_scaling"}  # not __main__: main() is not called
    exec(compile(block.replace("/project/myexp", str(tmp_path)), "scaling.md", "exec"), namespace)
    cluster = namespace["make_slurm_cluster"]()
    try:
        script = cluster.job_script()
        assert "#SBATCH -p normal" in script and f"source {tmp_path}/venv/bin/activate" in script
    finally:
        cluster.close()


def test_fields_page_runs(tmp_path):
    out = run_guide("fields.md", tmp_path, 1).stdout
    assert "ADC (300,)" in out and "['time', 'channel', 'baseline', 'baseline_rms']" in out


def test_every_page_with_python_code_is_run_by_a_test():
    source = Path(__file__).read_text()
    for page in sorted(DOCS.rglob("*.md")):
        if "```python" in page.read_text():
            assert f'"{page.relative_to(DOCS)}"' in source, f"{page.name} has Python code that no test runs"


def test_analysis_guide_examples_run(tmp_path):
    pytest.importorskip("uproot")
    pytest.importorskip("matplotlib")
    out = run_guide("analysis.md", tmp_path, 10).stdout.splitlines()
    assert out[0] == "True"  # a parsed selection is the numpy mask
    assert "did you mean 'area'" in out[1] and "unexpected character ';'" in out[2]
    assert out[3:8] == ["True", "['run_001', 'run_002', 'run_003']", "True", "True", "2000 0.0"]
    assert out[8] == "True 0.0"  # coincidences of the standard chain
    assert out[9] == "True"  # events with min_channels and require
    assert out[10:12] == ["True", "['spectrum_b0_ch0', 'spectrum_b0_ch1']"]
    assert out[12] == "board,channel,low,high,count" and out[13] == "['sum.png', 'tof.png']"
    assert out[14] == "4 True"  # the gates drawn on the waveforms
    assert out[15] == "['config', \"channels['0:1']\"]"  # per-channel settings: where each comes from
    assert out[16:18] == ["True True", "True False"]  # channel 1's threshold; keys change from peaks on
    assert out[18].endswith("'merge_gap', which is not a per-channel option")


def test_online_page_runs(tmp_path):
    pytest.importorskip("click")
    out = run_blocks_in_order("online.md", tmp_path)
    assert "run_001: run computed" in out and "run_002: run computed" in out
    assert "waiting [0, 1] 400\n['0:0', '0:1']\n600\nTrue" in out


def test_watching_guide_examples_run(tmp_path):
    pytest.importorskip("IPython")  # graph.live() displays through IPython
    out = run_guide("watching.md", tmp_path, 3).stdout
    assert re.search(r"http://127\.0\.0\.1:\d+/g/TaskChain-[0-9a-f]{6}/", out)
    assert "failed 10\nTrue\nrun_started 10 run_finished" in out
