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
* generator input within 1.2 x of list input: thread, 200 tasks sleeping 1 ms
  with 20 workers; process, 16 CPU tasks of ~25 ms with 2 workers
* process, 2,000 results of 1 MiB each: peak parent RSS <= 200 MiB (in a child
  process, so the figure is that run's alone)

Pool creation is inside the timing of both sides. ``--quick`` uses N = 1,000 for
the CPU-bound case (its ratio then weighs process start-up more).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from common import private_log_dir  # noqa: E402  (before celestialflow reads the log folder)

_LOG_DIR = private_log_dir()

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


def burn100(x):
    for _ in range(100):
        burn(x)
    return x


def one_mib(x):
    return bytes(1 << 20)


def case_generator(repeat: int) -> None:
    xs = list(range(200))

    def thread_list():
        TaskManager(sleep_1ms, "thread", worker_limit=20).start(xs)

    def thread_gen():
        TaskManager(sleep_1ms, "thread", worker_limit=20).start(x for x in xs)

    t_gen, t_list = best_times([thread_gen, thread_list], repeat)
    TABLE.record("thread 1 ms from a generator", 200, t_gen, "the same from a list", t_list,
                 "<= 1.2 x list time", t_gen <= 1.2 * t_list)
    ys = list(range(16))

    def proc_list():
        TaskManager(burn100, "process", worker_limit=2).start(ys)

    def proc_gen():
        TaskManager(burn100, "process", worker_limit=2).start(y for y in ys)

    t_gen, t_list = best_times([proc_gen, proc_list], repeat)
    TABLE.record("process CPU 25 ms from a generator", 16, t_gen, "the same from a list", t_list,
                 "<= 1.2 x list time", t_gen <= 1.2 * t_list)


def big_results_child() -> None:
    import json
    import resource

    t0 = time.perf_counter()
    TaskManager(one_mib, "process", worker_limit=2).start(range(2000))
    secs = time.perf_counter() - t0
    print(json.dumps({"maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "seconds": secs}))


def case_big_results() -> None:
    import json
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--child-big"], check=True, capture_output=True, text=True)
    d = json.loads(out.stdout.strip().splitlines()[-1])
    TABLE.notes.append(
        f"process, 2,000 results of 1 MiB: peak parent RSS {d['maxrss_mib']:.0f} MiB in "
        f"{d['seconds']:.2f} s (target <= 200 MiB): {'PASS' if d['maxrss_mib'] <= 200 else 'MISS'}"
    )
    TABLE.record("process 2,000 x 1 MiB results", 2000, d["seconds"], "(peak RSS in the notes)", d["seconds"],
                 "RSS <= 200 MiB", d["maxrss_mib"] <= 200)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller N for the CPU-bound case")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child-big", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_big:
        big_results_child()
        return 0
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
        case_generator(args.repeat)
        case_big_results()
    finally:
        shutil.rmtree(_LOG_DIR, ignore_errors=True)
    print()
    TABLE.print()
    print("\nratio = reference time / our time")
    print(f"total run time {time.perf_counter() - t_start:.1f} s")
    return 0 if all(p is not False for *_, p in TABLE.rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
