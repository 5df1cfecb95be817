"""Hit-finding kernel against kernel: two versions of ``_hits_kernels.py``, with and without
the position rule (``position_sigma=0``), interleaved; the kernel's CPU time.

    git show <rev>:waveform_analysis/processing/_hits_kernels.py > DIR/_hits_kernels_old.py
    cp waveform_analysis/processing/_hits_kernels.py DIR/_hits_kernels_new.py
    python bench/bench_hit_position.py DIR [--pairs 15] [--bench]

The CPU time is ``thread_time`` summed inside each kernel call, so other load on the
machine moves it far less than wall time. ``--bench``: bench_waveform's hit row (the
generator's default model, 2 x 20,000 records, threshold 15 ADC); else 20,000 records of
800 samples with 2 pulses each on 3 ADC noise.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

import waveform_analysis.processing._hits_kernels as current
from waveform_analysis.processing import find_peaks, set_baselines
from waveform_analysis.synthetic import synthesize


def _load(path: Path):
    """The module at ``path``, imported by name (numba's cache imports it again so)."""
    sys.path.insert(0, str(path.parent))
    return importlib.import_module(path.stem)


def _adapt(kernel):
    """``kernel.find_hits`` called with today's arguments: those an older kernel does not
    take (options added since, e.g. ``link``) are dropped by name."""
    names = inspect.signature(current.find_hits.py_func).parameters
    takes = set(inspect.signature(kernel.find_hits.py_func).parameters)
    keep = [i for i, name in enumerate(names) if name in takes]
    if len(keep) == len(names):
        return kernel.find_hits
    return lambda *a: kernel.find_hits(*(a[i] for i in keep))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--bench", action="store_true")
    args = ap.parse_args()
    kernels = {v: _load(args.dir / f"_hits_kernels_{v}.py") for v in ("old", "new")}
    calls = {v: _adapt(k) for v, k in kernels.items()}
    if args.bench:
        st, _ = synthesize(n_channels=2, n_waveforms=20000, n_samples=800, seed=3)
        pos = (15.0,)
    else:
        st, _ = synthesize(n_waveforms=20000, n_samples=800, noise_sigma=3, pulse_mean=2.0, seed=3)
        pos = ()
    set_baselines(st)
    lock = threading.Lock()
    spent = [0.0]

    def timed(f):
        def call(*a):
            t = time.thread_time()
            k = f(*a)
            with lock:
                spent[0] += time.thread_time() - t
            return k
        return call

    def run(version: str, **kw) -> float:
        current.find_hits = timed(calls[version])
        spent[0] = 0.0
        find_peaks(st, *pos, **kw)
        return spent[0]

    cases = {"old": ("old", {}), "new": ("new", {}), "old p0": ("old", {"position_sigma": 0.0}),
             "new p0": ("new", {"position_sigma": 0.0})}
    for v, kw in cases.values():
        run(v, **kw)  # compile
    res = {k: [] for k in cases}
    for _ in range(args.pairs):
        for name, (v, kw) in cases.items():
            res[name].append(run(v, **kw))
    print(os.popen("uptime").read().strip())
    mb = st["wave"].nbytes / 1e6
    for k, v in res.items():
        v = np.array(v)
        print(f"{k:7} median {np.median(v) * 1e3:7.1f} ms CPU ({mb / np.median(v):6.0f} MB/s)  "
              f"spread {v.min() * 1e3:.1f}-{v.max() * 1e3:.1f}")
    for a, b, what in (("new", "old", "new / old, position rule on"),
                       ("old", "old p0", "old: position rule / none"),
                       ("new", "old p0", "new with the rule / old without it"),
                       ("new p0", "old p0", "new / old, position rule off")):
        r = np.array(res[a]) / np.array(res[b])
        print(f"{what}: median {np.median(r):.3f} (spread {r.min():.3f}-{r.max():.3f}, "
              f"n={len(r)})")


if __name__ == "__main__":
    main()
