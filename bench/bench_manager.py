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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import Table, best_times, burn, calibrate  # noqa: E402

TABLE = Table(case_width=34, ref_width=28, target_width=24)



# -- task functions (module level: picklable) ------------------------------------
def ident(x):
    return x


def sleep_1ms(x):
    time.sleep(0.001)
    return x


async def asleep_1ms(x):
    await asyncio.sleep(0.001)
    return x






# -- measuring ----------------------------------------------------------------------









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
    TABLE.record("serial trivial", n, t, "for loop", t_loop, ">= 1,000,000 tasks/s", n / t >= 1e6)
    TABLE.record("serial trivial", n, t, "ThreadPoolExecutor(50).map", t_tpe)


def case_thread(n: int, repeat: int) -> None:
    xs = list(range(n))

    def ours():
        TaskManager(sleep_1ms, "thread", worker_limit=50).start(xs)

    def tpe():
        with ThreadPoolExecutor(50) as ex:
            list(ex.map(sleep_1ms, xs))

    t, t_ref = best_times([ours, tpe], repeat)
    TABLE.record("thread sleep 1 ms, 50 workers", n, t, "ThreadPoolExecutor(50).map", t_ref,
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
    TABLE.record("async sleep 1 ms, 50 workers", n, t, "gather + Semaphore(50)", t_ref,
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
    TABLE.notes.append(f"process case: the machine gave ProcessPoolExecutor(2).map a speed-up of "
                 f"{t_loop / t_ppe:.2f} x over the plain loop (2.0 = two free cores)")
    case = "process CPU ~0.25 ms, 2 workers"
    TABLE.record(case, n, t, "ProcessPoolExecutor(2).map", t_ppe, ">= 0.9 x reference", t_ppe / t >= 0.9)
    TABLE.record(case, n, t, "for loop (serial)", t_loop, "> 1.0 x reference", t_loop / t > 1.0)


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
          f"(~{common.CPU_TASK_SECONDS * 1e3:.2f} ms)")
    try:
        case_serial(20_000, args.repeat)
        case_thread(2000, args.repeat)
        case_async(2000, args.repeat)
        case_process(n_cpu, args.repeat)
    finally:
        shutil.rmtree(_LOG_DIR, ignore_errors=True)
    print()
    TABLE.print()
    print("\nratio = reference time / our time")
    print(f"total run time {time.perf_counter() - t_start:.1f} s")
    return 0 if all(p is not False for *_, p in TABLE.rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
