"""Hit finding including baselines beside strax's ``baseline`` + ``find_hits``, in one process.

    python bench/bench_strax.py [--n-records 200000] [--n-samples 110] [--repeat 7]

strax is a benchmark-only dependency (``pip install strax``; never a runtime
one): the script says so and stops when it is absent. The same int16
samples (noise of 3 ADC on a per-channel level, one negative pulse with an
exponential tail in most records, a few with a second pulse in the baseline
window) are given to both:

* ours, as the chain runs them: the baseline step is ``set_baselines``
  (``baseline_stats``: end windows, the run-wide re-check levels, the re-check
  of the few suspicious records; then ``baseline`` / ``baseline_rms`` filled in
  the records, as strax's ``baseline`` fills its fields); the hit step
  is ``find_peaks`` with its defaults (the channel noise from those RMS, a
  5 sigma / 8 ADC threshold);
* strax: ``strax.baseline(records, 40)`` on a fresh copy of the records (the
  copy is not timed: strax subtracts in place), then
  ``strax.find_hits(records, min_amplitude=15)`` (5 sigma of the 3 ADC noise).

Ours runs on 1 kernel thread and on 2 (:func:`waveform_analysis.parallel.limit_threads`);
strax's functions are single-threaded. The three are run interleaved, each
repetition in turn, and the table prints the median time of each phase with
the (min-max) spread, the MB/s of int16 samples and the ratios, with the
load average. Targets (issue 21): >= 2.5 x strax on 1 thread, >= 4 x on 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from waveform_analysis.dtypes import st_waveforms_dtype  # noqa: E402
from waveform_analysis.parallel import limit_threads  # noqa: E402
from waveform_analysis.processing import find_peaks  # noqa: E402
from waveform_analysis.processing.baselines import set_baselines  # noqa: E402

TARGETS = {1: 2.5, 2: 4.0}


def make_waves(n: int, ns: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(wave, channel)``: int16 records with noise, most with one pulse after sample 45."""
    rng = np.random.default_rng(seed)
    channel = rng.integers(0, 8, n).astype(np.int16)
    level = 15000.0 + 37.0 * channel
    wave = level[:, None] + rng.normal(0.0, 3.0, (n, ns))
    t = np.arange(ns, dtype=np.float64)

    def add(rows: np.ndarray, start_lo: int, start_hi: int) -> None:
        t0 = rng.uniform(start_lo, start_hi, rows.size)
        amp = np.exp(rng.uniform(np.log(10.0), np.log(1000.0), rows.size))
        tau = rng.uniform(4.0, 20.0, rows.size)
        dtt = t[None, :] - t0[:, None]
        shape = np.where(dtt >= 0, np.exp(-np.clip(dtt, 0, None) / tau[:, None]), 0.0)
        rise = np.clip(1.0 + dtt / 2.0, 0.0, 1.0)
        wave[rows] -= amp[:, None] * shape * rise

    add(np.flatnonzero(rng.random(n) < 0.8), 45, 70)
    add(np.flatnonzero(rng.random(n) < 0.03), 5, 35)  # pile-up inside the baseline window
    return np.clip(np.rint(wave), 0, 16383).astype(np.int16), channel


def ours_records(wave: np.ndarray, channel: np.ndarray) -> np.ndarray:
    n, ns = wave.shape
    st = np.zeros(n, st_waveforms_dtype(ns))
    st["time"] = np.arange(n, dtype=np.int64) * 1000
    st["channel"] = channel
    st["dt"] = 4.0
    st["length"] = ns
    st["wave"] = wave
    return st


def strax_records(strax, wave: np.ndarray, channel: np.ndarray) -> np.ndarray:
    n, ns = wave.shape
    r = np.zeros(n, strax.record_dtype(ns))
    r["time"] = np.arange(n, dtype=np.int64) * 1000
    r["channel"] = channel
    r["dt"] = 4
    r["length"] = ns
    r["pulse_length"] = ns
    r["data"] = wave
    return r


def ours_phases(st: np.ndarray) -> tuple[float, float, int]:
    """Seconds of the baseline step and of the hit step; the number of peaks."""
    t0 = time.perf_counter()
    set_baselines(st)  # as strax.baseline: the records' fields filled in place
    t1 = time.perf_counter()
    peaks = find_peaks(st)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, len(peaks)


def strax_phases(strax, pristine: np.ndarray) -> tuple[float, float, int]:
    r = pristine.copy()
    t0 = time.perf_counter()
    strax.baseline(r, baseline_samples=40)
    t1 = time.perf_counter()
    hits = strax.find_hits(r, min_amplitude=15)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, len(hits)


def spread(xs: list[float]) -> str:
    return f"{np.median(xs) * 1e3:7.1f} ({min(xs) * 1e3:.1f}-{max(xs) * 1e3:.1f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-records", type=int, default=200_000)
    ap.add_argument("--n-samples", type=int, default=110)
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    try:
        import strax
    except ImportError:
        print("strax is not installed (a benchmark-only dependency): pip install strax")
        return
    wave, channel = make_waves(a.n_records, a.n_samples)
    st = ours_records(wave, channel)
    pristine = strax_records(strax, wave, channel)
    mb = wave.nbytes / 1e6
    for threads in (1, 2):  # compile / load the kernels, not timed
        limit_threads(threads)
        ours_phases(ours_records(wave[:5000], channel[:5000]))
    strax_phases(strax, pristine[:5000])
    names = ("ours 1 thread", "strax", "ours 2 threads")
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in names}
    counts = {}
    for _ in range(a.repeat):
        for name in names:
            if name == "strax":
                b, h, k = strax_phases(strax, pristine)
            else:
                limit_threads(1 if "1" in name else 2)
                b, h, k = ours_phases(st)
            times[name].append((b, h))
            counts[name] = k
    limit_threads(None)
    print(f"strax {strax.__version__}; {a.n_records:,} records x {a.n_samples} samples "
          f"({mb:.0f} MB of int16); median (min-max) of {a.repeat}, interleaved; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'case':<15} {'baseline ms':>22} {'hits ms':>22} {'total ms':>22} {'MB/s':>7} "
          f"{'x strax':>8} {'x strax (bl)':>12} {'x strax (hits)':>14} {'found':>9}")
    sx = times["strax"]
    s_tot = [b + h for b, h in sx]
    for name in names:
        tb = [b for b, _ in times[name]]
        th = [h for _, h in times[name]]
        tt = [b + h for b, h in times[name]]
        ratio = np.median(s_tot) / np.median(tt)
        target = ""
        if name != "strax":
            goal = TARGETS[1 if "1" in name else 2]
            # the same repetition's strax time: the spread of the ratio under the same noise
            per = [s / t for s, t in zip(s_tot, tt, strict=True)]
            target = (f"  ratio per repetition {min(per):.2f}-{max(per):.2f}; target >= {goal} x: "
                      + ("ok" if ratio >= goal else "MISSED"))
        print(f"{name:<15} {spread(tb):>22} {spread(th):>22} {spread(tt):>22} "
              f"{mb / np.median(tt):>7.0f} {ratio:>8.2f} "
              f"{np.median([b for b, _ in sx]) / np.median(tb):>12.2f} "
              f"{np.median([h for _, h in sx]) / np.median(th):>14.2f} {counts[name]:>9,}{target}")


if __name__ == "__main__":
    main()
