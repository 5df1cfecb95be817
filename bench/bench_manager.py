"""Throughput of one TaskManager stage in each execution mode, next to plain-Python references.

    python bench/bench_manager.py [--quick] [--repeat 3]

Every case is timed ``--repeat`` times (best kept) together with its reference(s),
measured in the same run, so the ratios hold on a busy machine. Ratio = reference
time / our time (above 1: faster than the reference). Managers run with their
defaults (dedup on, caches off, per-run log file on); log files go to a temporary
folder (``CELESTIALFLOW_LOG_DIR``) and loguru's stderr sink is removed.

* serial, 20,000 trivial tasks: >= 1,000,000 tasks/s (references: for loop,
  ThreadPoolExecutor.map)
* thread, 2,000 tasks sleeping 1 ms, 50 workers: >= 0.9 x ThreadPoolExecutor(50).map
* async, 2,000 tasks awaiting asyncio.sleep(0.001), 50 workers: >= 0.9 x
  asyncio.gather bounded by Semaphore(50)
* process, 2,000 CPU-bound tasks of ~0.25 ms, 2 workers: >= 0.9 x
  ProcessPoolExecutor(2).map(chunksize=N//8), and faster than a plain loop

Pool creation is inside the timing of both sides. ``--quick`` uses N = 1,000 for
the CPU-bound case (its ratio then weighs process start-up more).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

_LOG_DIR = tempfile.mkdtemp(prefix="cf-bench-logs-")
os.environ["CELESTIALFLOW_LOG_DIR"] = _LOG_DIR

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loguru import logger  # noqa: E402

logger.remove()

from celestialflow import TaskManager  # noqa: E402

CPU_TASK_SECONDS = 0.25e-3
LOOPS = 1000  # set by calibrate(); worker processes are forked after it


# -- task functions (module level: picklable) ------------------------------------
def ident(x):
    return x


def sleep_1ms(x):
    time.sleep(0.001)
    return x


async def asleep_1ms(x):
    await asyncio.sleep(0.001)
    return x


def burn(x):
    s = x
    for i in range(LOOPS):
        s = (s * 31 + i) % 1000003
    return s


def calibrate() -> int:
    """Set LOOPS so that one burn() call takes about CPU_TASK_SECONDS."""
    global LOOPS
    LOOPS = 1000
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for x in range(50):
            burn(x)
        best = min(best, (time.perf_counter() - t0) / 50)
    LOOPS = max(1, round(1000 * CPU_TASK_SECONDS / best))
    return LOOPS


# -- measuring ----------------------------------------------------------------------
def best_times(funcs, repeat: int) -> list[float]:
    """Best of ``repeat`` timings of each function, run interleaved (same noise for all)."""
    best = [float("inf")] * len(funcs)
    for _ in range(repeat):
        for i, func in enumerate(funcs):
            t0 = time.perf_counter()
            func()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


ROWS: list[tuple] = []
NOTES: list[str] = []


def record(case, n, ours, ref_label, ref, target_label=None, passed=None):
    ROWS.append((case, n, ours, ref_label, ref, target_label or "-", passed))


def print_table() -> None:
    head = (
        f"{'case':<34} {'N':>9} {'ours s':>9} {'reference':<28} {'ref s':>9} "
        f"{'inputs/s':>11} {'ratio':>7}  {'target':<24} result"
    )
    print(head)
    print("-" * len(head))
    for case, n, ours, ref_label, ref, target, passed in ROWS:
        verdict = "-" if passed is None else ("PASS" if passed else "MISS")
        print(
            f"{case:<34} {n:>9,} {ours:>9.4f} {ref_label:<28} {ref:>9.4f} "
            f"{n / ours:>11,.0f} {ref / ours:>7.2f}  {target:<24} {verdict}"
        )


# -- cases --------------------------------------------------------------------------
def case_serial(n: int, repeat: int) -> None:
    xs = list(range(n))

    def ours():
        TaskManager(ident, "serial").start(xs)

    def loop():
        out = []
        for x in xs:
            out.append(ident(x))

    def tpe():
        with ThreadPoolExecutor(50) as ex:
            list(ex.map(ident, xs))

    t, t_loop, t_tpe = best_times([ours, loop, tpe], repeat)
    record("serial trivial", n, t, "for loop", t_loop, ">= 1,000,000 tasks/s", n / t >= 1e6)
    record("serial trivial", n, t, "ThreadPoolExecutor(50).map", t_tpe)


def case_thread(n: int, repeat: int) -> None:
    xs = list(range(n))

    def ours():
        TaskManager(sleep_1ms, "thread", worker_limit=50).start(xs)

    def tpe():
        with ThreadPoolExecutor(50) as ex:
            list(ex.map(sleep_1ms, xs))

    t, t_ref = best_times([ours, tpe], repeat)
    record("thread sleep 1 ms, 50 workers", n, t, "ThreadPoolExecutor(50).map", t_ref,
           ">= 0.9 x reference", t_ref / t >= 0.9)


def case_async(n: int, repeat: int) -> None:
    xs = list(range(n))

    def ours():
        tm = TaskManager(asleep_1ms, "async", worker_limit=50)
        asyncio.run(tm.start_async(xs))

    async def gather_bounded():
        sem = asyncio.Semaphore(50)

        async def one(x):
            async with sem:
                return await asleep_1ms(x)

        return await asyncio.gather(*(one(x) for x in xs))

    def ref():
        asyncio.run(gather_bounded())

    t, t_ref = best_times([ours, ref], repeat)
    record("async sleep 1 ms, 50 workers", n, t, "gather + Semaphore(50)", t_ref,
           ">= 0.9 x reference", t_ref / t >= 0.9)


def case_process(n: int, repeat: int) -> None:
    xs = list(range(n))

    def ours():
        TaskManager(burn, "process", worker_limit=2).start(xs)

    def ppe():
        with ProcessPoolExecutor(2) as ex:
            list(ex.map(burn, xs, chunksize=max(1, n // (2 * 4))))

    def loop():
        out = []
        for x in xs:
            out.append(burn(x))

    t, t_ppe, t_loop = best_times([ours, ppe, loop], repeat)
    NOTES.append(f"process case: the machine gave ProcessPoolExecutor(2).map a speed-up of "
                 f"{t_loop / t_ppe:.2f} x over the plain loop (2.0 = two free cores)")
    case = "process CPU ~0.25 ms, 2 workers"
    record(case, n, t, "ProcessPoolExecutor(2).map", t_ppe, ">= 0.9 x reference", t_ppe / t >= 0.9)
    record(case, n, t, "for loop (serial)", t_loop, "> 1.0 x reference", t_loop / t > 1.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller N for the CPU-bound case")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    n_cpu = 1000 if args.quick else 2000

    t_start = time.perf_counter()
    loops = calibrate()
    print(f"celestialflow TaskManager benchmark - {os.cpu_count()} cores, python "
          f"{sys.version.split()[0]}, best of {args.repeat}; burn() = {loops} loop steps "
          f"(~{CPU_TASK_SECONDS * 1e3:.2f} ms)")
    try:
        case_serial(20_000, args.repeat)
        case_thread(2000, args.repeat)
        case_async(2000, args.repeat)
        case_process(n_cpu, args.repeat)
    finally:
        shutil.rmtree(_LOG_DIR, ignore_errors=True)
    print()
    print_table()
    print("\nratio = reference time / our time")
    for note in NOTES:
        print(note)
    print(f"total run time {time.perf_counter() - t_start:.1f} s")
    return 0 if all(p is not False for *_, p in ROWS) else 1


if __name__ == "__main__":
    raise SystemExit(main())
