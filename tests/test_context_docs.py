"""The examples of docs/context.md run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "context.md"


def test_context_guide_examples_run(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 8
    script = tmp_path / "guide.py"
    script.write_text("\n".join(blocks))
    res = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=240,
    )
    assert res.returncode == 0, res.stderr
    assert "plugin 'peaks', option 'threshold'" in res.stdout
    assert (tmp_path / "wa_cache" / "run_001").is_dir()
