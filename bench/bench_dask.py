"""A batch on Dask against the same batch on processes, in one run.

    python bench/bench_dask.py [--runs 8] [--n-waveforms 10000]

Cases (2 workers each, empty caches, interleaved, median of ``--repeat``):
``executor_type="process"`` (the reference), ``executor_type="dask"`` with the
LocalCluster the batch starts itself (the ratio is taken against the process
batch of the same repetition), one run on such a cluster end to end, and the
batch on a ``Client`` given to it (``dask_client=``, warmed up by one run
first). Each is split into phases: ``pool`` (workers started), ``warm`` (kernels
loaded on them), ``runs`` (first stage to last result), ``close``. Targets:
Dask >= 0.9 x processes; one run < 1 s; a given client costs no start-up.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loguru import logger  # noqa: E402

logger.remove()

from waveform_analysis import BatchProcessor, Context, standard_plugins  # noqa: E402
from waveform_analysis.batch import processor as _processor  # noqa: E402
from waveform_analysis.synthetic import generate_runs  # noqa: E402

PHASES = ("pool", "warm", "runs", "close")
_phase: dict[str, float] = {}


def _timed(name: str, fn):
    """``fn``, its time added to the current batch's phase ``name``."""
    def call(*a, **kw):
        t0 = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            _phase[name] = _phase.get(name, 0.0) + time.perf_counter() - t0
    return call


def _time_phases() -> None:
    """Per batch: start of the workers (``pool``: a LocalCluster, or the process pool and,
    for a forked cluster, the kernel warm-up before the fork), ``warm`` (workers started and
    warmed up), ``close``; ``runs`` is the rest, from the first stage to the last result."""
    make_pool = _processor.make_pool

    def timed_make_pool(*a, **kw):
        gate, close = _timed("pool", make_pool)(*a, **kw)
        return gate, _timed("close", close)

    _processor.make_pool = timed_make_pool
    _processor.warm_up_dask = _timed("warm", _processor.warm_up_dask)
    _processor.warm_up_processes = _timed("warm", _processor.warm_up_processes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--n-waveforms", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    import distributed

    _time_phases()
    work = Path(tempfile.mkdtemp(prefix="wa-bench-dask-"))
    try:
        root = work / "DAQ"
        runs = [f"run_{i:03d}" for i in range(args.runs)]
        generate_runs(root, runs, n_waveforms=args.n_waveforms, seed=1)

        def batch(tag: str, ids: list[str], **kw) -> float:
            cache = work / f"cache_{tag}"
            shutil.rmtree(cache, ignore_errors=True)
            ctx = Context(storage_dir=cache, config={"data_root": str(root)})
            ctx.register(standard_plugins())
            _phase.clear()
            t0 = time.perf_counter()
            out = BatchProcessor(ctx).process_runs(ids, "peaks", max_workers=2, show_progress=False, **kw)
            if out["errors"]:
                raise RuntimeError(f"runs failed: {out['errors']}")
            total = time.perf_counter() - t0
            phases[tag].append({"total": total, **_phase,
                                "runs": total - sum(_phase.get(k, 0.0) for k in ("pool", "warm", "close"))})
            return total

        names = {"p": "process (reference)", "d": "dask, own LocalCluster", "o": "dask, one run",
                 "g": "dask, given client"}
        phases: dict[str, list[dict]] = {tag: [] for tag in [*names, "w"]}
        ratios = []
        for _ in range(args.repeat):
            p = batch("p", runs, executor_type="process")
            d = batch("d", runs, executor_type="dask")
            ratios.append(p / d)
            batch("o", runs[:1], executor_type="dask")
            with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0") as cl, \
                    distributed.Client(cl) as client:
                batch("w", runs[:1], dask_client=client)
                batch("g", runs, dask_client=client)
        med = statistics.median
        print(f"{args.runs} runs x {args.n_waveforms} waveforms, 2 workers, median of {args.repeat} "
              f"(min-max), load average {os.getloadavg()[0]:.2f}")
        print(f"{'case':24} {'total s':>18} " + " ".join(f"{k:>6}" for k in PHASES))
        for tag, label in names.items():
            rows = phases[tag]
            tot = [r["total"] for r in rows]
            cols = " ".join(f"{med([r.get(k, 0.0) for r in rows]):6.2f}" for k in PHASES)
            print(f"{label:24} {med(tot):6.2f} ({min(tot):.2f}-{max(tot):.2f}) {cols}")
        print(f"dask / process, same repetition: {med(ratios):.2f} x ({min(ratios):.2f}-{max(ratios):.2f})"
              f"  (target >= 0.9 x)")
        print(f"dask one run: {med(r['total'] for r in phases['o']):.2f} s  (target < 1 s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
