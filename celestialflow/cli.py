"""The ``celestialflow`` command line: draw a TaskGraph defined in a module.

``celestialflow render module:object -o graph.svg`` imports ``module``, takes
``object`` (a TaskGraph, a TaskManager, or a function without arguments that
returns one) and writes its drawing: DOT text for ``.dot``, SVG/PNG through
Graphviz otherwise (DOT text next to it, with a note, when ``dot`` is missing).
It also prints the graph as a text tree.

``celestialflow serve module:graph [--tasks module:tasks]`` serves the graph's
live view in the browser (:mod:`celestialflow.dashboard`, on 127.0.0.1 unless
``--host`` says otherwise) and, with ``--tasks``, runs the graph on them (a
mapping ``{stage: tasks}``, a list for a chain's entry, or a function without
arguments returning either); the page keeps showing the final state until Ctrl-C
(or, with ``--exit``, the command ends with the run). Uses argparse only, so the
engine needs no extra dependency.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

EXAMPLE = "example:\n  celestialflow render mypipeline:build_graph -o graph.svg"
SERVE_EXAMPLE = "example:\n  celestialflow serve mypipeline:graph --tasks mypipeline:tasks --port 8765"


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
    from .dot import write_drawing

    graph = as_graph(load_object(spec), spec)
    path, note = write_drawing(graph.to_dot(), output)
    if note:
        print(f"note: {note}", file=sys.stderr)
    print(graph.format_tree())
    print(f"wrote {path}")
    return 0


def serve(spec: str, tasks_spec: str | None, host: str, port: int | None, leave: bool) -> int:
    """Serve the dashboard of the graph named by ``spec``; run it on ``tasks_spec`` if given."""
    import time
    from collections.abc import Mapping

    graph = as_graph(load_object(spec), spec)
    bracketed = f"[{host}]" if ":" in host else host
    graph.open_dashboard(bracketed + (f":{port}" if port is not None else ""))
    print(graph.format_tree())
    code = 0
    if tasks_spec is not None:
        tasks = load_object(tasks_spec)
        if callable(tasks):
            tasks = tasks()
        try:
            if isinstance(tasks, Mapping):
                graph.start_graph(tasks)
            elif hasattr(graph, "start"):
                graph.start(tasks)
            else:
                raise ValueError(f"{tasks_spec!r}: give a mapping {{stage name: tasks}} for graph {graph.name!r}")
        except ValueError:
            graph.close_dashboard()
            raise
        except Exception as exc:  # noqa: BLE001 - the page shows the crash; say it here too
            print(f"celestialflow serve: graph {graph.name!r} crashed: {type(exc).__name__}: {exc}", file=sys.stderr)
            code = 1
        failed = sum(s["failed"] for s in graph.get_status_dict().values())
        print(f"run ended in {graph.elapsed:.2f} s, {failed} failed task(s); the dashboard shows the final state")
    if leave:
        graph.close_dashboard()
        return code
    print(f"serving {graph.dashboard_url} until Ctrl-C", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        graph.close_dashboard()
    return code


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
    sv = sub.add_parser(
        "serve",
        help="serve the live view of a TaskGraph in the browser (and run it)",
        epilog=SERVE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sv.add_argument("target", metavar="module:object", help="a TaskGraph, TaskManager or a function returning one")
    sv.add_argument(
        "--tasks",
        metavar="module:object",
        help="run the graph on these: {stage: tasks}, a list (a chain's entry) or a function returning one",
    )
    sv.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only; another prints a warning)",
    )
    sv.add_argument("--port", type=int, default=None, help="port (default 8765, or a free one if it is taken)")
    sv.add_argument("--exit", action="store_true", help="stop serving when the run ends instead of at Ctrl-C")
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return serve(args.target, args.tasks, args.host, args.port, args.exit)
        return render(args.target, args.output)
    except ValueError as exc:
        parser.exit(2, f"celestialflow {args.command}: error: {exc}\n")
    return 2  # pragma: no cover


if __name__ == "__main__":
    raise SystemExit(main())
