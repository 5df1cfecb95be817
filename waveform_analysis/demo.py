"""The main job on built-in data: generate digitizer runs, find peaks in all of them.

Run with ``make demo`` or ``python -m waveform_analysis.demo [--runs 8] [--workers 2]``.
It writes synthetic CAEN VX2730 runs under ``demo_data/DAQ`` (reused when present),
processes them with a BatchProcessor (a streaming celestialflow graph), compares
the peaks with the generator's truth, and draws the pipeline.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_data", help="folder for the data, the cache and the drawings")
    parser.add_argument("--runs", type=int, default=8, help="number of runs to generate and process")
    parser.add_argument("--waveforms", type=int, default=5000, help="waveforms per channel and run")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="runs processed at once")
    parser.add_argument("--executor", default="process", choices=["thread", "process"])
    args = parser.parse_args(argv)

    from loguru import logger

    from waveform_analysis import BatchProcessor, Context, standard_plugins
    from waveform_analysis.synthetic import generate_run, load_truth

    out = Path(args.out).resolve()
    data_root, storage = out / "DAQ", out / "cache"
    runs = [f"run_{i:03d}" for i in range(1, args.runs + 1)]
    t0 = time.perf_counter()
    made = 0
    for i, run in enumerate(runs):
        if not (data_root / run / "RAW").exists():
            generate_run(data_root, run, n_channels=2, n_waveforms=args.waveforms, n_samples=800, seed=i)
            made += 1
    print(f"data: {len(runs)} runs in {data_root} ({made} generated in {time.perf_counter() - t0:.1f} s)")

    ctx = Context(storage_dir=storage, config={"data_root": str(data_root), "peaks": {"threshold": 15.0}})
    ctx.register(standard_plugins())
    print(ctx.explain(runs[0], "basic_features"))

    processor = BatchProcessor(ctx)
    t0 = time.perf_counter()
    result = processor.process_runs(
        runs, "basic_features", max_workers=args.workers, executor_type=args.executor
    )
    elapsed = time.perf_counter() - t0
    ok = [r for r in runs if result["meta"][r]["status"] == "success"]
    csv_bytes = sum(f.stat().st_size for r in runs for f in (data_root / r / "RAW").iterdir())
    print(
        f"\nbatch: {len(ok)}/{len(runs)} runs to basic_features in {elapsed:.2f} s "
        f"({csv_bytes / elapsed / 1e6:.0f} MB/s of CSV, {args.workers} {args.executor} workers)"
    )
    for run, err in result["errors"].items():
        print(f"  {run} failed in {err['plugin']}: {err['type']}: {err['message']}")

    print("\nrun        waveforms  peaks   true pulses  found(>=10 sigma)")
    for run in ok:
        peaks = ctx.get_data(run, "peaks")
        n_wf = len(ctx.get_data(run, "st_waveforms"))
        truth = load_truth(data_root / run)
        big = truth[truth["amplitude"] >= 30]
        found = _matched(peaks, big)
        print(f"{run}  {n_wf:9d}  {len(peaks):6d}  {len(truth):11d}  {found / max(len(big), 1):8.1%}")
        ctx.release(run)

    dot_path = out / "batch_pipeline.dot"
    dot_path.write_text(processor.last_graph.to_dot())
    (out / "lineage.dot").write_text(ctx.to_dot("basic_features"))
    print(f"\npipeline drawing: {dot_path}")
    try:
        svg = processor.last_graph.render(out / "batch_pipeline.svg")
        print(f"rendered: {svg}")
    except Exception as exc:  # dot missing: say so, the DOT text is still there
        logger.warning("{}", exc)
    print(processor.last_graph.format_tree())
    return 0 if len(ok) == len(runs) else 1


def _matched(peaks: np.ndarray, truth: np.ndarray) -> int:
    """True pulses with a peak in the same waveform whose extremum is within 2 samples."""
    if len(truth) == 0 or len(peaks) == 0:
        return 0
    key_p = peaks["record_i"].astype(np.int64) * 100_000 + peaks["position"]
    key_p.sort()
    key_t = truth["record_i"].astype(np.int64) * 100_000 + truth["position"]
    lo = np.searchsorted(key_p, key_t - 2)
    hi = np.searchsorted(key_p, key_t + 2, side="right")
    return int(np.count_nonzero(hi > lo))


if __name__ == "__main__":
    raise SystemExit(main())
