"""Every script in examples/ runs and prints what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script: str, *args: str, cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_engine_quickstart(tmp_path):
    out = run("engine_quickstart.py", cwd=tmp_path)
    assert "(1, 2): '1 + 2 = 3'" in out and "ValueError" in out


def test_graph_structures(tmp_path):
    out = run("graph_structures.py", cwd=tmp_path)
    assert "digraph" in out and "gate failed" in out


def test_batch_peaks(tmp_path):
    out = run("batch_peaks.py", str(tmp_path), cwd=tmp_path)
    assert out.count("success") == 3


@pytest.mark.parametrize("module", ["celestialflow.demo"])
def test_engine_demo(tmp_path, module):
    proc = subprocess.run([sys.executable, "-m", module], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "loop ended by itself" in proc.stdout and "digraph" in proc.stdout


def test_waveform_demo_small(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "waveform_analysis.demo", "--out", str(tmp_path / "demo"), "--runs", "2",
         "--waveforms", "300", "--workers", "2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2/2 runs" in proc.stdout and "batch_pipeline.dot" in proc.stdout
    assert "found>=10σ" in proc.stdout and "key=" not in proc.stdout  # keys only with --verbose
    listed = proc.stdout.split("files written:")[1]
    for name in ("run_001_waveforms.png", "run_001_area_spectrum.png", "lineage.dot"):
        assert name in listed and (tmp_path / "demo" / name).stat().st_size > 500
    drawing = (tmp_path / "demo" / "batch_pipeline.dot").read_text()
    again = subprocess.run(proc.args + ["--verbose"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already in the cache" in again.stdout and "key=" in again.stdout
    assert (tmp_path / "demo" / "batch_pipeline.dot").read_text() == drawing  # not a one-node drawing
