"""A small engine tour: a chain, a loop and a splitter/router graph, drawn as DOT.

Run with ``python -m celestialflow.demo``.
"""

from __future__ import annotations

import argparse
import time


def main(argv: list[str] | None = None) -> int:
    """Run the tour (``--help`` prints what it does and exits)."""
    argparse.ArgumentParser(prog="celestialflow-demo", description=__doc__.splitlines()[0]).parse_args(argv)
    from loguru import logger

    from celestialflow import TaskChain, TaskGraph, TaskLoop, TaskManager, TaskRouter, TaskSplitter

    logger.remove()
    quiet = {"log_to_file": False}

    chain = TaskChain(
        [
            TaskManager(lambda x: x + 1, name="inc", **quiet),
            TaskManager(lambda x: x * 2, name="double", **quiet),
            TaskManager(lambda x: x - 3, name="minus3", **quiet),
        ],
        name="chain",
    )
    n = 1_000_000
    t0 = time.perf_counter()
    chain.start(range(n))
    dt = time.perf_counter() - t0
    print(f"chain of 3 stages: {n:,} inputs in {dt:.2f} s ({n / dt:,.0f}/s)")

    def gate(x: int) -> int:
        if x > 100:
            raise ValueError("above the bound")
        return x

    loop = TaskLoop([TaskManager(lambda x: x + 1, name="step", **quiet), TaskManager(gate, **quiet)], name="loop")
    loop.start([1])
    print("loop ended by itself:", {k: v["succeeded"] for k, v in loop.get_status_dict().items()})

    g = TaskGraph("split-route", record_failures=False)
    split = g.add_stage(TaskSplitter(lambda n: range(n), name="split", **quiet))
    route = g.add_stage(TaskRouter(lambda x: ("even" if x % 2 == 0 else "odd", x), name="route", **quiet))
    even = g.add_stage(TaskManager(lambda x: x, name="even", **quiet))
    odd = g.add_stage(TaskManager(lambda x: x, name="odd", **quiet))
    g.connect(split, route)
    g.connect(route, [even, odd])
    g.start_graph({split: [10]})
    print("router:", {k: sorted(v) for k, v in g.get_results().items()})
    print(g.format_tree())
    print(g.to_dot())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
