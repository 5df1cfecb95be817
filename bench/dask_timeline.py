"""Where a Dask batch's time goes beside a process batch's, per run and per start.

    python bench/dask_timeline.py [--repeat 4] [--starts 12]

Part 1, batches of 8 runs x 10,000 waveforms on 2 workers (``process`` and
``dask`` with its own LocalCluster, interleaved): each worker writes when each
of its stages starts and ends, the gate writes when it hears that one ended
(``PriorityGate._done``) and how long handing out the next run and fetching the
result took. Printed per executor, medians (min-max): ``end->done`` (a worker
finishes, the batch hears of it), ``done`` (inside ``_done``: next run handed
out, then the result fetched), ``done->next`` (until that worker starts its
next stage), ``tail`` (the last stage's end to the pool's close) and ``first``
(pool ready to the first stage's start).

Part 2, the batch's own LocalCluster alone (``make_pool``), started, one no-op
task, closed, ``--starts`` times, with the nanny poll at Dask's 50 ms and at
:data:`celestialflow.backends.dask.NANNY_POLL`, interleaved.
"""

from __future__ import annotations

import argparse
import json
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

import celestialflow.backends.dask as _cf_dask  # noqa: E402
from celestialflow.backends import gate as _gate  # noqa: E402
from waveform_analysis import BatchProcessor, Context, standard_plugins  # noqa: E402
from waveform_analysis.batch import processor as _processor  # noqa: E402
from waveform_analysis.batch import workers as _workers  # noqa: E402
from waveform_analysis.batch.pools import load_kernels, make_pool  # noqa: E402

# set by main(); workers (forked, or re-importing this script from a forkserver) read it here
_DIR = Path(os.environ.get("WA_TIMELINE_DIR") or tempfile.gettempdir())
_TASKS, _DONES = _DIR / "tasks.log", _DIR / "dones.log"
_pool: dict[str, float] = {}


def _log(path: Path, row: list) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def timed_stage(spec, name, final, run_id):
    """``compute_stage``, its start and end written down (module level: workers unpickle it)."""
    t0 = time.time()
    try:
        return _workers.compute_stage(spec, name, final, run_id)
    finally:
        _log(_TASKS, [os.getpid(), t0, time.time()])


def _instrument() -> None:
    _processor.compute_stage = timed_stage
    done = _gate.PriorityGate._done

    def timed_done(self, inner, fut):
        t0 = time.time()
        done(self, inner, fut)
        _log(_DONES, [t0, time.time()])

    _gate.PriorityGate._done = timed_done
    made = _processor.make_pool

    def timed_make_pool(*a, **kw):
        gate, close = made(*a, **kw)
        _pool["ready"] = time.time()

        def timed_close():
            _pool["close"] = time.time()
            close()

        return gate, timed_close

    _processor.make_pool = timed_make_pool


def _med(v: list[float]) -> str:
    return f"{statistics.median(v) * 1000:5.1f} ms ({min(v) * 1000:.1f}-{max(v) * 1000:.1f})" if v else "-"


def _batches(repeat: int) -> None:
    from waveform_analysis.synthetic import generate_runs

    root = _DIR / "DAQ"
    runs = [f"run_{i:03d}" for i in range(8)]
    generate_runs(root, runs, n_waveforms=10_000, seed=1)
    stats: dict[str, dict[str, list[float]]] = {}
    for rep in range(repeat):
        for mode in ("process", "dask"):
            ctx = Context(storage_dir=_DIR / f"cache_{mode}_{rep}", config={"data_root": str(root)})
            ctx.register(standard_plugins())
            _TASKS.write_text("")
            _DONES.write_text("")
            BatchProcessor(ctx).process_runs(runs, "peaks", max_workers=2, show_progress=False, executor_type=mode)
            tasks = [json.loads(line) for line in _TASKS.read_text().splitlines()]
            dones = sorted(json.loads(line) for line in _DONES.read_text().splitlines())
            s = stats.setdefault(mode, {k: [] for k in ("end->done", "done", "done->next", "tail", "first")})
            by_worker: dict[int, list] = {}
            for pid, t0, t1 in tasks:
                by_worker.setdefault(pid, []).append((t0, t1))
            for stages in by_worker.values():
                stages.sort()
                for (_, end), (nxt, _) in zip(stages, stages[1:]):
                    heard = next((d for d in dones if d[0] >= end), None)
                    if heard is not None and heard[0] <= nxt:
                        s["end->done"].append(heard[0] - end)
                        s["done"].append(heard[1] - heard[0])
                        s["done->next"].append(nxt - heard[0])
            s["tail"].append(_pool["close"] - max(t1 for _, _, t1 in tasks))
            s["first"].append(min(t0 for _, t0, _ in tasks) - _pool["ready"])
    print(f"between two stages on one worker, median (min-max) of {repeat} batches of 8 runs, "
          f"load average {os.getloadavg()[0]:.2f}")
    for mode, s in stats.items():
        print(f"  {mode:8} " + "  ".join(f"{k} {_med(v)}" for k, v in s.items()))


def _starts(n: int) -> None:
    load_kernels()
    for _ in range(2):  # the fork path, then the forkserver's own start: not what is compared
        make_pool("dask", 2, lambda p: None)[1]()
    ours = _cf_dask.NANNY_POLL
    rows: dict[float, list[tuple[float, float, float]]] = {0.05: [], ours: []}
    for _ in range(n):
        for poll in rows:
            _cf_dask.NANNY_POLL = poll
            t0 = time.perf_counter()
            gate, close = make_pool("dask", 2, lambda p: None)
            t1 = time.perf_counter()
            gate.inner.submit(os.getpid, pure=False).result()
            t2 = time.perf_counter()
            close()
            rows[poll].append((t1 - t0, t2 - t1, time.perf_counter() - t2))
    _cf_dask.NANNY_POLL = ours
    print(f"the batch's own LocalCluster (2 workers, forkserver), median (min-max) of {n}, "
          f"load average {os.getloadavg()[0]:.2f}")
    for poll, r in rows.items():
        start, noop, close_ = zip(*r)
        print(f"  nanny poll {poll * 1000:4.0f} ms: start {_med(list(start))}  one no-op task {_med(list(noop))}"
              f"  close {_med(list(close_))}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=4)
    ap.add_argument("--starts", type=int, default=12)
    args = ap.parse_args(argv)
    global _DIR, _TASKS, _DONES
    _DIR = Path(tempfile.mkdtemp(prefix="wa-timeline-"))
    _TASKS, _DONES = _DIR / "tasks.log", _DIR / "dones.log"
    os.environ["WA_TIMELINE_DIR"] = str(_DIR)
    _instrument()
    try:
        _batches(args.repeat)
        _starts(args.starts)
    finally:
        shutil.rmtree(_DIR, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
