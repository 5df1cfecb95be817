"""A run of any size in bounded memory: peak RSS and throughput of a small and an 8x larger run.

    python bench/bench_large.py [--n-waveforms 30000] [--factor 8] [--repeat 2] [--keep DIR]
                                [--before TREE] [--idle SECONDS] [--no-sync]

Generates a VX2730 CSV run of ``--n-waveforms`` records per channel (2
channels, 800 samples) and one ``--factor`` times larger (in 8 segments per
channel), then, each in a new process on an empty cache, runs
``get_data(run, "basic_features")`` (CSV -> st_waveforms -> peaks ->
basic_features) and reads the process's peak RSS (``VmHWM``). The large run
is also timed with the kernels on 1 thread and on 2 (the cases interleaved and rotated, each
taking each place in the order in turn)
(``WAVEFORM_ANALYSIS_THREADS``). The largest peak RSS seen.

Targets (issue 11): peak RSS of the large run <= 1.25 x the small run's and
< 800 MiB; MB/s of the large run >= 0.8 x the small run's; the large run on
2 threads >= 1.7 x its speed on 1 thread (issue 21; it was 1.6). Times are
medians of the processes (spread printed), with a per-phase breakdown of
the large run on 1 and 2 threads (:mod:`phases`): wall time and the
process's CPU time while the phase ran (all threads; CPU / wall is how many
cores it kept busy). ``--before TREE`` also runs the large run with the
package of another checkout (e.g. ``git archive`` of an earlier commit),
interleaved with this one's, for a before / after ratio in one run.

On a virtual machine whose host takes back the memory its guest frees, a
process that starts straight after another one runs on the memory that one
freed (fast to touch), and one that starts later on memory the host must hand
back (several times slower: ``bench/fresh_memory.py``). ``--idle SECONDS``
waits before each process, so that every one starts in the second state.

``--no-sync`` also runs the large run, interleaved, in processes whose
``os.fsync`` does nothing: what the disk's sync of the cache entries (the
2.3 GB run's ``st_waveforms`` is 800 MB) costs on 1 and on 2 threads, and the
2 / 1 ratio without it. A measurement, not something the package does: a
cache entry is committed only once its bytes are on the disk.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from waveform_analysis.synthetic import generate_run  # noqa: E402

MIB = 1 << 20

# argv: data_root storage_dir run_id [chunk_mb or -] [no-sync]
CHILD = """
import json, sys, time
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
from waveform_analysis import Context, standard_plugins
import phases
T, _, _ = phases.install()
data_root, storage, run = sys.argv[1:4]
config = {"data_root": data_root}
if len(sys.argv) > 4 and sys.argv[4] != "-":
    config["chunk_mb"] = float(sys.argv[4])
ctx = Context(storage_dir=storage, config=config)
ctx.register(*standard_plugins())
ctx.get_data("warm", "basic_features")  # kernels loaded (numba's cache), not timed
if len(sys.argv) > 5 and sys.argv[5] == "no-sync":  # --no-sync: what the disk's sync costs
    import os
    os.fsync = lambda fd: None
T.clear()
base = hwm()
t0, c0, m0 = time.perf_counter(), time.process_time(), time.thread_time()
bf = ctx.get_data(run, "basic_features")
t, cpu, main = time.perf_counter() - t0, time.process_time() - c0, time.thread_time() - m0
print(json.dumps({"t": t, "cpu": cpu, "main": main, "hwm": hwm(), "base": base, "n": len(bf), "phases": T}))
"""


def csv_bytes(run_dir: Path) -> int:
    return sum(p.stat().st_size for p in run_dir.rglob("*.CSV"))


def child(root: Path, run: str, threads: int, chunk_mb: float | None, tree: Path = REPO,
          sync: bool = True) -> dict:
    cache = Path(tempfile.mkdtemp(prefix="cache_", dir=root.parent))
    env = dict(os.environ, WAVEFORM_ANALYSIS_THREADS=str(threads))
    env["PYTHONPATH"] = os.pathsep.join(  # the phase timers are this tree's
        p for p in (str(tree), str(REPO / "bench"), env.get("PYTHONPATH")) if p)
    args = [sys.executable, "-c", CHILD, str(root), str(cache), run]
    if chunk_mb is not None or not sync:
        args.append("-" if chunk_mb is None else str(chunk_mb))
    if not sync:
        args.append("no-sync")
    try:
        out = subprocess.run(args, env=env, check=True, capture_output=True, text=True)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-waveforms", type=int, default=30000, help="records per channel, small run")
    ap.add_argument("--factor", type=int, default=8, help="size of the large run against the small")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--chunk-mb", type=float, default=None, help="config chunk_mb (default: 64)")
    ap.add_argument("--keep", type=Path, default=None, help="generate into (and reuse) this folder")
    ap.add_argument("--before", type=Path, default=None, help="also time the large run with this tree's package")
    ap.add_argument("--idle", type=float, default=0.0,
                    help="seconds to wait before each process (see bench/fresh_memory.py)")
    ap.add_argument("--no-sync", action="store_true",
                    help="also time the large run with os.fsync doing nothing (the disk's share)")
    args = ap.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_large_"))
    root = work / "DAQ"
    runs = {"small": (args.n_waveforms, 1), "large": (args.n_waveforms * args.factor, 8)}
    t0 = time.perf_counter()
    if not (root / "warm").exists():
        generate_run(root, "warm", n_waveforms=200, n_samples=800, seed=1)
    for name, (n, segments) in runs.items():
        if not (root / name).exists():
            generate_run(root, name, n_waveforms=n, n_samples=800, n_segments=segments, seed=2)
    print(f"generated in {time.perf_counter() - t0:.0f} s under {work}")
    size = {name: csv_bytes(root / name) for name in runs}

    res: dict[tuple[str, int], list[dict]] = {}
    cases = [("small", 2), ("large", 2), ("large", 1)]
    if args.before is not None:
        cases += [("large before", 2), ("large before", 1)]
    if args.no_sync:
        cases += [("large no-sync", 2), ("large no-sync", 1)]
    for i in range(args.repeat):  # interleaved, so machine noise hits every case alike
        # and rotated: a process's time depends on the one before it (the page cache's
        # writeback of that process's cache files), so each case takes each place in turn
        for name, threads in cases[i % len(cases):] + cases[: i % len(cases)]:
            tree = args.before.resolve() if name.endswith("before") else REPO
            time.sleep(args.idle)
            res.setdefault((name, threads), []).append(
                child(root, name.split()[0], threads, args.chunk_mb, tree, not name.endswith("no-sync")))

    def best(key):  # the median process (the name stays: every figure below uses it)
        return float(np.median([r["t"] for r in res[key]]))

    def spread(key):
        ts = [r["t"] for r in res[key]]
        return f"{min(ts):.2f}-{max(ts):.2f}"

    def peak(key):
        return max(r["hwm"] for r in res[key])

    rate = {k: size[k[0].split()[0]] / best(k) / 1e6 for k in res}
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nmedian of {args.repeat} processes each, interleaved; load average {load}")
    print(f"{'case':<26} {'CSV MB':>8} {'median s':>9} {'spread s':>11} {'MB/s':>8} {'peak RSS MiB':>13}"
          f" {'CPU s':>6} {'main':>5} {'ideal':>5}")  # fmt: skip
    for (name, threads), _ in res.items():
        key = (name, threads)
        cpu = float(np.median([r["cpu"] for r in res[key]]))
        main = float(np.median([r["main"] for r in res[key]]))
        ideal = main + (cpu - main) / threads
        print(f"{name + f', {threads} thread(s)':<26} {size[name.split()[0]] / 1e6:8.0f} {best(key):9.2f} "
              f"{spread(key):>11} {rate[key]:8.0f} {peak(key) / MIB:13.0f} {cpu:6.2f} {main:5.2f} {ideal:5.2f}")  # fmt: skip
    print("(CPU: all threads' CPU time; main: the calling thread's, the part that runs alone; ideal: the"
          " wall time on free cores, main + (CPU - main) / threads)")
    for name in ("large", "large before", "large no-sync"):
        if (name, 1) in res:
            ideal2 = [r["main"] + (r["cpu"] - r["main"]) / 2 for r in res[(name, 2)]]
            print(f"{name}: CPU on 1 thread / ideal wall on 2 free cores: "
                  f"{np.median([r['cpu'] for r in res[(name, 1)]]) / np.median(ideal2):.2f}")
    for name in ("large", "large before", "large no-sync"):
        if (name, 1) in res:
            per = [a["t"] / b["t"] for a, b in zip(res[(name, 1)], res[(name, 2)], strict=True)]
            print(f"{name}, 1 / 2 threads: median {best((name, 1)) / best((name, 2)):.2f}, "
                  f"per repetition {min(per):.2f}-{max(per):.2f}")
    if args.before is not None:
        for n in (1, 2):
            per = [b["t"] / a["t"] for a, b in zip(res[("large", n)], res[("large before", n)], strict=True)]
            print(f"large, {n} thread(s), before / now per repetition: median {np.median(per):.2f} "
                  f"({min(per):.2f}-{max(per):.2f})")
    print("\nlarge run by phase (median s; inclusive: the reader holds the end windows; CPU: all")
    print("threads' CPU time while the phase ran)")
    names = sorted({k for r in res[("large", 1)] + res[("large", 2)] for k in r["phases"]
                    if not k.startswith("cpu:")})  # fmt: skip

    def ph(key, k):
        return float(np.median([r["phases"].get(k, 0.0) for r in res[key]]))

    print(f"{'phase':<20} {'1 thread':>9} {'CPU':>6} {'2 threads':>9} {'CPU':>6} {'1 / 2':>6}")
    for k in names:
        one, two = ph(("large", 1), k), ph(("large", 2), k)
        print(f"{k:<20} {one:9.3f} {ph(('large', 1), 'cpu:' + k):6.3f} {two:9.3f} "
              f"{ph(('large', 2), 'cpu:' + k):6.3f} {one / two if two else 0.0:6.2f}")  # fmt: skip
    rss_ratio = peak(("large", 2)) / peak(("small", 2))
    per_byte = rate[("large", 2)] / rate[("small", 2)]
    scaling = best(("large", 1)) / best(("large", 2))
    checks = [
        ("peak RSS large / small", rss_ratio, "<= 1.25", rss_ratio <= 1.25),
        ("peak RSS large [MiB]", peak(("large", 2)) / MIB, "< 800", peak(("large", 2)) < 800 * MIB),
        ("MB/s large / small", per_byte, ">= 0.8", per_byte >= 0.8),
        ("large run, 2 threads / 1", scaling, ">= 1.7", scaling >= 1.7),
    ]
    print()
    for label, value, target, ok in checks:
        print(f"{label:<28} {value:8.2f}   target {target:<8} {'ok' if ok else 'MISSED'}")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
