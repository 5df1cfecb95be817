"""Interrupting a batch in a child process: the child's code, and what is checked afterwards.

:func:`write_child` writes two files to a folder: ``batchlib.py``, a plugin
``slow`` (after ``peaks``) that sleeps per run and appends ``start``/``end``
lines with the wall time to the file named by ``WA_COMPUTE_LOG``, and
``child.py``, which runs one batch of it. The plugin lives in its own module
(on ``PYTHONPATH``) so that worker processes, forked or spawned by Dask, can
import it. :func:`run_child` starts the child in a session of its own, so a
signal can go to the child alone or to its whole process group (what Ctrl-C
in a terminal does).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BATCHLIB = r'''
import os, time
import numpy as np
from waveform_analysis import Plugin


def _log(word, run_id):
    line = f"{word} {run_id} {time.time():.6f} {os.getpid()}\n".encode()
    fd = os.open(os.environ["WA_COMPUTE_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


class Slow(Plugin):
    provides = "slow"
    depends_on = ("peaks",)
    version = "1"

    def compute(self, context, run_id, peaks):
        _log("start", run_id)
        time.sleep(float(os.environ.get("WA_SLEEP", "0.4")))
        _log("end", run_id)
        return np.asarray(peaks["area"], dtype=np.float64)
'''

CHILD = r'''
import json, os, sys
from loguru import logger
logger.remove()
from waveform_analysis import BatchProcessor, Context, standard_plugins
import batchlib


def main():
    executor, data_root, cache = sys.argv[1], sys.argv[2], sys.argv[3]
    runs = sys.argv[4].split(",")
    ctx = Context(storage_dir=cache, config={"data_root": data_root})
    ctx.register(standard_plugins())
    ctx.register(batchlib.Slow)
    print("ready", flush=True)
    out = BatchProcessor(ctx).process_runs(runs, "slow", max_workers=2, executor_type=executor, show_progress=False)
    print("statuses", json.dumps({r: m["status"] for r, m in out["meta"].items()}), flush=True)
    for run, error in out["errors"].items():
        print("error", run, error["type"], error["message"], error["traceback"], flush=True)


if __name__ == "__main__":  # Dask starts its workers with spawn, which imports this file again
    main()
'''


def write_child(folder: Path) -> Path:
    """Write ``batchlib.py`` and ``child.py`` into ``folder``; returns the child script."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "batchlib.py").write_text(BATCHLIB)
    script = folder / "child.py"
    script.write_text(CHILD)
    return script


@dataclass
class Computed:
    """One line of the compute log: ``start`` or ``end`` of a run, when, in which process."""

    word: str
    run_id: str
    time: float
    pid: int


def read_log(path: Path) -> list[Computed]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        word, run_id, t, pid = line.split()
        out.append(Computed(word, run_id, float(t), int(pid)))
    return out


def run_child(
    script: Path, args: list[str], log: Path, sleep: float, env_extra: dict[str, str] | None = None
) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(script.parent), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["WA_COMPUTE_LOG"] = str(log)
    env["WA_SLEEP"] = str(sleep)
    env.update(env_extra or {})
    proc = subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group: a group signal reaches nobody else
    )
    line = proc.stdout.readline().strip()
    if line != "ready":
        out, err = proc.communicate(timeout=60)
        raise AssertionError(f"child did not start: {line!r} {out} {err}")
    return proc


def wait_for_ends(log: Path, n: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Block until ``n`` runs have ended in the compute log (the batch is under way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(c.word == "end" for c in read_log(log)) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"child ended before {n} runs were computed: {proc.communicate()}")
        time.sleep(0.02)
    raise AssertionError(f"{n} runs not computed within {timeout} s")


# -- processes ---------------------------------------------------------------------------------
def descendants(pid: int) -> list[tuple[int, float]]:
    """(pid, start time) of every process below ``pid``, read from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                parents.setdefault(stat[1], []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            stat = _stat(child)
            if stat is not None:
                out.append((child, stat[3]))
                todo.append(child)
    return out


def _stat(pid: int) -> tuple[str, int, int, float] | None:
    """(state, ppid, process group, start time in ticks) of ``pid``, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), int(fields[2]), float(fields[19])


def alive(processes: list[tuple[int, float]], group: int) -> list[int]:
    """Which of ``processes`` still run (not zombies), plus any process still in ``group``."""
    left = set()
    for pid, started in processes:
        stat = _stat(pid)
        if stat is not None and stat[0] != "Z" and stat[3] == started:
            left.add(pid)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[2] == group and stat[0] != "Z":
                left.add(int(entry.name))
    return sorted(left)


def wait_gone(processes: list[tuple[int, float]], group: int, grace: float = 1.0) -> list[int]:
    """Processes still alive ``grace`` seconds after the child exited (orphans being reaped)."""
    deadline = time.monotonic() + grace
    while True:
        left = alive(processes, group)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


# -- the cache ------------------------------------------------------------------------------------
def half_written(cache: Path, temp_files: bool = True) -> list[str]:
    """What in the cache is not a whole entry: data files without metadata, wrong sizes, and
    (with ``temp_files``) temp files left behind."""
    bad = [f"temp file {p}" for p in cache.rglob("*.tmp")] if temp_files else []
    for meta_path in cache.rglob("*.json"):
        if meta_path.name.startswith("."):
            continue
        npy = meta_path.with_suffix(".npy")
        meta = json.loads(meta_path.read_text())
        if not npy.exists():
            bad.append(f"{meta_path}: no data file")
        elif npy.stat().st_size != meta["file_size"]:
            bad.append(f"{npy}: {npy.stat().st_size} bytes, metadata says {meta['file_size']}")
    for npy in cache.rglob("*.npy"):
        if not npy.name.startswith(".") and not npy.with_suffix(".json").exists():
            bad.append(f"{npy}: no metadata")
    return bad


def finished_runs(cache: Path, runs: list[str]) -> set[str]:
    """Runs whose final entry (``slow``) is in the cache."""
    return {r for r in runs if any((cache / r).glob("slow-*.json"))}
