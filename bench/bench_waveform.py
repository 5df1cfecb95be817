"""Throughput of the waveform numerics, each next to a numpy reference measured in the same run.

    python bench/bench_waveform.py [--n-waveforms 40000] [--n-samples 800] [--quick]

Generates one run per format in a temporary folder (the 40,000 waveforms are
split over 2 channels), warms the numba kernels up on a small run (compile
time excluded), then prints for each step the best of ``--repeat`` timings (the readers: the
median of ``--repeat`` timings interleaved with the reference's, and the spread
of the per-pair ratios):

* VX2730 CSV -> st_waveforms, MB/s of CSV (reference: np.fromfile of the same files)
* V1725 binary -> st_waveforms, MB/s of file (reference: np.fromfile of the same files)
* CoMPASS BIN 2.x (0xCAED) -> st_waveforms, MB/s of file (reference: np.fromfile)
* WaveDump binary and CAEN standard-firmware readout dump -> st_waveforms, MB/s of file
  (reference: np.fromfile)
* CoMPASS list-mode CSV (no waveforms, 25 x the triggers) -> trigger rows, MB/s of CSV
  (reference: np.fromfile)
* st_waveforms -> peaks, MB/s of int16 samples (reference: np.abs(x - b) > t)
* cold CSV -> peaks and binary -> peaks end to end: ``Context.get_data(run, "peaks")``
  with the standard plugins on an empty cache (cache writes included), MB/s of
  file (reference: np.fromfile of the same files)
* cached ``get_data(run, "peaks")`` in a new process (after ``import
  waveform_analysis`` and building the Context), first and second call, in ms
  (reference: ``np.load(mmap_mode="r")`` of the cached .npy, timed in the same
  process); best of ``--repeat`` processes
* peak RSS of CSV -> peaks in a new process (``VmHWM``; ``ru_maxrss`` printed
  too) against the run's int16 sample bytes

Targets: CSV >= 300 MB/s, binary (V1725, CoMPASS BIN, WaveDump, CAEN dump) >= 1000 MB/s,
list-mode CSV >= 150 MB/s, hits >= 2000 MB/s, cold CSV -> peaks >= 150 MB/s, binary -> peaks
>= 500 MB/s, cached get_data < 10 ms, peak RSS < 3 x sample bytes + 200 MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from waveform_analysis import Context, standard_plugins  # noqa: E402
from waveform_analysis.daq import get_adapter  # noqa: E402
from waveform_analysis.processing import basic_features, find_peaks, set_baselines  # noqa: E402
from waveform_analysis.synthetic import generate_run  # noqa: E402

TARGETS = {
    "vx2730": 300.0,
    "v1725": 1000.0,
    "compass_bin": 1000.0,
    "compass_list": 150.0,
    "wavedump": 1000.0,
    "caen_raw": 1000.0,
    "hits": 2000.0,
    "features": 1000.0,  # basic_features with the gated charges, MB/s of samples
    "vx2730_peaks": 150.0,
    "v1725_peaks": 500.0,
    "cached_ms": 10.0,
}
MIB = 1 << 20
# the runs read: name -> (adapter, generate_run options, label, triggers per waveform)
READS = {
    "vx2730": ("vx2730", {"fmt": "vx2730"}, "VX2730 CSV -> st_waveforms", 1),
    "v1725": ("v1725", {"fmt": "v1725"}, "V1725 bin -> st_waveforms", 1),
    "compass_bin": ("compass", {"fmt": "compass-bin"}, "CoMPASS BIN -> st_waveforms", 1),
    "compass_list": ("compass", {"fmt": "compass-csv", "samples": False, "n_samples": 16},
                     "CoMPASS list CSV -> triggers", 25),
    "wavedump": ("wavedump", {"fmt": "wavedump"}, "WaveDump bin -> st_waveforms", 1),
    "caen_raw": ("caen-raw", {"fmt": "caen-raw"}, "CAEN dump -> st_waveforms", 1),
}

# run in a new interpreter: argv = data_root storage_dir run_id adapter
CACHED_CHILD = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
import numpy as np
from waveform_analysis import Context, standard_plugins
data_root, storage, run, adapter = sys.argv[1:5]
ctx = Context(storage_dir=storage, config={"data_root": data_root, "daq_adapter": adapter})
ctx.register(*standard_plugins())
t1 = time.perf_counter()
peaks = ctx.get_data(run, "peaks")
t2 = time.perf_counter()
again = ctx.get_data(run, "peaks")
t3 = time.perf_counter()
npy = sorted(Path(storage, run).glob("peaks-*.npy"))
assert len(npy) == 1, npy
t4 = time.perf_counter()
ref = np.load(npy[0], mmap_mode="r", allow_pickle=False)
t5 = time.perf_counter()
assert len(ref) == len(peaks) and again is peaks
print(json.dumps({"setup": t1 - t0, "first": t2 - t1, "second": t3 - t2, "ref": t5 - t4,
                  "n": len(peaks), "numba": "numba" in sys.modules}))
"""

# run in a new interpreter: argv = data_root storage_dir run_id adapter
RSS_CHILD = """
import json, resource, sys
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith(("VmHWM", "VmRSS")):
            yield line.split(":")[0], int(line.split()[1]) * 1024
from waveform_analysis import Context, standard_plugins
data_root, storage, run, adapter = sys.argv[1:5]
ctx = Context(storage_dir=storage, config={"data_root": data_root, "daq_adapter": adapter})
ctx.register(*standard_plugins())
base = dict(hwm())["VmRSS"]
st = ctx.get_data(run, "st_waveforms")
sample_bytes = int(st["length"].astype("int64").sum()) * 2
peaks = ctx.get_data(run, "peaks")
mem = dict(hwm())
print(json.dumps({"hwm": mem["VmHWM"], "base": base, "sample_bytes": sample_bytes,
                  "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "n": len(peaks)}))
"""


def best_time(func, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - t0)
    return best


def paired_times(ref, func, repeat: int) -> tuple[float, float, float, float]:
    """``ref`` and ``func`` timed alternately ``repeat`` times: the median of each and the
    lowest and highest of the per-pair ratios ref time / func time (the spread)."""
    t_ref, t = [], []
    for _ in range(repeat):
        for f, out in ((ref, t_ref), (func, t)):
            t0 = time.perf_counter()
            f()
            out.append(time.perf_counter() - t0)
    ratios = np.array(t_ref) / np.array(t)
    return float(np.median(t_ref)), float(np.median(t)), float(ratios.min()), float(ratios.max())


def row(label: str, nbytes: int, t: float, ref_label: str, t_ref: float, target: float) -> None:
    mbs = nbytes / t / 1e6
    ref = nbytes / t_ref / 1e6
    flag = "ok" if mbs >= target else "BELOW TARGET"
    print(
        f"{label:<28} {mbs:9.0f} MB/s   {ref_label:<22} {ref:9.0f} MB/s   "
        f"ratio {mbs / ref:5.2f}   target {target:.0f} MB/s: {flag}"
    )


def run_child(code: str, *args: object) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    out = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        env=env, check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def cold_peaks(data: Path, cache: Path, run: str, fmt: str, repeat: int) -> tuple[float, int]:
    """Best time of files -> peaks through Context.get_data on an empty cache (left in ``cache``)."""
    best = float("inf")
    n = 0
    for _ in range(repeat):
        shutil.rmtree(cache, ignore_errors=True)
        ctx = Context(storage_dir=cache, config={"data_root": str(data), "daq_adapter": fmt})
        ctx.register(*standard_plugins())
        t0 = time.perf_counter()
        n = len(ctx.get_data(run, "peaks"))
        best = min(best, time.perf_counter() - t0)
        del ctx
    return best, n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-waveforms", type=int, default=40_000, help="total, over 2 channels")
    ap.add_argument("--n-samples", type=int, default=800)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="4,000 waveforms, one repeat")
    args = ap.parse_args(argv)
    n_wf = 4_000 if args.quick else args.n_waveforms
    repeat = 1 if args.quick else args.repeat
    per_channel = max(1, n_wf // 2)

    with tempfile.TemporaryDirectory(prefix="bench_waveform_") as tmp:
        root = Path(tmp) / "DAQ"
        root.mkdir()
        # warm-up: compile/load every kernel on a small run of each format
        for fmt, (adapter, gen, _, _) in READS.items():
            generate_run(root, f"warm_{fmt}", n_waveforms=200, **{"n_samples": args.n_samples, **gen})
            a = get_adapter(adapter)
            st = a.read(root, a.list_files(root, f"warm_{fmt}"), f"warm_{fmt}")
            if "wave" in st.dtype.names:
                set_baselines(st)
                find_peaks(st, 15.0)

        print(f"{2 * per_channel} waveforms x {args.n_samples} samples, best of {repeat}")
        st_csv = None
        inputs = {}
        for fmt, (adapter, gen, label, scale) in READS.items():
            run = f"bench_{fmt}"
            t0 = time.perf_counter()
            generate_run(root, run, n_waveforms=per_channel * scale,
                         **{"n_samples": args.n_samples, **gen})
            t_gen = time.perf_counter() - t0
            a = get_adapter(adapter)
            files = a.list_files(root, run)
            paths = [root / p for p in files["path"]]
            nbytes = sum(p.stat().st_size for p in paths)
            print(f"  generated {fmt} run: {nbytes / 1e6:.1f} MB in {t_gen:.1f} s")
            holder = {}

            def read(a=a, files=files, run=run, holder=holder):
                holder["st"] = a.read(root, files, run)

            def ref(paths=paths):
                return [np.fromfile(p, np.uint8) for p in paths]

            t_ref, t, lo, hi = paired_times(ref, read, repeat)
            inputs[fmt] = (run, nbytes, t_ref)
            row(label, nbytes, t, "np.fromfile same files", t_ref, TARGETS[fmt])
            print(f"  medians of {repeat}, interleaved; ratio per pair {lo:.2f}-{hi:.2f}")
            if fmt == "vx2730":
                st_csv = holder["st"]
            del holder

        st = st_csv
        set_baselines(st)
        wave = st["wave"]
        nbytes = wave.nbytes
        b = st["baseline"][:, None]
        t_ref = best_time(lambda: np.abs(wave - b) > 15.0, repeat)
        out = {}
        t = best_time(lambda: out.__setitem__("p", find_peaks(st, 15.0)), repeat)
        row("st_waveforms -> peaks", nbytes, t, "numpy |x - b| > t", t_ref, TARGETS["hits"])
        print(f"  {len(out['p'])} peaks in {len(st)} waveforms")
        peaks = out["p"]
        basic_features(st[:10], peaks[:0])  # compile outside the timing
        t_ref = best_time(lambda: wave.sum(axis=1, dtype=np.int64), repeat)
        t = best_time(lambda: basic_features(st, peaks), repeat)
        row("basic_features (gated)", nbytes, t, "numpy wave.sum(axis=1)", t_ref,
            TARGETS["features"])
        st = st_csv = wave = b = None  # free the arrays before the end-to-end cases
        out.clear()

        # end to end on an empty cache: files -> raw_files -> st_waveforms -> peaks
        for fmt in ("v1725", "vx2730"):  # CSV last: its cache is reused below
            run, nbytes, t_ref = inputs[fmt]
            cache = Path(tmp) / f"cache_{fmt}"
            t, n = cold_peaks(root, cache, run, fmt, repeat)
            label = "cold CSV -> peaks" if fmt == "vx2730" else "cold V1725 bin -> peaks"
            row(label, nbytes, t, "np.fromfile same files", t_ref, TARGETS[f"{fmt}_peaks"])
            print(f"  {n} peaks, Context.get_data on an empty cache")

        # cached get_data in a new process (CSV run, cache filled just above)
        run = inputs["vx2730"][0]
        cache = Path(tmp) / "cache_vx2730"
        res = [run_child(CACHED_CHILD, root, cache, run, "vx2730") for _ in range(max(3, repeat))]
        first = min(r["first"] for r in res) * 1e3
        worst = max(r["first"] for r in res) * 1e3
        second = min(r["second"] for r in res) * 1e3
        ref = min(r["ref"] for r in res) * 1e3
        setup = min(r["setup"] for r in res) * 1e3
        flag = "ok" if first < TARGETS["cached_ms"] else "ABOVE TARGET"
        print(
            f"{'cached get_data, new process':<28} {first:9.2f} ms     "
            f"{'np.load mmap same .npy':<22} {ref:9.2f} ms     ratio {ref / first:5.2f}   "
            f"target < {TARGETS['cached_ms']:.0f} ms: {flag}"
        )
        print(
            f"  best of {len(res)} processes (worst first call {worst:.2f} ms); second call "
            f"{second:.3f} ms; import + Context {setup:.0f} ms; "
            f"numba imported: {any(r['numba'] for r in res)}"
        )

        # peak RSS of CSV -> peaks in a new process, empty cache
        cache = Path(tmp) / "cache_rss"
        shutil.rmtree(cache, ignore_errors=True)
        r = run_child(RSS_CHILD, root, cache, run, "vx2730")
        limit = 3 * r["sample_bytes"] + 200 * MIB
        flag = "ok" if r["hwm"] < limit else "ABOVE TARGET"
        print(
            f"{'peak RSS CSV -> peaks':<28} {r['hwm'] / MIB:9.0f} MiB    "
            f"{'int16 sample bytes':<22} {r['sample_bytes'] / MIB:9.0f} MiB    "
            f"ratio {r['hwm'] / r['sample_bytes']:5.2f}   target < 3 x samples + 200 MiB = "
            f"{limit / MIB:.0f} MiB: {flag}"
        )
        print(
            f"  new process: VmHWM {r['hwm'] / MIB:.0f} MiB, ru_maxrss {r['maxrss'] / MIB:.0f} MiB, "
            f"after import + Context {r['base'] / MIB:.0f} MiB"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"bench process peak RSS {rss:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
