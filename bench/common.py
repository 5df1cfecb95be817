"""What the engine benchmarks share: a calibrated CPU-bound task, interleaved timing, the table."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from collections.abc import Callable


def private_log_dir() -> str:
    """Point the engine's run logs at a temporary folder, removed at exit by the process that made it.

    Child processes inherit ``CELESTIALFLOW_LOG_DIR`` and reuse the folder, so a benchmark leaves
    no ``logs/`` in the working tree and no folder behind in ``/tmp``.
    """
    if "CELESTIALFLOW_LOG_DIR" not in os.environ:
        path = tempfile.mkdtemp(prefix="cf-bench-logs-")
        os.environ["CELESTIALFLOW_LOG_DIR"] = path
        atexit.register(shutil.rmtree, path, True)
    return os.environ["CELESTIALFLOW_LOG_DIR"]


CPU_TASK_SECONDS = 0.25e-3
LOOPS = 1000  # set by calibrate(); worker processes are forked after it, so they see it


def burn(x: int) -> int:
    """Pure-Python arithmetic taking about CPU_TASK_SECONDS once calibrated."""
    s = x
    for i in range(LOOPS):
        s = (s * 31 + i) % 1000003
    return s


def calibrate() -> int:
    """Set LOOPS so that one burn() call takes about CPU_TASK_SECONDS."""
    global LOOPS
    LOOPS = 1000
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for x in range(50):
            burn(x)
        best = min(best, (time.perf_counter() - t0) / 50)
    LOOPS = max(1, round(1000 * CPU_TASK_SECONDS / best))
    return LOOPS


def best_times(funcs: list[Callable[[], object]], repeat: int) -> list[float]:
    """Best of ``repeat`` timings of each function, run interleaved (same noise for all)."""
    best = [float("inf")] * len(funcs)
    for _ in range(repeat):
        for i, func in enumerate(funcs):
            t0 = time.perf_counter()
            func()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


class Table:
    """Rows of (case, N, our time, reference, reference time, target, pass) printed as a table."""

    def __init__(self, case_width: int = 34, ref_width: int = 30, target_width: int = 24) -> None:
        self.rows: list[tuple] = []
        self.notes: list[str] = []
        self.w = (case_width, ref_width, target_width)

    def record(self, case, n, ours, ref_label, ref, target_label=None, passed=None) -> None:
        self.rows.append((case, n, ours, ref_label, ref, target_label or "-", passed))

    def print(self) -> None:
        cw, rw, tw = self.w
        head = (
            f"{'case':<{cw}} {'N':>9} {'ours s':>9} {'reference':<{rw}} {'ref s':>9} "
            f"{'inputs/s':>11} {'ratio':>7}  {'target':<{tw}} result"
        )
        print(head)
        print("-" * len(head))
        for case, n, ours, ref_label, ref, target, passed in self.rows:
            verdict = "-" if passed is None else ("PASS" if passed else "MISS")
            print(
                f"{case:<{cw}} {n:>9,} {ours:>9.4f} {ref_label:<{rw}} {ref:>9.4f} "
                f"{n / ours:>11,.0f} {ref / ours:>7.2f}  {target:<{tw}} {verdict}"
            )
        for note in self.notes:
            print("note:", note)
