"""Soak: a long batch and a long streaming graph keep memory, resources and speed flat.

    python bench/soak.py [--runs 200] [--items 10000000] [--quick] [--only batch|graph]

Not run in CI (the full version takes about a minute on 2 cores). Each part runs
in a fresh child process, so its figures are its own:

* ``process_runs(runs, "peaks", max_workers=2)`` over ``--runs`` run ids (10
  generated runs of 2 x 3,000 waveforms; the other ids link to them),
  once with ``executor_type="thread"`` and once with ``"process"`` (empty cache
  each time), after a 2-run warm-up batch in the same process;
* a 3-stage streaming TaskChain of ``--items`` integers (x+1 -> x*2 -> a last
  stage that sleeps 1 ms every 10,000 items), fed from a generator, results not
  collected, duplicate check off (a dedup set holds every task seen, by design).

For each: RSS after the first tenth of the work and at the end (RSS of the batch
process plus its worker processes; target: end within 10 % of the first tenth),
threads, child processes and open file descriptors before and after (target: no
more after than before), and throughput of the first and the last tenth
(target: last within 10 % of the first). ``--quick``: 40 runs, 1,000,000 items.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20
DISTINCT = 10  # generated runs; the rest of the run ids point to them (same data, their own cache)
WAVEFORMS = 3000  # per channel, 2 channels of 400 samples: about 0.1 s of work per run


# -- measurements (also used inside the child) ------------------------------------------------
def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    """Every process below ``pid``."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def tree_rss() -> int:
    me = os.getpid()
    return rss_bytes(me) + sum(rss_bytes(c) for c in children(me))


def resources() -> dict[str, int]:
    me = os.getpid()
    return {
        "threads": len(os.listdir(f"/proc/{me}/task")),
        "children": len(children(me)),
        "fds": len(os.listdir(f"/proc/{me}/fd")),
    }


class Marks:
    """Progress marks: wall and CPU time at the first completion and at each tenth of the work.

    The first tenth is timed from the first completion (pools and pipelines fill
    before it) to the completion of a tenth of the work; the last from 90 % to
    the last completion. RSS after the first tenth, and at the last completion
    (while worker processes still exist). CPU time is this process's, all its
    threads: a measure of the work done here that other users of the machine
    disturb less than wall time."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.t0 = (time.perf_counter(), time.process_time(), 0)
        self.start: tuple[float, float, int] | None = None
        self.bounds: list[tuple[float, float, int]] = []  # (wall, cpu, done) as each tenth is passed
        self.rss_first = self.rss_last = 0

    def at(self, done: int) -> None:
        if done < 1:
            return
        mark = (time.perf_counter(), time.process_time(), done)
        if self.start is None:
            self.start = mark
        while len(self.bounds) < 10 and done >= self.total * (len(self.bounds) + 1) / 10:
            self.bounds.append(mark)
            if len(self.bounds) == 1:
                self.rss_first = tree_rss()
        if done >= self.total:
            self.rss_last = tree_rss()

    def result(self) -> dict[str, Any]:
        assert self.start is not None and len(self.bounds) == 10, "progress marks were not reached"
        start = self.start if self.start[2] < self.bounds[0][2] else self.t0  # first tenth at the first mark
        points = [start, *self.bounds]
        walls = [(b[2] - a[2]) / max(b[0] - a[0], 1e-9) for a, b in zip(points, points[1:])]
        cpus = [(b[2] - a[2]) / max(b[1] - a[1], 1e-9) for a, b in zip(points, points[1:])]
        return {
            "seconds": self.bounds[-1][0] - start[0],
            "rss_first_mib": self.rss_first / MIB,
            "rss_end_mib": self.rss_last / MIB,
            "rate_first": walls[0],
            "rate_last": walls[-1],
            "cpu_first": cpus[0],
            "cpu_last": cpus[-1],
            "tenths": walls,
        }


# -- the parts (run in a child process) ---------------------------------------------------------
def part_batch(executor: str, runs: int, work: Path) -> dict:
    from loguru import logger

    logger.remove()
    from waveform_analysis import BatchProcessor, Context, standard_plugins
    from waveform_analysis.synthetic import generate_runs

    run_ids = [f"run{i:04d}" for i in range(runs)]
    daq = work / "daq"
    if not daq.exists():  # DISTINCT generated runs; the other run ids are links to them
        generate_runs(daq, run_ids[:DISTINCT], n_waveforms=WAVEFORMS, n_samples=400)
        for i, run in enumerate(run_ids[DISTINCT:]):
            (daq / run).symlink_to(daq / run_ids[i % DISTINCT], target_is_directory=True)
    ctx = Context(storage_dir=str(work / f"cache-{executor}"), config={"data_root": str(daq)})
    ctx.register(standard_plugins())
    proc = BatchProcessor(ctx)
    warm = Context(storage_dir=str(work / f"warm-{executor}"), config={"data_root": str(daq)})
    warm.register(standard_plugins())
    BatchProcessor(warm).process_runs(run_ids[:2], "peaks", max_workers=2, executor_type=executor, show_progress=False)
    before = resources()
    marks = Marks(runs)
    out = proc.process_runs(
        run_ids, "peaks", max_workers=2, executor_type=executor, show_progress=False,
        progress_tracker=lambda done, total: marks.at(done), progress_update_interval=0.0, poll_interval=0.02,
    )  # fmt: skip
    failed = [r for r, m in out["meta"].items() if m["status"] != "success"]
    res = marks.result()
    # each result is a memory map, and each map holds a file descriptor: drop them first
    held = resources()["fds"] - before["fds"]
    del out
    proc.last_graph = None
    gc.collect()
    time.sleep(0.5)  # pool threads and processes are joined by then; give the kernel a moment
    return {"part": f"batch {executor}", "n": runs, "failed": len(failed), **res, "before": before,
            "in_process": executor == "thread",
            "after": resources(), "fds_held_by_results": held}  # fmt: skip


def part_graph(items: int) -> dict:
    from loguru import logger

    logger.remove()
    from celestialflow import TaskChain, TaskManager

    before = resources()
    marks = Marks(items)
    step = max(1, items // 1000)
    state = {"n": 0}

    def inc(x: int) -> int:
        return x + 1

    def double(x: int) -> int:
        return x * 2

    def slow_last(x: int) -> int:
        n = state["n"] = state["n"] + 1
        if n % 10_000 == 0:
            time.sleep(0.001)
        if n % step == 0:
            marks.at(n)
        return x - 3

    def make(f):
        return TaskManager(f, "serial", log_to_file=False, enable_duplicate_check=False)

    chain = TaskChain([make(inc), make(double), make(slow_last)], record_failures=False, collect_results=False)
    chain.start(iter(range(items)))
    res = marks.result()
    assert state["n"] == items, f"{state['n']} of {items} items reached the last stage"
    del chain
    gc.collect()
    time.sleep(0.5)
    return {"part": "graph", "n": items, "failed": 0, **res, "before": before, "after": resources(), "in_process": True}


# -- driver ---------------------------------------------------------------------------------------
def run_part(args: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--part", *args], capture_output=True, text=True, env=env, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"part {args} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(rows: list[dict]) -> bool:
    ok = True
    print(f"{'part':<15} {'N':>10} {'s':>6} {'RSS 1/10':>9} {'RSS end':>8} {'ratio':>6}  {'rate 1/10':>10} "
          f"{'rate end':>10} {'ratio':>6} {'cpu ratio':>9}  threads  children  fds    result")  # fmt: skip
    for r in rows:
        rss_ratio = r["rss_end_mib"] / r["rss_first_mib"]
        rate_ratio = r["rate_last"] / r["rate_first"]
        cpu_ratio = r["cpu_last"] / r["cpu_first"] if r["in_process"] else None
        b, a = r["before"], r["after"]
        leaks = {k: a[k] - b[k] for k in b if a[k] > b[k]}
        steady = rate_ratio >= 0.90 or (cpu_ratio is not None and cpu_ratio >= 0.90)
        good = abs(rss_ratio - 1) <= 0.10 and steady and not leaks and not r["failed"]
        ok &= good
        cpu = f"{cpu_ratio:>9.3f}" if cpu_ratio is not None else f"{'-':>9}"
        print(
            f"{r['part']:<15} {r['n']:>10,} {r['seconds']:>6.1f} {r['rss_first_mib']:>8.1f}M {r['rss_end_mib']:>7.1f}M "
            f"{rss_ratio:>6.3f}  {r['rate_first']:>10,.0f} {r['rate_last']:>10,.0f} {rate_ratio:>6.3f} {cpu}  "
            f"{b['threads']:>3}->{a['threads']:<3} {b['children']:>3}->{a['children']:<4} "
            f"{b['fds']:>3}->{a['fds']:<3} {'ok' if good else 'FAIL'}"
            + (f" (failed runs: {r['failed']})" if r["failed"] else "")
            + (f" (more after: {leaks})" if leaks else "")
        )
    print("targets: RSS at the end within 10 % of RSS after the first tenth; the last tenth's rate >= 0.9 x the")
    print("         first's, in wall time or, where all the work runs in the measured process, in CPU time;")
    print("         no more threads, child processes or file descriptors after than before; every run succeeds")
    for r in rows:
        print(f"{r['part']}: per tenth, items/s: " + " ".join(f"{x:,.0f}" for x in r["tenths"]))
        if r.get("fds_held_by_results"):
            print(f"{r['part']}: the returned results held {r['fds_held_by_results']} file descriptors "
                  "(one per memory-mapped result) until they were dropped")  # fmt: skip
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None, help="generated runs per batch (default 200, quick 40)")
    ap.add_argument("--items", type=int, default=None, help="items through the graph (default 10,000,000, quick 1,000,000)")
    ap.add_argument("--quick", action="store_true", help="40 runs and 1,000,000 items")
    ap.add_argument("--only", choices=("batch", "graph"), default=None, help="run one part only")
    ap.add_argument("--part", nargs="+", help=argparse.SUPPRESS)  # internal: one part in this process
    a = ap.parse_args()
    if a.part:
        kind = a.part[0]
        res = part_graph(int(a.part[1])) if kind == "graph" else part_batch(kind, int(a.part[1]), Path(a.part[2]))
        print(json.dumps(res))
        return
    runs = a.runs or (40 if a.quick else 200)
    items = a.items or (1_000_000 if a.quick else 10_000_000)
    if runs < 10 or items < 10_000:
        ap.error("--runs must be >= 10 and --items >= 10,000 (the figures compare tenths)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    print(f"soak - {os.cpu_count()} cores, python {sys.version.split()[0]}, {runs} runs, {items:,} items")
    rows = []
    with tempfile.TemporaryDirectory(prefix="wa-soak-") as tmp:
        env["CELESTIALFLOW_LOG_DIR"] = str(Path(tmp) / "logs")
        if a.only in (None, "batch"):
            for executor in ("thread", "process"):
                rows.append(run_part([executor, str(runs), tmp], env))
        if a.only in (None, "graph"):
            rows.append(run_part(["graph", str(items)], env))
    sys.exit(0 if report(rows) else 1)


if __name__ == "__main__":
    main()
