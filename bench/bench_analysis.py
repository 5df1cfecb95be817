"""The analysis layer: coincidence throughput, memory of many runs as one, ROOT export speed.

    python bench/bench_analysis.py [--seconds 20] [--runs 100] [--rows 60000] [--repeat 5]
                                   [--batch-runs 6]

Every timing is the median of ``--repeat`` interleaved repetitions with its spread
(min-max), beside a reference timed in the same repetitions; the load average is
printed with each case (the machine is shared).

* Coincidences: two channels triggering at 50 kHz each for ``--seconds`` of run (a
  start detector and a stop detector 37.5 ns later for a third of the particles,
  the rest uncorrelated), ``find_coincidences`` with a 100 ns window, reference
  ``"0:0"`` and ``"all"``: triggers per second; reference: the stable sort of the
  time stamps alone (the floor of a time-sorted merge).
* Many runs: ``--runs`` cached runs of ``--rows`` peaks each (a plugin that draws
  them from a seeded generator; the data are cached by the Context as any other),
  then in a new process ``ctx.get_array(runs, "bench_peaks", selection=...)`` keeping
  about 1 % of the rows; its peak RSS growth (``VmHWM`` after minus before) against
  the size of one run's data.
* Uncached runs: ``--batch-runs`` generated runs, ``get_array`` on an empty cache
  with the Context's default runner (one batch on all cores) against
  ``runner=False`` (each run computed as it is read).
* Export: a generated VX2730 run (2 channels x 10,000 records x 800 samples) to
  ROOT, LZ4 (default), zlib and uncompressed: MB/s of array data (the per-channel
  spectra, counted in a second pass, included); reference: ``np.save`` of the same
  array (a plain write).

Targets (issue 19): >= 5 M triggers/s; peak RSS growth < 2 x one run's data;
ROOT export >= 100 MB/s of array data.
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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from waveform_analysis import Context, Plugin, standard_plugins  # noqa: E402
from waveform_analysis.analysis.export import export  # noqa: E402
from waveform_analysis.dtypes import PEAKS_DTYPE  # noqa: E402
from waveform_analysis.processing.coincidences import find_coincidences  # noqa: E402
from waveform_analysis.synthetic import generate_run  # noqa: E402

MIB = 1 << 20
SELECTION = "area > 990 & channel == 1"


class BenchPeaks(Plugin):
    """``rows`` peaks per run drawn from a generator seeded by the run's name."""

    provides = "bench_peaks"
    version = "1"
    rows = 60_000

    def compute(self, context, run_id: str) -> np.ndarray:
        rng = np.random.default_rng(sum(run_id.encode()))
        out = np.zeros(self.rows, PEAKS_DTYPE)
        out["time"] = np.sort(rng.integers(0, 10**10, self.rows))
        out["channel"] = rng.integers(0, 2, self.rows)
        out["area"] = rng.uniform(0, 1000, self.rows)
        out["height"] = out["area"] / 5
        return out


def load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def interleaved(funcs: dict, repeat: int) -> dict[str, list[float]]:
    """Seconds of each function, ``repeat`` rounds, every round running each once in turn."""
    out: dict[str, list[float]] = {k: [] for k in funcs}
    for _ in range(repeat):
        for k, f in funcs.items():
            t0 = time.perf_counter()
            f()
            out[k].append(time.perf_counter() - t0)
    return out


def med(ts: list[float]) -> str:
    return f"{statistics.median(ts):.3f} s ({min(ts):.3f}-{max(ts):.3f})"


def triggers(seconds: float, rate_hz: float = 50e3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * rate_hz)
    start = np.cumsum(rng.exponential(1e12 / rate_hz, n).astype(np.int64))
    hit = rng.random(n) < 1 / 3
    stop = np.sort(np.concatenate([start[hit] + 37_500 + rng.normal(0, 500, hit.sum()).astype(np.int64),
                                   rng.integers(0, start[-1], n - hit.sum())]))
    dtype = [("time", np.int64), ("timestamp", np.int64), ("board", np.int16), ("channel", np.int16),
             ("energy", np.float32), ("energy_calibrated", np.float64)]
    out = np.zeros(2 * n, dtype)
    out["timestamp"] = np.concatenate([start, stop])
    out["time"] = out["timestamp"] // 1000
    out["channel"][n:] = 1
    out["energy"] = rng.uniform(0, 4000, 2 * n)
    out["energy_calibrated"] = np.nan
    return out


def bench_coincidences(seconds: float, repeat: int) -> dict[str, float]:
    tr = triggers(seconds)
    find_coincidences(tr[:1000], 100.0)  # kernels compiled (numba's cache), not timed
    n_pairs = {r: len(find_coincidences(tr, 100.0, r)) for r in ("0:0", "all")}
    print(f"coincidences: {len(tr):,} triggers, {load()}")
    times = interleaved({"0:0": lambda: find_coincidences(tr, 100.0, "0:0"),
                         "all": lambda: find_coincidences(tr, 100.0, "all"),
                         "sort": lambda: np.argsort(tr["timestamp"], kind="stable")}, repeat)
    out = {}
    for reference in ("0:0", "all"):
        t = statistics.median(times[reference])
        out[reference] = len(tr) / t
        print(f"  reference {reference!r:6}: {n_pairs[reference]:,} pairs, {med(times[reference])}, "
              f"{len(tr) / t / 1e6:.1f} M triggers/s (median; {len(tr) / max(times[reference]) / 1e6:.1f}-"
              f"{len(tr) / min(times[reference]) / 1e6:.1f}), {t / statistics.median(times['sort']):.1f} x the sort")
    print(f"  reference: stable sort of the time stamps {med(times['sort'])}; {load()}")
    return out


def bench_batch_runner(work: Path, n_runs: int, repeat: int) -> dict[str, float]:
    runs = [f"run_{i:03d}" for i in range(n_runs)]
    for i, r in enumerate(runs):
        generate_run(work / "DAQ", r, n_channels=2, n_waveforms=3000, n_samples=400, seed=i)
    caches = iter(range(10**6))

    def once(runner) -> None:
        ctx = Context(storage_dir=work / f"cache{next(caches)}", config={"data_root": str(work / "DAQ")},
                      runner=runner)
        ctx.register(standard_plugins())
        ctx.get_array(runs, "peaks", selection=SELECTION)

    print(f"uncached runs: {n_runs} runs of 2 x 3,000 records x 400 samples to peaks, {load()}")
    times = interleaved({"batch": lambda: once(None), "one by one": lambda: once(False)}, repeat)
    ratio = statistics.median(times["one by one"]) / statistics.median(times["batch"])
    print(f"  get_array, default runner (one batch): {med(times['batch'])}; runner=False: "
          f"{med(times['one by one'])}; {ratio:.2f} x; {load()}")
    return {"ratio": ratio}


CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
from bench_analysis import BenchPeaks, SELECTION
from waveform_analysis import Context
BenchPeaks.rows = int(sys.argv[4])
ctx = Context(storage_dir=sys.argv[2], config={"data_root": sys.argv[3]}, readonly=True)
ctx.register(BenchPeaks)
runs = [f"run_{i:04d}" for i in range(int(sys.argv[5]))]
ctx.get_array(runs[:2], "bench_peaks", selection=SELECTION)  # code paths warm, not measured
base = hwm()
arr = ctx.get_array(runs, "bench_peaks", selection=SELECTION)
print(json.dumps({"base": base, "hwm": hwm(), "rows": len(arr), "bytes": int(arr.nbytes)}))
"""


def bench_many_runs(work: Path, n_runs: int, rows: int) -> dict[str, float]:
    BenchPeaks.rows = rows
    ctx = Context(storage_dir=work / "cache", config={"data_root": str(work / "DAQ")})
    ctx.register(BenchPeaks)
    (work / "DAQ").mkdir(parents=True, exist_ok=True)
    runs = [f"run_{i:04d}" for i in range(n_runs)]
    t0 = time.perf_counter()
    for r in runs:
        ctx.get_data(r, "bench_peaks")
        ctx.release(r)
    one_run = rows * PEAKS_DTYPE.itemsize
    print(f"{n_runs} runs of {rows:,} peaks cached ({one_run / MIB:.1f} MiB each) in {time.perf_counter() - t0:.0f} s")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    out = subprocess.run([sys.executable, "-c", CHILD, str(REPO / "bench"), str(work / "cache"), str(work / "DAQ"),
                          str(rows), str(n_runs)], env=env, check=True, capture_output=True, text=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    growth = res["hwm"] - res["base"]
    print(f"get_array over {n_runs} runs, selection {SELECTION!r}: {res['rows']:,} rows kept "
          f"({res['bytes'] / MIB:.1f} MiB), peak RSS growth {growth / MIB:.1f} MiB = "
          f"{growth / one_run:.2f} x one run's data")
    return {"ratio": growth / one_run}


def bench_export(work: Path, repeat: int) -> dict[str, float]:
    generate_run(work / "DAQ", "run_001", n_channels=2, n_waveforms=10_000, n_samples=800, seed=1)
    ctx = Context(storage_dir=work / "cache", config={"data_root": str(work / "DAQ")})
    ctx.register(standard_plugins())
    data = np.array(ctx.get_data("run_001", "st_waveforms"))
    nbytes = data.nbytes
    ctx.release("run_001")
    print(f"export: st_waveforms, {nbytes / 1e6:.0f} MB of arrays, {load()}")
    funcs = {str(c): (lambda c=c: export(ctx, "run_001", "st_waveforms", work / "out.root", compression=c))
             for c in ("lz4", "zlib", None)}
    sizes = {}
    for name, f in funcs.items():
        sizes[name] = f().stat().st_size
    funcs["np.save"] = lambda: np.save(work / "plain.npy", data)
    times = interleaved(funcs, repeat)
    out = {}
    for name, ts in times.items():
        t = statistics.median(ts)
        out[name] = nbytes / t / 1e6
        print(f"  {name:8}: {med(ts)} = {nbytes / t / 1e6:.0f} MB/s (median; {nbytes / max(ts) / 1e6:.0f}-"
              f"{nbytes / min(ts) / 1e6:.0f}), {t / statistics.median(times['np.save']):.1f} x np.save"
              + ("" if name == "np.save" else f", file {sizes[name] / 1e6:.0f} MB"))
    print(f"  {load()}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="run length of the coincidence case")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--rows", type=int, default=60_000, help="peaks per run of the many-runs case")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--batch-runs", type=int, default=6, help="runs of the uncached get_array case")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_analysis_"))
    try:
        rate = bench_coincidences(args.seconds, args.repeat)
        many = bench_many_runs(work / "many", args.runs, args.rows)
        batch = bench_batch_runner(work / "batch", args.batch_runs, args.repeat)
        speed = bench_export(work / "export", args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    checks = [
        ("coincidences, reference 0:0 [M/s]", rate["0:0"] / 1e6, ">= 5", rate["0:0"] >= 5e6),
        ("coincidences, all [M/s]", rate["all"] / 1e6, ">= 5", rate["all"] >= 5e6),
        ("get_array RSS growth / one run", many["ratio"], "< 2", many["ratio"] < 2),
        ("ROOT export, lz4 [MB/s]", speed["lz4"], ">= 100", speed["lz4"] >= 100),
        ("ROOT export, uncompressed [MB/s]", speed["None"], ">= 100", speed["None"] >= 100),
        ("uncached get_array, one by one / batch", batch["ratio"], "-", True),
    ]
    print()
    for label, value, target, ok in checks:
        print(f"{label:<36} {value:8.2f}   target {target:<7} {'ok' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
