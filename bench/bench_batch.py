"""BatchProcessor over many runs: parallel speed-up and flat memory, in one run.

    python bench/bench_batch.py [--runs 8] [--n-waveforms 40000] [--quick] [--against TREE --repeat 5]

Generates ``--runs`` VX2730 CSV runs (``--n-waveforms`` records of 800 samples
each, split over 2 channels) in a temporary folder, then, each in a fresh
child process so that memory figures are its own:

* ``process_runs(runs, "peaks", max_workers=1)`` (the reference) and
  ``max_workers=2, executor_type="process"`` (and ``"thread"``) on an empty
  cache each time; the speed-up is reference time / our time. Target: >= 1.7 x
  for 2 processes.
* peak RSS (VmHWM) of the batch process for the whole batch against a batch of
  one run; target: at most 1.3 x. For process workers the largest worker's peak
  (RUSAGE_CHILDREN) is printed too.
* RSS after each run of a plain loop of ``get_data(run, "peaks")`` with one
  Context (``release`` after each run); target: RSS after the last run within
  10 % of RSS after run 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20

CHILD = r"""
import json, os, resource, sys, time
from loguru import logger
logger.remove()
from waveform_analysis import BatchProcessor, Context, standard_plugins

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    return 0

data, cache, mode, workers, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]
ctx = Context(storage_dir=cache, config={"data_root": data})
ctx.register(standard_plugins())
out = {}
if mode == "loop":
    rss = []
    for run in runs:
        ctx.get_data(run, "peaks")
        ctx.release(run)
        rss.append(status("VmRSS:"))
    out["rss"] = rss
else:
    t0 = time.perf_counter()
    res = BatchProcessor(ctx).process_runs(runs, "peaks", max_workers=workers, executor_type=mode,
                                           show_progress=False)
    out["seconds"] = time.perf_counter() - t0
    out["ok"] = sum(m["status"] == "success" for m in res["meta"].values())
    out["children_maxrss"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
out["hwm"] = status("VmHWM:")
print(json.dumps(out))
"""


def child(data: Path, cache: Path, mode: str, workers: int, runs: list[str], tree: Path = REPO) -> dict:
    """One case in a fresh process that imports the code of ``tree`` (a checkout or an export)."""
    shutil.rmtree(cache, ignore_errors=True)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(data), str(cache), mode, str(workers), *runs],
        capture_output=True, text=True, cwd=tree, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


CASES = [("1 worker", "thread", 1), ("2 processes", "process", 2), ("2 threads", "thread", 2)]


def compare(other: Path, data: Path, cache: Path, runs: list[str], repeat: int) -> int:
    """Each case here and in ``other``, alternated (who goes first too), ``repeat`` times."""
    child(data, cache, "thread", 1, ["warm"], other)
    trees = {"other": other, "this": REPO}
    times: dict[tuple[str, str], list[float]] = {}
    loads = []
    for rep in range(repeat):
        loads.append(os.getloadavg()[0])
        for label, mode, workers in CASES:
            for name in (list(trees) if rep % 2 == 0 else list(trees)[::-1]):
                out = child(data, cache, mode, workers, runs, trees[name])
                assert out["ok"] == len(runs), out
                times.setdefault((name, label), []).append(out["seconds"])
    print(f"\n{other} against {REPO}, {repeat} repeats, load average {min(loads):.1f}-{max(loads):.1f}")
    print(f"{'case':<14}{'other s (min-max)':>26}{'this s (min-max)':>26}{'this/other':>12}")
    for label, _, _ in CASES:
        o, t = times[("other", label)], times[("this", label)]
        mo, mt = statistics.median(o), statistics.median(t)
        print(f"{label:<14}{mo:>10.2f} ({min(o):6.2f}-{max(o):6.2f}){mt:>10.2f} ({min(t):6.2f}-{max(t):6.2f})"
              f"{mt / mo:>11.2f}x")
    return 0


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--n-waveforms", type=int, default=40_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="4 runs of 8,000 waveforms, one repetition")
    parser.add_argument("--against", type=Path, help="another tree (e.g. `git archive` of an older commit): "
                        "each case runs there and here alternately, --repeat times; medians and spreads")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.n_waveforms, args.repeat = 4, 8_000, 1
    sys.path.insert(0, str(REPO))
    from waveform_analysis.synthetic import generate_run

    tmp = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        data, cache = tmp / "DAQ", tmp / "cache"
        runs = [f"run_{i:03d}" for i in range(1, args.runs + 1)]
        t0 = time.perf_counter()
        generate_run(data, "warm", n_waveforms=200, n_samples=800)
        for i, run in enumerate(runs):
            generate_run(data, run, n_waveforms=args.n_waveforms // 2, n_samples=800, seed=i)
        csv = sum(f.stat().st_size for r in runs for f in (data / r / "RAW").iterdir())
        print(f"{len(runs)} runs x {args.n_waveforms:,} waveforms x 800 samples: {csv / 1e6:.0f} MB of CSV "
              f"(generated in {time.perf_counter() - t0:.0f} s); {os.cpu_count()} cores")
        child(data, cache, "thread", 1, ["warm"])  # numba caches compiled
        if args.against is not None:
            return compare(args.against.resolve(), data, cache, runs, args.repeat)

        best: dict[str, float] = {}
        peak: dict[str, dict] = {}
        for _ in range(args.repeat):  # interleaved, so each sees the same noise
            for label, mode, workers in CASES:
                out = child(data, cache, mode, workers, runs)
                assert out["ok"] == len(runs), out
                if out["seconds"] < best.get(label, float("inf")):
                    best[label], peak[label] = out["seconds"], out
        ref = best["1 worker"]
        print(f"\n{'case':<14}{'seconds':>9}{'MB/s':>8}{'speed-up':>10}  target")
        for label, t in best.items():
            target = "-" if label != "2 processes" else f">= 1.7 x  {verdict(ref / t >= 1.7)}"
            print(f"{label:<14}{t:9.2f}{csv / t / 1e6:8.0f}{ref / t:9.2f}x  {target}")

        one = child(data, cache, "thread", 1, runs[:1])
        whole = peak["1 worker"]
        ratio = whole["hwm"] / one["hwm"]
        print(f"\npeak RSS, 1 worker: batch of {len(runs)} {whole['hwm'] / MIB:.0f} MiB, batch of 1 "
              f"{one['hwm'] / MIB:.0f} MiB: {ratio:.2f} x  (target <= 1.3 x)  {verdict(ratio <= 1.3)}")
        p2 = peak["2 processes"]
        print(f"peak RSS, 2 processes: main {p2['hwm'] / MIB:.0f} MiB, largest worker "
              f"{p2['children_maxrss'] / MIB:.0f} MiB")

        loop = child(data, cache, "loop", 1, runs)
        rss = loop["rss"]
        drift = rss[-1] / rss[1] - 1
        print("RSS after each run, one Context: " + " ".join(f"{r / MIB:.0f}" for r in rss) + " MiB")
        print(f"run {len(rss)} vs run 2: {drift:+.1%}  (target within 10 %)  {verdict(abs(drift) <= 0.10)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
