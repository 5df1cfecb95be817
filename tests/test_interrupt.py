"""Ctrl-C: pools are closed, queued work is reported, a batch cancels and re-raises."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

GRAPH = r"""
import sys, time
from loguru import logger
logger.remove()
from celestialflow import TaskChain, TaskManager

def slow(x):
    time.sleep(0.01)
    return x

def fast(x):
    return x

chain = TaskChain([TaskManager(fast, log_to_file=False), TaskManager(slow, log_to_file=False)],
                  queue_capacity=50, record_failures=False)
print("ready", flush=True)
try:
    chain.start(range(100000))
except KeyboardInterrupt:
    print("pending", sum(len(v) for v in chain.pending.values()), flush=True)
    print("states", sorted({s["state"] for s in chain.get_status_dict().values()}), flush=True)
    sys.exit(3)
"""

PROCESS_POOL = r"""
import os, sys, time
from loguru import logger
logger.remove()
import multiprocessing
from celestialflow import TaskManager

def work(x):
    time.sleep(0.05)
    return x

m = TaskManager(work, execution_mode="process", worker_limit=2, log_to_file=False)
print("ready", flush=True)
try:
    m.start(range(2000))
except KeyboardInterrupt:
    time.sleep(0.2)
    print("children", len(multiprocessing.active_children()), flush=True)
    sys.exit(3)
"""


def interrupt(code: str, after: float = 0.8) -> str:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    return out


def test_graph_interrupt_reports_queued_work():
    out = interrupt(GRAPH)
    pending = int(out.split("pending ")[1].split()[0])
    assert pending > 0
    assert "running" not in out.split("states")[1]


def test_process_pool_closed_on_ctrl_c():
    out = interrupt(PROCESS_POOL)
    assert "children 0" in out


@pytest.mark.timeout(120)
def test_batch_ctrl_c_cancels_then_reraises(tmp_path):
    code = rf"""
import sys, time
from loguru import logger
logger.remove()
from waveform_analysis import BatchProcessor, Context, Plugin, standard_plugins
from waveform_analysis.synthetic import generate_runs
import numpy as np

class Slow(Plugin):
    provides = "slow"
    depends_on = ("peaks",)
    version = "1"
    def compute(self, context, run_id, peaks):
        time.sleep(0.3)
        return np.asarray(peaks["area"])

runs = [f"r{{i}}" for i in range(12)]
generate_runs({str(tmp_path / "DAQ")!r}, runs, n_waveforms=50, n_samples=200)
ctx = Context(storage_dir={str(tmp_path / "cache")!r}, config={{"data_root": {str(tmp_path / "DAQ")!r}}})
ctx.register(standard_plugins())
ctx.register(Slow)
p = BatchProcessor(ctx)
print("ready", flush=True)
try:
    p.process_runs(runs, "slow", max_workers=1, show_progress=False)
except KeyboardInterrupt:
    print("reraised", flush=True)
    sys.exit(3)
"""
    out = interrupt(code, after=1.5)
    assert "reraised" in out
    leftovers = [p for p in (tmp_path / "cache").rglob("*.tmp*")]
    assert leftovers == []
