"""Throughput of the waveform numerics, each next to a numpy reference measured in the same run.

    python bench/bench_waveform.py [--n-waveforms 40000] [--n-samples 800] [--quick]

Generates one run per format in a temporary folder (the 40,000 waveforms are
split over 2 channels), warms the numba kernels up on a small run (compile
time excluded), then prints for each step the best of ``--repeat`` timings:

* VX2730 CSV -> st_waveforms, MB/s of CSV (reference: np.fromfile of the same files)
* V1725 binary -> st_waveforms, MB/s of file (reference: np.fromfile of the same files)
* st_waveforms -> peaks, MB/s of int16 samples (reference: np.abs(x - b) > t)

and the peak RSS of the process. Targets: CSV >= 300 MB/s, binary >= 1000 MB/s,
hits >= 2000 MB/s.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from waveform_analysis.daq import get_adapter  # noqa: E402
from waveform_analysis.processing import compute_baselines, find_peaks  # noqa: E402
from waveform_analysis.synthetic import generate_run  # noqa: E402

TARGETS = {"vx2730": 300.0, "v1725": 1000.0, "hits": 2000.0}


def best_time(func, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - t0)
    return best


def row(label: str, nbytes: int, t: float, ref_label: str, t_ref: float, target: float) -> None:
    mbs = nbytes / t / 1e6
    ref = nbytes / t_ref / 1e6
    flag = "ok" if mbs >= target else "BELOW TARGET"
    print(
        f"{label:<28} {mbs:9.0f} MB/s   {ref_label:<22} {ref:9.0f} MB/s   "
        f"ratio {mbs / ref:5.2f}   target {target:.0f} MB/s: {flag}"
    )


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
        root = Path(tmp)
        # warm-up: compile/load every kernel on a small run of each format
        for fmt in ("vx2730", "v1725"):
            generate_run(root, f"warm_{fmt}", fmt=fmt, n_waveforms=200, n_samples=args.n_samples)
            a = get_adapter(fmt)
            st = a.read(root, a.list_files(root, f"warm_{fmt}"), f"warm_{fmt}")
            st["baseline"] = compute_baselines(st)
            find_peaks(st, 15.0)

        print(f"{2 * per_channel} waveforms x {args.n_samples} samples, best of {repeat}")
        st_csv = None
        for fmt in ("vx2730", "v1725"):
            run = f"bench_{fmt}"
            t0 = time.perf_counter()
            generate_run(root, run, fmt=fmt, n_waveforms=per_channel, n_samples=args.n_samples)
            t_gen = time.perf_counter() - t0
            a = get_adapter(fmt)
            files = a.list_files(root, run)
            paths = [root / p for p in files["path"]]
            nbytes = sum(p.stat().st_size for p in paths)
            print(f"  generated {fmt} run: {nbytes / 1e6:.1f} MB in {t_gen:.1f} s")
            t_ref = best_time(lambda paths=paths: [np.fromfile(p, np.uint8) for p in paths],
                              repeat)
            holder = {}

            def read(a=a, files=files, run=run, holder=holder):
                holder["st"] = a.read(root, files, run)

            t = best_time(read, repeat)
            label = "VX2730 CSV -> st_waveforms" if fmt == "vx2730" else "V1725 bin -> st_waveforms"
            row(label, nbytes, t, "np.fromfile same files", t_ref, TARGETS[fmt])
            if fmt == "vx2730":
                st_csv = holder["st"]
            del holder

        st = st_csv
        st["baseline"] = compute_baselines(st)
        wave = st["wave"]
        nbytes = wave.nbytes
        b = st["baseline"][:, None]
        t_ref = best_time(lambda: np.abs(wave - b) > 15.0, repeat)
        out = {}
        t = best_time(lambda: out.__setitem__("p", find_peaks(st, 15.0)), repeat)
        row("st_waveforms -> peaks", nbytes, t, "numpy |x - b| > t", t_ref, TARGETS["hits"])
        print(f"  {len(out['p'])} peaks in {len(st)} waveforms")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
