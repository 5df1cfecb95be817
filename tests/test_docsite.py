"""The documentation site builds with ``mkdocs build --strict``: a broken link or API reference fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    out = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    api = (out / "api" / "celestialflow" / "index.html").read_text()
    assert 'id="celestialflow.TaskManager.start"' in api and 'id="celestialflow.TaskGraph.rerun_failed"' in api
    wa = (out / "api" / "waveform_analysis" / "index.html").read_text()
    assert 'id="waveform_analysis.Context.get_data"' in wa
    fields = (out / "fields" / "index.html").read_text()
    assert "ADC x samples" in fields  # generated from waveform_analysis.dtypes
