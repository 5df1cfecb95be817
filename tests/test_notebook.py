"""examples/tutorial.ipynb runs top to bottom in a real Jupyter kernel and shows what it says."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")
pytest.importorskip("pandas")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "tutorial.ipynb"


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_notebook_executes(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    kinds = [set(o.get("data", {})) for o in outputs]
    assert sum("image/png" in k for k in kinds) >= 2                  # waveforms and spectrum
    assert any("text/html" in k for k in kinds)                       # a DataFrame as a table
    graph = nb.cells[-1].outputs[0]["data"]                           # the pipeline graph
    assert "text/vnd.graphviz" in graph or "image/svg+xml" in graph
    text = "".join(o.get("text", "") for o in outputs)
    assert "records," in text and "compute  peaks" in text
    assert "run_404" in str(nb.cells[-3].outputs) and "does not exist" in str(nb.cells[-3].outputs)
