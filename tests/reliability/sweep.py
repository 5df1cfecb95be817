"""Sweep: many random examples per fault family, counted by the invariant that broke.

Unlike the tests, a sweep does not stop at the first failure or shrink: it
tells how often each invariant breaks, which is what docs/reliability.md
records before and after engine fixes. Run from the repository root::

    PYTHONPATH=tests .venv/bin/python -m reliability.sweep --examples 200
    PYTHONPATH=tests .venv/bin/python -m reliability.sweep --examples 50 --family worker-killed

Prints one line per family (examples, stages, input tasks, outcome counts) and
the first example of each kind of failure.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

from hypothesis.errors import NonInteractiveExampleWarning
from loguru import logger

from .faultlib import Hang, check, run_guarded
from .test_engine_faults import BOUND, FAMILIES, MANAGER_FAMILIES, run_manager_and_check


def outcome(family: str, spec) -> str:
    """'pass', or the tag of the invariant that broke (the ``[tag]`` its message starts with)."""
    try:
        if family in MANAGER_FAMILIES:
            run_manager_and_check(spec)
        else:
            with tempfile.TemporaryDirectory(prefix="cf-sweep-") as tmp:
                check(spec, run_guarded(spec, Path(tmp), BOUND))
    except Hang:
        return "hang"
    except AssertionError as exc:
        found = re.match(r"\[([^\]]+)\]( start(?:_graph)? raised (\w+))?", str(exc))
        if not found:
            return f"other: {str(exc)[:60]}"
        return f"raised {found.group(3)}" if found.group(3) else found.group(1)
    return "pass"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100, help="examples per family")
    parser.add_argument("--family", action="append", help="only these families (repeatable)")
    args = parser.parse_args()
    logger.remove()
    warnings.simplefilter("ignore", NonInteractiveExampleWarning)
    families = {**FAMILIES, **MANAGER_FAMILIES}
    for family in args.family or families:
        strategy = families[family]
        counts: Counter[str] = Counter()
        first: dict[str, object] = {}
        stages = tasks = 0
        t0 = time.perf_counter()
        for _ in range(args.examples):
            spec = strategy.example()
            stages += len(spec.stages)
            tasks += sum(len(t) for _, t in spec.feeds)
            result = outcome(family, spec)
            counts[result] += 1
            first.setdefault(result, spec)
        summary = ", ".join(f"{k} {v}" for k, v in counts.most_common())
        print(f"{family}: {args.examples} graphs, {stages} stages, {tasks} input tasks, "
              f"{time.perf_counter() - t0:.0f} s: {summary}", flush=True)
        for kind, spec in first.items():
            if kind != "pass":
                print(f"    first '{kind}': {spec}", flush=True)


if __name__ == "__main__":
    main()
