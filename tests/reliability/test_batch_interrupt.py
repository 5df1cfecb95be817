"""Ctrl-C and SIGTERM in the middle of a batch, for thread, process and Dask executors.

Each case runs a batch of 8 generated runs (``st_waveforms -> peaks -> slow``,
``slow`` sleeping per run) in a child process, signals it once some runs are
done, and checks that the child exits within 2 s of the stages that were running
finishing (4 s for Dask under SIGTERM to the group, whose nannies restart the
killed workers first), that every run it had started was finished (none cut while
computing), that no process of it is left, that the cache holds only whole
entries, and that a second child running the same batch computes exactly the
runs the first did not finish; and that nothing queued when the signal came
started afterwards. SIGINT must end the child by KeyboardInterrupt, SIGTERM with
status 143 (128 + 15) after the same clean-up. SIGTERM sent to the whole process
group also kills process and Dask workers on the spot: there the runs they were
computing may be cut (and recomputed on the rerun) and a cut write may leave its
temp file; committed entries must still be whole.

``WA_INTERRUPT_LONG=1`` runs every executor with every signal (12 cases, about
2 minutes); by default one case per executor runs, and SIGTERM to the group with Dask.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import time

import pytest

from waveform_analysis.synthetic import generate_runs

from .interruptlib import (
    descendants,
    finished_runs,
    half_written,
    kill_all,
    read_log,
    run_child,
    wait_for_ends,
    wait_gone,
    write_child,
)

RUNS = [f"run{i}" for i in range(8)]
SLEEP = 0.4  # per run in the last stage: 8 runs on 2 workers take about 2 s
SLACK = 2.0  # the bound: exit within 2 s of the running stages finishing

HAS_DASK = importlib.util.find_spec("distributed") is not None
EXECUTORS = [
    "thread",
    "process",
    pytest.param("dask", marks=pytest.mark.skipif(not HAS_DASK, reason="needs dask.distributed")),
]
# Ctrl-C in a terminal signals the whole foreground process group; `kill` signals one process.
SIGNALS = [("SIGINT", "group"), ("SIGINT", "pid"), ("SIGTERM", "pid"), ("SIGTERM", "group")]
# Every executor meets every signal with WA_INTERRUPT_LONG=1; by default each executor
# meets one (about 10 s each: two interpreters start per case).
LONG = os.environ.get("WA_INTERRUPT_LONG") == "1"
SHORT = {("thread", "SIGTERM", "pid"), ("process", "SIGINT", "group"), ("dask", "SIGINT", "group"),
         ("dask", "SIGTERM", "group")}  # the last hung: workers forked with the batch's SIGTERM handler


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("interrupt-daq")
    generate_runs(root, RUNS, n_waveforms=150, n_samples=200)
    return root


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig,target", SIGNALS, ids=[f"{s}-{t}" for s, t in SIGNALS])
@pytest.mark.parametrize("executor", EXECUTORS)
def test_signal_mid_batch(tmp_path, data_root, executor, sig, target):
    if not LONG and (executor, sig, target) not in SHORT:
        pytest.skip("a few cases by default; WA_INTERRUPT_LONG=1 runs them all")
    script = write_child(tmp_path / "child")
    cache, log = tmp_path / "cache", tmp_path / "computed.log"
    args = [executor, str(data_root), str(cache), ",".join(RUNS)]
    signum = getattr(signal, sig)

    proc = run_child(script, args, log, SLEEP)
    try:
        wait_for_ends(log, 2, proc)
        family = descendants(proc.pid)
        sent = time.time()
        if target == "group":
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
        exited = time.time()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = wait_gone(family, proc.pid)
    kill_all(left)

    # the exit status says what happened: KeyboardInterrupt, or SIGTERM's 128 + 15
    expected = (-signal.SIGINT, 130) if sig == "SIGINT" else (128 + signal.SIGTERM,)
    assert proc.returncode in expected, (proc.returncode, out, err[-3000:])
    assert "statuses" not in out  # the batch did not run to its end
    assert left == [], f"processes left behind: {left}"

    first = read_log(log)
    busy_until = max([sent] + [c.time for c in first] + [p.stat().st_mtime for p in cache.rglob("*.json")])
    print(f"{executor} {sig} to {target}: exit {exited - sent:.2f} s after the signal, "
          f"{exited - busy_until:.2f} s after the last stage ended")  # fmt: skip
    # SIGTERM to the whole group also reaches the worker processes, whose default is to
    # die at once (the pools stop their workers with SIGTERM too): the runs they were
    # computing are cut, and a write cut half way leaves its temp file for the cache's
    # next write of that entry to remove. Committed entries are whole all the same.
    workers_killed = sig == "SIGTERM" and target == "group" and executor != "thread"
    # Dask's nannies then start their workers again (1.5-2 s, measured) and its scheduler
    # reschedules the cut runs on them before the cluster can close: 3.1-3.8 s from the
    # signal on an idle machine, whether or not a rescheduled run got to its last stage
    slack = SLACK + (2.0 if workers_killed and executor == "dask" else 0.0)
    assert exited - busy_until < slack, (
        f"exited {exited - sent:.2f} s after the signal, {exited - busy_until:.2f} s after the last stage ended"
    )
    assert half_written(cache, temp_files=not workers_killed) == []
    done = finished_runs(cache, RUNS)
    started = {c.run_id for c in first if c.word == "start"}
    ended = {c.run_id for c in first if c.word == "end"}
    assert 2 <= len(done) < len(RUNS)
    if not workers_killed:
        assert started == ended, f"runs cut while computing: {sorted(started - ended)}"
    assert done <= ended
    # what had not started when the signal came never starts (a run may slip in while
    # the signal is being handled: a few milliseconds, far below half a run)
    # (Dask's scheduler itself retries a task whose worker was killed, on the worker the
    # nanny starts again: not ours to stop)
    late = sorted(c.run_id for c in first if c.word == "start" and c.time > sent + SLEEP / 2)
    if not (workers_killed and executor == "dask"):
        assert late == [], f"runs started after the batch was interrupted: {late}"

    # the same batch again, not interrupted: only what had not finished is computed
    proc = run_child(script, args, log, SLEEP)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err[-3000:]
    assert '"success"' in out and "failed" not in out, out
    again = [c.run_id for c in read_log(log)[len(first) :] if c.word == "start"]
    assert sorted(again) == sorted(set(RUNS) - done)
    assert finished_runs(cache, RUNS) == set(RUNS)
    assert half_written(cache, temp_files=not workers_killed) == []
    assert wait_gone([], proc.pid) == []
