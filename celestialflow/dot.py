"""Graphviz DOT text from a networkx graph, and rendering through the graphviz package.

DOT is produced as text (deterministic: nodes and edges in insertion order) so it
works without the ``dot`` program; rendering to SVG/PNG needs that program and
says so clearly when it is missing. :func:`write_drawing` is the one way a drawing
goes to a file: DOT text, or a picture, or DOT with a note when ``dot`` is missing.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import networkx as nx

from .errors import GraphvizNotFoundError


def quote(text: object) -> str:
    """A DOT double-quoted string (backslashes, quotes and newlines escaped)."""
    s = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{s}"'


def _attrs(attrs: Mapping[str, object] | None) -> str:
    if not attrs:
        return ""
    return " [" + ", ".join(f"{k}={quote(v)}" for k, v in attrs.items()) + "]"


def dot_source(
    graph: nx.DiGraph,
    *,
    name: str = "G",
    node_attrs: Mapping[object, Mapping[str, object]] | None = None,
    edge_attrs: Mapping[tuple[object, object], Mapping[str, object]] | None = None,
    rankdir: str = "LR",
    default_node: Mapping[str, object] | None = None,
) -> str:
    """DOT text with one node per graph node and one edge per graph edge."""
    node_attrs = node_attrs or {}
    edge_attrs = edge_attrs or {}
    base = {"shape": "box", "style": "rounded", "fontname": "Helvetica"}
    base.update(default_node or {})
    lines = [f"digraph {quote(name)} {{", f"  rankdir={quote(rankdir)};"]
    # style on every node, not in a `node [...]` default statement: DOT readers such
    # as pydot list such a statement as a node called "node"
    for node in graph.nodes:
        lines.append(f"  {quote(node)}{_attrs({**base, **node_attrs.get(node, {})})};")
    for u, v in graph.edges:
        lines.append(f"  {quote(u)} -> {quote(v)}{_attrs(edge_attrs.get((u, v)))};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_available() -> bool:
    """Whether Graphviz's ``dot`` program is on PATH."""
    return shutil.which("dot") is not None


def render_dot(source: str, path: str | Path, format: str | None = None) -> Path:
    """Write ``source`` rendered by Graphviz to ``path`` (format from the suffix by default)."""
    import graphviz

    path = Path(path)
    fmt = format or (path.suffix.lstrip(".") or "svg")
    if not dot_available():
        raise GraphvizNotFoundError(
            f"cannot render {path}: Graphviz's 'dot' program is not installed "
            "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz); "
            "to_dot() still gives the DOT text"
        )
    data = graphviz.Source(source).pipe(format=fmt)
    if path.suffix.lstrip(".") != fmt:
        path = path.with_suffix(path.suffix + "." + fmt) if path.suffix else path.with_suffix("." + fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_drawing(dot: str, output: str | Path) -> tuple[Path, str | None]:
    """Write DOT text (``.dot``/``.gv``, or no suffix) or render it (``.svg``, ``.png`` ...); ``(path, note)``.

    Without Graphviz's ``dot`` program the DOT text goes next to ``output`` with
    a ``.dot`` suffix and ``note`` says so; otherwise ``note`` is None.
    """
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix.lower() in (".dot", ".gv", ""):
        path = output if output.suffix else output.with_suffix(".dot")
        path.write_text(dot)
        return path, None
    if not dot_available():
        path = output.with_suffix(".dot")
        path.write_text(dot)
        return path, (
            f"Graphviz's 'dot' program is not installed, so {output.name} was not drawn; "
            f"wrote the DOT text to {path} instead (apt-get install graphviz, then rerun)"
        )
    return render_dot(dot, output), None


def svg_or_none(source: str) -> str | None:
    """SVG text for Jupyter, or None when ``dot`` is missing (Jupyter then shows the repr)."""
    if not dot_available():
        return None
    import graphviz

    return graphviz.Source(source).pipe(format="svg").decode("utf-8")
