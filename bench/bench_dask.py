"""A batch on Dask against the same batch on processes, in one run.

    python bench/bench_dask.py [--runs 8] [--n-waveforms 10000]

Cases (2 workers each, empty caches, best of 2): ``executor_type="process"``
(the reference), ``executor_type="dask"`` with the LocalCluster the batch starts
itself, one run on such a cluster end to end, and the batch on a ``Client``
given to it (``dask_client=``, warmed up by one run first). Targets: Dask >= 0.8 x
processes; one run < 2 s; a given client costs no start-up.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loguru import logger  # noqa: E402

logger.remove()

from waveform_analysis import BatchProcessor, Context, standard_plugins  # noqa: E402
from waveform_analysis.synthetic import generate_runs  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--n-waveforms", type=int, default=10_000)
    args = ap.parse_args(argv)
    import distributed

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
            t0 = time.perf_counter()
            out = BatchProcessor(ctx).process_runs(ids, "peaks", max_workers=2, show_progress=False, **kw)
            if out["errors"]:
                raise RuntimeError(f"runs failed: {out['errors']}")
            return time.perf_counter() - t0

        best = {"process": 1e9, "dask": 1e9, "one": 1e9, "given": 1e9}
        for _ in range(2):
            best["process"] = min(best["process"], batch("p", runs, executor_type="process"))
            best["dask"] = min(best["dask"], batch("d", runs, executor_type="dask"))
            best["one"] = min(best["one"], batch("o", runs[:1], executor_type="dask"))
            with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0") as cl, \
                    distributed.Client(cl) as client:
                batch("w", runs[:1], dask_client=client)
                best["given"] = min(best["given"], batch("g", runs, dask_client=client))
        p = best["process"]
        print(f"{args.runs} runs x {args.n_waveforms} waveforms, 2 workers, best of 2")
        print(f"process (reference)      {p:6.2f} s")
        print(f"dask, own LocalCluster   {best['dask']:6.2f} s  {p / best['dask']:.2f} x  (target >= 0.8 x)")
        print(f"dask, one run            {best['one']:6.2f} s         (target < 2 s)")
        print(f"dask, given client       {best['given']:6.2f} s  {p / best['given']:.2f} x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
