"""The main job on built-in data: generate digitizer runs, find peaks in all of them.

Run with ``make demo`` or ``python -m waveform_analysis.demo [--runs 8] [--workers 2]``.
It writes synthetic CAEN VX2730 runs under ``demo_data/DAQ`` (reused when present),
processes them with a BatchProcessor (a streaming celestialflow graph), compares
the peaks with the generator's truth, draws the pipeline and a few pictures, and
lists every file it wrote. ``--verbose`` adds the plan with cache keys.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

TARGET = "basic_features"
MATCH_SAMPLES = 2  # a peak "finds" a true pulse when their extrema are this close


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_data", help="folder for the data, the cache and the drawings")
    parser.add_argument("--runs", type=int, default=8, help="number of runs to generate and process")
    parser.add_argument("--waveforms", type=int, default=5000, help="waveforms per channel and run")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="runs processed at once")
    parser.add_argument("--executor", default="process", choices=["thread", "process"])
    parser.add_argument("--verbose", action="store_true", help="also print the plan with cache keys")
    args = parser.parse_args(argv)

    from loguru import logger
    from tqdm import tqdm

    from waveform_analysis import BatchProcessor, Context, standard_plugins
    from waveform_analysis.batch.drawing import batch_chain, write_drawing
    from waveform_analysis.synthetic import generate_run

    out = Path(args.out).resolve()
    data_root, storage = out / "DAQ", out / "cache"
    runs = [f"run_{i:03d}" for i in range(1, args.runs + 1)]
    written: list[Path] = []

    missing = [(i, r) for i, r in enumerate(runs) if not (data_root / r / "RAW").exists()]
    t0 = time.perf_counter()
    for i, run in tqdm(missing, desc="generating runs", unit="run", disable=not missing):
        generate_run(data_root, run, n_channels=2, n_waveforms=args.waveforms, n_samples=800, seed=i)
    if missing:
        written.append(data_root)
    made = f"{len(missing)} generated in {time.perf_counter() - t0:.1f} s" if missing else "reused"
    if missing and len(missing) < len(runs):
        made += f", {len(runs) - len(missing)} reused"
    print(f"data: {len(runs)} synthetic CAEN VX2730 runs in {data_root} ({made})")

    print("loading the numeric kernels (compiled once, kept on disk by numba) ...", end=" ", flush=True)
    from waveform_analysis.batch.pools import load_kernels

    print(f"{load_kernels():.1f} s")

    config = {"data_root": str(data_root), "peaks": {"threshold": 15.0}}
    ctx = Context(storage_dir=storage, config=config)
    ctx.register(standard_plugins())
    if args.verbose:
        print(ctx.explain(runs[0], TARGET))
    cached_before = sum(ctx.is_cached(r, TARGET) for r in runs)

    processor = BatchProcessor(ctx)
    t0 = time.perf_counter()
    result = processor.process_runs(runs, TARGET, max_workers=args.workers, executor_type=args.executor)
    elapsed = time.perf_counter() - t0
    ok = [r for r in runs if result["meta"][r]["status"] == "success"]
    csv_bytes = sum(f.stat().st_size for r in runs for f in (data_root / r / "RAW").iterdir())
    if cached_before < len(runs):
        written.append(storage)

    print(f"\nbatch: {len(ok)}/{len(runs)} runs to {TARGET} in {elapsed:.2f} s with "
          f"{args.workers} {args.executor} workers")  # fmt: skip
    if cached_before == len(runs):
        print("  every run was already in the cache, so nothing was read or computed "
              f"(rm -rf {storage} or make clean to start over)")  # fmt: skip
    else:
        print(f"  {csv_bytes / 1e6:.0f} MB of CSV read at {csv_bytes / elapsed / 1e6:.0f} MB/s")
    for run, err in result["errors"].items():
        print(f"  {run} FAILED in {err['plugin']}: {err['type']}: {err['message']}")

    _physics_table(ctx, data_root, ok)
    written += _pictures(ctx, ok[:1], out, logger)

    dot_path = out / "batch_pipeline.dot"
    graph = processor.last_graph
    full = batch_chain(ctx, TARGET)
    if graph is not None and len(graph.to_networkx()) == len(full.to_networkx()):
        drawing = graph.to_dot()  # the real run, with its counts
    elif dot_path.exists():
        drawing = None  # a batch over cached runs has one stage: keep the first run's drawing
        print(f"\npipeline drawing kept from the first demo run: {dot_path}")
    else:
        drawing = full.to_dot()
    if drawing is not None:
        dot_path.write_text(drawing)
        written.append(dot_path)
        svg, note = write_drawing(drawing, out / "batch_pipeline.svg")
        if note:
            print(f"\nnote: {note}")
        elif svg != dot_path:
            written.append(svg)
    lineage = out / "lineage.dot"
    lineage.write_text(ctx.to_dot(TARGET))
    written.append(lineage)
    if args.verbose and graph is not None:
        print(graph.format_tree())

    print("\nfiles written:")
    for p in written:
        print(f"  {p}{os.sep if p.is_dir() else ''}")
    return 0 if len(ok) == len(runs) else 1


def _physics_table(ctx, data_root: Path, runs: list[str]) -> None:
    """Per run: records, peaks, and how the peaks compare with the generator's truth."""
    from waveform_analysis.synthetic import load_truth

    print(f"\n{'run':8} {'records':>8} {'peaks':>7} {'true':>7} {'found':>7} {'found>=10σ':>10} "
          f"{'fake':>6} {'trigger rate':>13}")  # fmt: skip
    tot = np.zeros(7, dtype=np.int64)
    sigma = 3.0
    for run in runs:
        peaks = ctx.get_data(run, "peaks")
        st = ctx.get_data(run, "st_waveforms")
        truth = load_truth(data_root / run)
        params = json.loads((data_root / run / "truth.json").read_text())
        sigma = float(params.get("noise_sigma", sigma))
        big = truth[truth["amplitude"] >= 10 * sigma]
        found, found_big = _matched(peaks, truth), _matched(peaks, big)
        fake = len(peaks) - _matched(truth, peaks)  # peaks with no true pulse close by
        n_ch = max(1, int(params.get("n_channels", 1)))
        span = (int(st["time"][-1]) - int(st["time"][0])) * 1e-9
        rate = len(st) / n_ch / span if span > 0 else float("nan")
        print(f"{run:8} {len(st):8d} {len(peaks):7d} {len(truth):7d} {found / max(len(truth), 1):7.1%} "
              f"{found_big / max(len(big), 1):10.1%} {fake:6d} {rate / 1e3:9.1f} kHz")  # fmt: skip
        tot += [len(st), len(peaks), len(truth), found, found_big, fake, len(big)]
        ctx.release(run)
    if runs:
        print(f"{'all':8} {tot[0]:8d} {tot[1]:7d} {tot[2]:7d} {tot[3] / max(tot[2], 1):7.1%} "
              f"{tot[4] / max(tot[6], 1):10.1%} {tot[5]:6d}")  # fmt: skip
    print(f"  true: pulses the generator put in; found: true pulses with a peak in the same record "
          f"whose extremum is within ±{MATCH_SAMPLES} samples of theirs;")
    print(f"  found>=10σ: the same for pulses of at least {10 * sigma:.0f} ADC (noise σ = {sigma:g} ADC, "
          f"threshold {ctx.get_config('peaks', 'threshold'):g} ADC);")
    print(f"  fake: peaks with no true pulse within ±{MATCH_SAMPLES} samples; "
          "trigger rate: records per channel per second of run time")


def _pictures(ctx, runs: list[str], out: Path, logger) -> list[Path]:
    """A waveform gallery and the area spectrum of the first run, when matplotlib is installed."""
    try:
        from waveform_analysis import plotting
    except ImportError:  # pragma: no cover - the plot extra is missing
        return []
    written = []
    for run in runs:
        try:
            peaks = ctx.get_data(run, "peaks")
            gallery = out / f"{run}_waveforms.png"
            plotting.plot_waveforms(ctx.get_data(run, "st_waveforms"), peaks,
                                    threshold=ctx.get_config("peaks", "threshold"),
                                    title=f"{run}: waveforms with found peaks", path=gallery)  # fmt: skip
            spectrum = out / f"{run}_area_spectrum.png"
            plotting.plot_spectrum(peaks, "area", title=f"{run}: peak area per channel", path=spectrum)
            written += [gallery, spectrum]
        except ImportError as exc:
            logger.warning("no pictures: {}", exc)
        ctx.release(run)
    return written


def _matched(found: np.ndarray, wanted: np.ndarray) -> int:
    """Rows of ``wanted`` with a row of ``found`` in the same record, extrema within 2 samples."""
    if len(wanted) == 0 or len(found) == 0:
        return 0
    key_f = found["record_i"].astype(np.int64) * 100_000 + found["position"]
    key_f.sort()
    key_w = wanted["record_i"].astype(np.int64) * 100_000 + wanted["position"]
    lo = np.searchsorted(key_f, key_w - MATCH_SAMPLES)
    hi = np.searchsorted(key_f, key_w + MATCH_SAMPLES, side="right")
    return int(np.count_nonzero(hi > lo))


if __name__ == "__main__":
    raise SystemExit(main())
