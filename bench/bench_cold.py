"""Cold ``get_data(run, "peaks")`` in a new process, by phase, beside ``np.fromfile`` of the same files.

    python bench/bench_cold.py [--n-waveforms 20000] [--n-samples 800] [--repeat 5] [--keep DIR]
                               [--entry-points]

Writes a CoMPASS CSV run (``vx2730`` layout, 2 channels; the defaults give
about 193 MB), then starts ``--repeat`` new interpreters. Each one times, on
an empty cache: the imports (``waveform_analysis`` and its ``Context``),
``get_data(run, "peaks")`` (st_waveforms and peaks, cache writes included)
(numba is imported first and its import counted with the imports: the
chain imports it on its first kernel) and, in the same process, ``np.fromfile`` of the run's files (page cache
warm for both). The phases are the wrapped functions' times: reading (the
reader, less the baseline end windows it calls per block), baselines (end
windows, re-check levels, finish), saturation, hits (``find_peaks``), the
cache writes (``EntryWriter.append`` / ``commit``, of which ``fsync`` and
the checksum; :mod:`phases`), and numba: the time spent loading each kernel from numba's
cache on its first call, and any kernel compiled because its signature was
not cached (there should be none). Interleaved with them, bare processes import numpy and
numba and call one trivial kernel from numba's cache: numba's fixed cost, and with
``np.fromfile`` the most any process that runs a numba kernel could reach. Medians (min-max) over the processes,
with the load average, and the CPU time of the process (all threads: less
sensitive to other load than the wall time). ``--entry-points`` also runs,
interleaved, processes in which numba's extension entry points
(``numba_extensions``, e.g. awkward's) are taken as loaded: a measurement of
what they cost, not something the package does. Each process then runs the
same ``get_data`` again on an empty cache: the kernels loaded. Targets (issue
21): cold >= 300 MB/s of CSV, >= 400 MB/s with the kernels loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# argv: data_root storage run_id; prints one JSON line of phase seconds
CHILD = r'''
import json, sys, time
from pathlib import Path
t0, c0 = time.perf_counter(), time.process_time()
import numpy as np
import numba  # the chain imports it on its first kernel; counted with the imports here
t_numba, c_numba = time.perf_counter() - t0, time.process_time() - c0
if sys.argv[4] == "skip":  # measurement only: numba's extension entry points taken as loaded
    import numba.core.entrypoints
    numba.core.entrypoints._already_initialized = True
import phases
T, loads, compiled = phases.install()
from waveform_analysis import Context, standard_plugins
t_import = time.perf_counter() - t0
data_root, storage, run = sys.argv[1:4]
t1 = time.perf_counter()
ctx = Context(storage_dir=storage, config={"data_root": data_root, "daq_adapter": "vx2730"})
ctx.register(*standard_plugins())
t2, c2 = time.perf_counter(), time.process_time()
peaks = ctx.get_data(run, "peaks")
t3, c3 = time.perf_counter(), time.process_time()
phased = dict(T)
# the same again in this process on an empty cache: the kernels loaded, the files cached
ctx = Context(storage_dir=storage + "_again", config={"data_root": data_root, "daq_adapter": "vx2730"})
ctx.register(*standard_plugins())
t_again = time.perf_counter()
ctx.get_data(run, "peaks")
t_again = time.perf_counter() - t_again
files = sorted(p for p in Path(data_root, run).rglob("*") if p.is_file() and p.suffix.upper() == ".CSV")
nbytes = sum(p.stat().st_size for p in files)
t4 = time.perf_counter()
for p in files:
    np.fromfile(p, np.uint8)
t5 = time.perf_counter()
print(json.dumps({"import": t_import, "import_numba": t_numba, "context": t2 - t1,
                  "cpu_import_numba": c_numba, "cpu_to_get_data": c2 - c0, "cpu_get_data": c3 - c2,
                  "get_data": t3 - t2, "fromfile": t5 - t4, "bytes": nbytes,
                  "n_peaks": len(peaks), **phased, "numba_load": sum(loads.values()),
                  "again": t_again,
                  "kernels": loads, "compiled": compiled}))
'''


# a bare process: numpy, numba and the first call of one trivial kernel from numba's cache
# (argv: the folder of the kernel's module); prints the seconds of each
FLOOR = r'''
import json, sys, time
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
import numba
t2 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import floor_kernel
a = np.ones(8)
t3 = time.perf_counter()
floor_kernel.clip_positive(a, np.empty(8))
t4 = time.perf_counter()
print(json.dumps({"numpy": t1 - t0, "numba": t2 - t1, "first_call": t4 - t3, "total": t4 - t0,
                  "hits": sum(floor_kernel.clip_positive.stats.cache_hits.values())}))
'''

FLOOR_KERNEL = """import numba


@numba.njit(cache=True, nogil=True)
def clip_positive(a, out):
    for i in range(a.size):
        out[i] = a[i] if a[i] > 0.0 else 0.0
"""


def run_floor(folder: Path) -> dict:
    """numba's fixed cost in a new process that does nothing else (see :data:`FLOOR`)."""
    (folder / "floor_kernel.py").write_text(FLOOR_KERNEL)
    out = subprocess.run([sys.executable, "-c", FLOOR, str(folder)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_child(root: Path, run: str, entry_points: str = "load") -> dict:
    cache = Path(tempfile.mkdtemp(prefix="cold_cache_", dir=root))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), str(REPO / "bench"), env.get("PYTHONPATH")) if p)
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(cache), run, entry_points], env=env,
                             check=True, capture_output=True, text=True)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(str(cache) + "_again", ignore_errors=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def med(xs: list[float]) -> str:
    return f"{np.median(xs) * 1e3:8.1f} ({min(xs) * 1e3:.1f}-{max(xs) * 1e3:.1f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-waveforms", type=int, default=20_000, help="records per channel")
    ap.add_argument("--n-samples", type=int, default=800)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="write the run here once and reuse it")
    ap.add_argument("--entry-points", action="store_true",
                    help="also time each process with numba's extension entry points (numba_extensions,"
                         " e.g. awkward's) taken as loaded, interleaved: what loading them costs")
    a = ap.parse_args()
    root = a.keep or Path(tempfile.mkdtemp(prefix="bench_cold_"))
    run = f"cold_{a.n_waveforms}_{a.n_samples}"
    try:
        if not (root / run).exists():
            from waveform_analysis.synthetic import generate_run

            generate_run(root, run, fmt="vx2730", n_waveforms=a.n_waveforms, n_samples=a.n_samples)
        run_child(root, run)  # numba's cache filled, the files in the page cache
        floor_dir = Path(tempfile.mkdtemp(prefix="floor_", dir=root))
        run_floor(floor_dir)  # compiles the trivial kernel into its cache
        res, skip, floor = [], [], []
        for _ in range(a.repeat):
            res.append(run_child(root, run))
            floor.append(run_floor(floor_dir))
            if a.entry_points:
                skip.append(run_child(root, run, "skip"))
    finally:
        if a.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    mb = res[0]["bytes"] / 1e6
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    cold = [r["import"] + r["context"] + r["get_data"] for r in res]
    print(f"cold get_data(run, 'peaks') in a new process, {mb:.0f} MB CoMPASS CSV, "
          f"{res[0]['n_peaks']:,} peaks; median (min-max) ms of {a.repeat} processes; load {load}")
    rows = [("import + Context", [r["import"] + r["context"] for r in res]),
            ("  of which import numba", [r["import_numba"] for r in res]),
            ("get_data", [r["get_data"] for r in res]),
            ("  numba: first calls (cache loads)", [r["numba_load"] for r in res]),
            ("  reading (less end windows)", [r["read"] - r["bl_end_windows"] for r in res]),
            ("  baselines: end windows", [r["bl_end_windows"] for r in res]),
            ("  baselines: channel levels (re-check, walk floor)", [r["bl_levels"] for r in res]),
            ("  baselines: finish", [r["bl_finish"] for r in res]),
            ("  saturation", [r["saturation"] for r in res]),
            ("  channel noise", [r["noise"] for r in res]),
            ("  hits (find_peaks)", [r["hits"] for r in res]),
            ("  cache append", [r["cache_append"] for r in res]),
            ("  cache commit", [r["cache_commit"] for r in res]),
            ("    of which fsync", [r["fsync"] for r in res]),
            ("    of which checksum", [r["checksum"] for r in res]),
            ("np.fromfile of the same files", [r["fromfile"] for r in res]),
            ("CPU (all threads): import numba", [r["cpu_import_numba"] for r in res]),
            ("CPU: import + Context", [r["cpu_to_get_data"] for r in res]),
            ("CPU: get_data", [r["cpu_get_data"] for r in res])]
    for label, xs in rows:
        print(f"{label:<34} {med(xs):>26}")
    kernels = {k: [r["kernels"].get(k, 0.0) for r in res] for k in res[0]["kernels"]}
    for k, xs in sorted(kernels.items(), key=lambda kv: -np.median(kv[1])):
        print(f"    numba load {k:<40} {np.median(xs) * 1e3:7.1f} ms")
    compiled = sorted({c for r in res for c in r["compiled"]})
    print("kernels compiled in the timed processes (not from numba's cache):", compiled or "none")
    speed = [mb / c for c in cold]
    ref = [mb / r["fromfile"] for r in res]
    ratio = [c / r["fromfile"] for c, r in zip(cold, res, strict=True)]
    print(f"cold incl. imports: {np.median(speed):.0f} MB/s ({min(speed):.0f}-{max(speed):.0f}); "
          f"get_data alone {np.median([mb / r['get_data'] for r in res]):.0f} MB/s; "
          f"np.fromfile {np.median(ref):.0f} MB/s; fromfile / cold = {np.median(ratio):.3f}; "
          f"target >= 300 MB/s: {'ok' if np.median(speed) >= 300 else 'MISSED'}")
    again = [mb / r["again"] for r in res]
    print(f"the same get_data again in each process, kernels loaded, on an empty cache: "
          f"{np.median(again):.0f} MB/s ({min(again):.0f}-{max(again):.0f}); "
          f"target >= 400 MB/s: {'ok' if np.median(again) >= 400 else 'MISSED'}")
    fixed = [f["total"] for f in floor]
    best = [mb / (f["total"] + r["fromfile"]) for f, r in zip(floor, res, strict=True)]
    print(f"numba's fixed cost in a bare new process (interleaved; import numpy "
          f"{med([f['numpy'] for f in floor])}, numba {med([f['numba'] for f in floor])}, the first "
          f"call of one trivial kernel from its cache {med([f['first_call'] for f in floor])} ms): "
          f"{med(fixed)} ms, {min(f['hits'] for f in floor)} cache hit(s); with np.fromfile of the "
          f"files and nothing else, {np.median(best):.0f} MB/s is the most a process that runs a "
          f"numba kernel reaches here; {mb / 300 * 1e3:.0f} ms for 300 MB/s")
    if skip:
        cold_skip = [r["import"] + r["context"] + r["get_data"] for r in skip]
        gain = [a - b for a, b in zip(cold, cold_skip, strict=True)]
        cpu = [r["cpu_to_get_data"] + r["cpu_get_data"] for r in res]
        cpu_skip = [r["cpu_to_get_data"] + r["cpu_get_data"] for r in skip]
        print(f"numba's extension entry points taken as loaded (interleaved): cold {med(cold_skip)} ms, "
              f"{np.median([mb / c for c in cold_skip]):.0f} MB/s; first kernel loads "
              f"{med([r['numba_load'] for r in skip])} ms; saved per process {med(gain)} ms of wall, "
              f"CPU {med(cpu)} -> {med(cpu_skip)} ms")


if __name__ == "__main__":
    main()
