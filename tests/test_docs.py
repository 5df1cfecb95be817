"""The examples of the user guides in docs/ run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
