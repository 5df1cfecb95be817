"""celestialflow.dot.write_drawing: the one way a drawing is written, used by both command lines."""


from celestialflow.dot import write_drawing

DOT = 'digraph "g" {\n  "a" -> "b";\n}\n'


def test_dot_suffix_and_no_suffix_write_text(tmp_path):
    path, note = write_drawing(DOT, tmp_path / "sub" / "g.gv")
    assert path == tmp_path / "sub" / "g.gv" and path.read_text() == DOT and note is None
    path, note = write_drawing(DOT, tmp_path / "plain")
    assert path == tmp_path / "plain.dot" and path.read_text() == DOT and note is None


def test_missing_graphviz_falls_back_to_dot_with_a_note(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    path, note = write_drawing(DOT, tmp_path / "g.svg")
    assert path == tmp_path / "g.dot" and path.read_text() == DOT
    assert "not installed" in note and "g.svg" in note


def test_celestialflow_render_without_graphviz_notes_it(tmp_path, monkeypatch, capsys):
    from celestialflow.cli import main as cf_main

    (tmp_path / "pipe2.py").write_text(
        "from celestialflow import TaskManager\n"
        "def build():\n"
        "    return TaskManager(abs, name='a', log_to_file=False)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert cf_main(["render", "pipe2:build", "-o", "g.svg"]) == 0
    assert (tmp_path / "g.dot").exists() and not (tmp_path / "g.svg").exists()
    assert "not installed" in capsys.readouterr().err


def test_batch_drawing_keeps_the_seed_name():
    from waveform_analysis.batch.drawing import write_drawing as batch_write
    from waveform_analysis.core.data.batch_drawing import write_drawing as seed_write

    assert batch_write is write_drawing and seed_write is write_drawing
