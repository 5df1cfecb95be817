"""The engine next to the plain-Python peer of each case, as ratios measured in one run.

    python bench/bench_peers.py [--repeat 5] [--only async,trivial,sleep]

Each case and its reference are timed alternately ``--repeat`` times (interleaved,
so both see the same load on a shared machine); the table prints the median
inputs/s of each side, the ratio of the medians (ours / reference, above 1:
faster) and the spread of the per-repetition ratios (min-max). Stages run with
the TaskManager defaults (dedup on, caches off, per-run log file on, in a
temporary folder); construction is inside the timing.

* async: ``TaskManager(..., "async", worker_limit=50).start`` of 2,000 tasks
  awaiting ``asyncio.sleep(0.001)``, against ``asyncio.run`` of ``gather`` bounded
  by ``Semaphore(50)``; every repetition of either side runs in a **new process**
  (the first call is what is timed; the import is not). Goal >= 0.95 x.
* trivial: a 3-stage serial TaskChain (x+1 -> x*2 -> x-3), N = 20,000, against a
  plain loop ``f3(f2(f1(x)))``. Goal >= 1,000,000 inputs/s.
* sleep: a 3-stage thread TaskChain, each function sleeping 1 ms, 50 threads per
  stage, N = 2,000 and 200, against one fused ``ThreadPoolExecutor(150).map``
  (pool creation included). Goals >= 0.9 x and >= 0.8 x.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import private_log_dir  # noqa: E402  (before celestialflow reads the log folder)

private_log_dir()

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loguru import logger  # noqa: E402

logger.remove()

from celestialflow import TaskChain, TaskManager  # noqa: E402

ASYNC_N = 2000


# the chain's stage functions are bench_graph's, so the two benchmarks time the same work
from bench_graph import f1, f2, f3, fused, s1, s2, s3, s_fused  # noqa: E402


async def asleep_1ms(x):
    await asyncio.sleep(0.001)
    return x


def async_ours() -> None:
    TaskManager(asleep_1ms, "async", worker_limit=50).start(range(ASYNC_N))


def async_ref() -> None:
    async def main():
        sem = asyncio.Semaphore(50)

        async def one(x):
            async with sem:
                return await asleep_1ms(x)

        return await asyncio.gather(*(one(x) for x in range(ASYNC_N)))

    asyncio.run(main())


def in_child(which: str) -> float:
    """Seconds one call of ``which`` takes in a new Python process (imports not timed)."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", which], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def run_chain(funcs, xs, mode="serial", workers=50) -> None:
    chain = TaskChain([TaskManager(f, mode, worker_limit=workers) for f in funcs])
    chain.start(xs)
    out = chain.get_results()[funcs[-1].__name__]
    if len(out) != len(xs):
        raise RuntimeError(f"chain returned {len(out)} results for {len(xs)} inputs")


def plain_loop(xs) -> None:
    out = []
    for x in xs:
        out.append(fused(x))


def tpe150(xs) -> None:
    with ThreadPoolExecutor(150) as ex:
        list(ex.map(s_fused, xs))


def timed(func) -> float:
    t0 = time.perf_counter()
    func()
    return time.perf_counter() - t0


def interleaved(ours, ref, repeat: int) -> tuple[list[float], list[float]]:
    """Times of ``ours`` and ``ref`` (callables returning seconds), alternating which goes first."""
    a, b = [], []
    for i in range(repeat):
        if i % 2:
            b.append(ref())
            a.append(ours())
        else:
            a.append(ours())
            b.append(ref())
    return a, b


def row(case: str, n: int, ours: list[float], ref: list[float], ref_label: str, goal: str) -> str:
    ratios = [r / o for o, r in zip(ours, ref)]
    mo, mr = statistics.median(ours), statistics.median(ref)
    return (
        f"{case:<34} {n:>7,} {n / mo:>12,.0f} {ref_label:<30} {n / mr:>12,.0f} "
        f"{mr / mo:>6.2f} x  {min(ratios):.2f}-{max(ratios):.2f}  {goal}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", default="async,trivial,sleep")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(timed({"async-ours": async_ours, "async-ref": async_ref}[args.child]))
        return 0
    only = set(args.only.split(","))
    rep = args.repeat
    print(f"{'case':<34} {'N':>7} {'ours in/s':>12} {'reference':<30} {'ref in/s':>12} "
          f"{'ratio':>8}  spread     goal")
    if "async" in only:
        a, b = interleaved(lambda: in_child("async-ours"), lambda: in_child("async-ref"), rep)
        print(row("async sleep 1 ms x50, new process", ASYNC_N, a, b, "gather + Semaphore(50)", ">= 0.95 x"),
              flush=True)
    if "trivial" in only:
        xs = list(range(20_000))
        timed(lambda: run_chain([f1, f2, f3], xs[:100]))  # warm-up: imports, first log file
        a, b = interleaved(lambda: timed(lambda: run_chain([f1, f2, f3], xs)), lambda: timed(lambda: plain_loop(xs)),
                           rep)
        print(row("chain trivial, serial", len(xs), a, b, "plain loop f3(f2(f1(x)))", ">= 1,000,000 in/s"),
              flush=True)
    if "sleep" in only:
        for n, goal in ((2000, ">= 0.9 x"), (200, ">= 0.8 x")):
            xs = list(range(n))
            a, b = interleaved(lambda xs=xs: timed(lambda: run_chain([s1, s2, s3], xs, "thread", 50)),
                               lambda xs=xs: timed(lambda: tpe150(xs)), rep)
            print(row("chain sleep 1 ms, thread x50", n, a, b, "fused ThreadPoolExecutor(150)", goal),
                  flush=True)
    print(f"medians of {rep} interleaved repetitions; spread: min-max of the per-repetition ratios; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
