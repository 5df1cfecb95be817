"""The ``celestialflow`` command line: draw a TaskGraph defined in a module.

``celestialflow render module:object -o graph.svg`` imports ``module``, takes
``object`` (a TaskGraph, a TaskManager, or a function without arguments that
returns one) and writes its drawing: DOT text for ``.dot``, SVG/PNG through
Graphviz otherwise (DOT text next to it, with a note, when ``dot`` is missing).
It also prints the graph as a text tree. Uses argparse only, so the engine
needs no extra dependency.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

EXAMPLE = "example:\n  celestialflow render mypipeline:build_graph -o graph.svg"


def load_object(spec: str) -> Any:
    """The object named by ``module:attr.path`` (a ValueError naming what is missing)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{spec!r}: expected module:object, e.g. mypipeline:graph")
    sys.path.insert(0, ".")  # a module in the current folder, as `python -m` would find it
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{spec!r}: cannot import {module_name!r} ({exc})") from exc
    finally:
        sys.path.remove(".")
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"{spec!r}: {module_name} has no attribute {attr!r}") from None
    return obj


def as_graph(obj: Any, spec: str) -> Any:
    """``obj`` as a TaskGraph: a graph as is, a stage wrapped in one, a factory called."""
    from .graph import TaskGraph
    from .manager import TaskManager

    if callable(obj) and not isinstance(obj, TaskGraph | TaskManager):
        obj = obj()
    if isinstance(obj, TaskManager):
        graph = TaskGraph(obj.name)
        graph.add_stage(obj)
        return graph
    if not isinstance(obj, TaskGraph):
        raise ValueError(f"{spec!r} is a {type(obj).__name__}, not a TaskGraph or TaskManager")
    return obj


def render(spec: str, output: Path) -> int:
    from .dot import dot_available, render_dot

    graph = as_graph(load_object(spec), spec)
    dot = graph.to_dot()
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix.lower() in (".dot", ".gv"):
        output.write_text(dot)
        path = output
    elif not dot_available():
        path = output.with_suffix(".dot")
        path.write_text(dot)
        print(f"note: Graphviz's 'dot' program is not installed, so {output.name} was not drawn; "
              f"wrote the DOT text to {path} (apt-get install graphviz, then rerun)", file=sys.stderr)
    else:
        path = render_dot(dot, output)
    print(graph.format_tree())
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``celestialflow`` console script; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="celestialflow", description=__doc__.splitlines()[0], epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="draw a TaskGraph defined in a module", epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument(
        "target", metavar="module:object", help="e.g. mypipeline:graph or mypipeline:build_graph"
    )
    r.add_argument(
        "-o", "--output", type=Path, required=True, help="FILE.svg, FILE.png or FILE.dot"
    )
    args = parser.parse_args(argv)
    try:
        return render(args.target, args.output)
    except ValueError as exc:
        parser.exit(2, f"celestialflow render: error: {exc}\n")
    return 2  # pragma: no cover


if __name__ == "__main__":
    raise SystemExit(main())
