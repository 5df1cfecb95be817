"""Online processing: a writer process fills a DAQ folder while ``waveform-analysis watch`` runs.

The writer (tests/online_writer.py) copies runs made by ``waveform_analysis.synthetic``
segment by segment, each file in two halves; the test tells it when to write the next
piece, so the order of events is fixed while both sides are real processes.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from waveform_analysis import BatchProcessor, Context, standard_plugins
from waveform_analysis.core.storage import verify_folder
from waveform_analysis.online import Watcher
from waveform_analysis.synthetic import generate_run

WRITER = Path(__file__).with_name("online_writer.py")
TIMEOUT = 60.0  # per expected line: generous for a loaded machine, a few seconds when idle
SEGMENTS = {"run_001": 3, "run_002": 2}


def _make_staging(path: Path) -> Path:
    for i, (run, n) in enumerate(SEGMENTS.items()):
        generate_run(path, run, layout="compass2", n_channels=2, n_waveforms=30, n_samples=256,
                     n_segments=n, seed=i)  # fmt: skip
    return path


@pytest.fixture(scope="module")
def staging(tmp_path_factory) -> Path:
    return _make_staging(tmp_path_factory.mktemp("staging"))


class Proc:
    """A child process whose stdout lines are read by a thread, with ``expect``."""

    def __init__(self, args: list[str], **kw) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, env=env, **kw)  # fmt: skip
        self.lines: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.p.stdout:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def expect(self, pattern: str, timeout: float = TIMEOUT) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self._q.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no line matching {pattern!r}; output so far:\n" + "\n".join(self.lines))

    def finish(self, timeout: float = TIMEOUT) -> int:
        try:
            code = self.p.wait(timeout=timeout)
        finally:
            if self.p.poll() is None:
                self.p.kill()
        while True:
            line = self._q.get(timeout=5)
            if line is None:
                return code
            self.lines.append(line)


class Writer(Proc):
    def __init__(self, staging: Path, daq: Path) -> None:
        super().__init__([sys.executable, str(WRITER), str(staging), str(daq)], stdin=subprocess.PIPE)

    def do(self, command: str) -> None:
        self.p.stdin.write(command + "\n")
        self.p.stdin.flush()
        self.expect("^ok$")

    def close(self) -> None:
        self.p.stdin.close()
        assert self.finish() == 0


def _watch(daq: Path, cache: Path, *extra: str) -> Proc:
    return Proc([sys.executable, "-m", "waveform_analysis", "watch", str(daq), "--cache", str(cache),
                 "--segments", "--interval", "0.1", "--settle", "600", *extra])  # fmt: skip


def _units(lines: list[str], how: str) -> list[str]:
    """``run_001 segment 0`` / ``run_001 run`` for every unit reported ``how`` (computed, in cache)."""
    return [f"{m[1]} {m[2]}" for m in (re.match(rf"^(run_\d+): (segment \d+|run) {how}", x) for x in lines) if m]


def _batch(daq: Path, cache: Path) -> dict[str, np.ndarray]:
    ctx = Context(storage_dir=cache, config={"data_root": str(daq)})
    ctx.register(standard_plugins())
    out = BatchProcessor(ctx).process_runs(list(SEGMENTS), "peaks", show_progress=False)
    assert not out["errors"], out["errors"]
    return {r: np.asarray(ctx.get_data(r, "peaks")) for r in SEGMENTS}


def _cached(daq: Path, cache: Path) -> dict[str, np.ndarray]:
    """The watcher's entries, under the keys of the command line's Context (whose adapter
    is the format it recognised, as for ``run``)."""
    ctx = Context(storage_dir=cache, config={"data_root": str(daq), "daq_adapter": "compass"})
    ctx.register(standard_plugins())
    assert all(ctx.is_cached(r, "peaks") for r in SEGMENTS)
    return {r: np.asarray(ctx.get_data(r, "peaks")) for r in SEGMENTS}


def test_watch_follows_a_writer_and_matches_a_batch(tmp_path, staging):
    daq, cache = tmp_path / "DAQ", tmp_path / "cache"
    daq.mkdir()
    watcher = _watch(daq, cache)
    writer = Writer(staging, daq)
    try:
        watcher.expect("^watching ")
        writer.do("seg run_001 0")
        writer.do("seg run_001 1")  # closes segment 0
        watcher.expect("^run_001: segment 0 computed")
        writer.do("seg run_001 2")  # closes segment 1
        watcher.expect("^run_001: segment 1 computed")
        writer.do("stop run_001")
        watcher.expect("^run_001: run computed")
        writer.do("run run_002")  # a second run, later, written whole
        watcher.expect("^run_002: run computed")
        watcher.p.send_signal(signal.SIGINT)
        assert watcher.finish() == 0
    finally:
        writer.close()
        if watcher.p.poll() is None:
            watcher.p.kill()
    computed = _units(watcher.lines, "computed")
    assert len(computed) == len(set(computed))  # every unit once
    assert computed[:3] == ["run_001 segment 0", "run_001 segment 1", "run_001 run"]
    # run_002's segment 0 is closed while the writer writes segment 1, before run.info:
    # the watcher may have seen that moment
    assert computed[3:] in (["run_002 run"], ["run_002 segment 0", "run_002 run"])
    assert _units(watcher.lines, "in cache") == []
    assert any(re.match(r"^run_002\s+done\b", x) for x in watcher.lines), watcher.lines
    checks = verify_folder(cache)
    assert checks and all(c.ok for c in checks)
    assert not list(cache.rglob("*.tmp"))
    # the watcher's results are those of a batch over the finished folder
    batch, watched = _batch(daq, tmp_path / "batch-cache"), _cached(daq, cache)
    for run in SEGMENTS:
        assert len(watched[run]) > 0
        assert np.array_equal(watched[run], batch[run]), run


def test_stop_and_start_again_processes_nothing_twice(tmp_path, staging):
    daq, cache = tmp_path / "DAQ", tmp_path / "cache"
    daq.mkdir()
    writer = Writer(staging, daq)
    try:
        first = _watch(daq, cache)
        first.expect("^watching ")
        writer.do("seg run_001 0")
        writer.do("seg run_001 1")
        first.expect("^run_001: segment 0 computed")
        first.p.send_signal(signal.SIGINT)  # stops after the unit in hand
        assert first.finish() == 0
        assert any(x.startswith("stopped") for x in first.lines), first.lines
        checks = verify_folder(cache)
        assert checks and all(c.ok for c in checks) and not list(cache.rglob("*.tmp"))

        writer.do("seg run_001 2")  # written while no watcher runs
        second = _watch(daq, cache)
        second.expect("^run_001: segment 1 computed")
        writer.do("stop run_001")
        second.expect("^run_001: run computed")
        writer.do("run run_002")
        second.expect("^run_002: run computed")
        second.p.send_signal(signal.SIGINT)
        assert second.finish() == 0

        third = _watch(daq, cache, "--idle-exit", "0.2")  # all done: all found in the cache
        assert third.finish() == 0
    finally:
        writer.close()
    assert _units(first.lines, "computed") == ["run_001 segment 0"]
    assert _units(second.lines, "in cache") == ["run_001 segment 0"]
    computed = _units(second.lines, "computed")
    assert computed[:2] == ["run_001 segment 1", "run_001 run"]
    assert computed[2:] in (["run_002 run"], ["run_002 segment 0", "run_002 run"])
    assert _units(third.lines, "computed") == []
    assert sorted(_units(third.lines, "in cache")) == ["run_001 run", "run_002 run"]
    batch, watched = _batch(daq, tmp_path / "batch-cache"), _cached(daq, cache)
    for run in SEGMENTS:
        assert np.array_equal(watched[run], batch[run]), run


def _copy_segment(staging: Path, daq: Path, run: str, k: int) -> None:
    sys.path.insert(0, str(WRITER.parent))
    try:
        from online_writer import grow, segment_of
    finally:
        sys.path.remove(str(WRITER.parent))
    dst = daq / run / "RAW"
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted((staging / run / "RAW").iterdir()):
        if segment_of(f, run) == k:
            grow(f, dst / f.name, pause=0)


def test_live_results_grow_segment_by_segment(tmp_path, staging, warnings_log):
    """The Python API: status per run, live results made of the segments so far."""
    daq = tmp_path / "DAQ"
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(daq)})
    ctx.register(standard_plugins())
    daq.mkdir()
    (daq / "run_001").mkdir()
    watcher = Watcher(ctx, "peaks", segments=True, settle=600, poll=True)
    watcher.step()
    assert watcher.status()["run_001"]["state"] == "waiting"
    assert watcher.status()["run_001"]["reason"] == "no data files yet"
    sizes = []
    for k in range(3):
        _copy_segment(staging, daq, "run_001", k)
        assert watcher.step() == (1 if k else 0)  # segment k-1 closed by segment k
        sizes.append(len(watcher.live_data("run_001")))
    status = watcher.status()["run_001"]
    assert status["state"] == "waiting" and status["segments"] == [0, 1]
    assert status["records"] == 2 * 2 * 10  # two segments of 10 records on each of 2 channels
    assert set(status["rate_hz"]) == {"0:0", "0:1"} and all(v > 0 for v in status["rate_hz"].values())
    assert sizes[0] == 0 < sizes[1] < sizes[2]
    live = watcher.live_data("run_001")
    st = watcher.live_data("run_001", "st_waveforms")
    assert len(st) == 40 and np.all(live["record_i"] < len(st))
    # each live peak points at a record of its own channel
    assert np.array_equal(st["channel"][live["record_i"]], live["channel"])
    assert warnings_log == []  # segments past the first read with the first's header, quietly
    # CoMPASS writes run.info (a settings file, in the fingerprint) while the run is on:
    # the segments' entries stay those of the live view, and nothing is computed again
    (daq / "run_001" / "run.info").write_text("time.start=2025/03/19 09:47:46.724-0400\n")
    assert watcher.step() == 0
    assert np.array_equal(watcher.live_data("run_001"), live)
    spectra = watcher.spectra("run_001", bins=20)
    assert set(spectra["counts"]) == {"0:0", "0:1"} and len(spectra["edges"]) == 21
    assert sum(map(sum, spectra["counts"].values())) == len(live)

    (daq / "run_001" / "run.info").write_text("time.stop=2025/03/19 09:53:05.651-0400\n")
    assert watcher.step() == 1
    status = watcher.status()["run_001"]
    assert status["state"] == "done" and status["records"] == 60 and status["computed"] == 3
    assert np.array_equal(watcher.live_data("run_001"), ctx.get_data("run_001", "peaks"))


def test_a_run_without_run_info_is_complete_once_its_files_settle(tmp_path, staging):
    daq = tmp_path / "DAQ"
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(daq)})
    ctx.register(standard_plugins())
    for k in range(2):
        _copy_segment(staging, daq, "run_002", k)
    watcher = Watcher(ctx, "peaks", settle=0.3, poll=True)
    assert watcher.step() == 0  # just written: not settled yet
    assert watcher.status()["run_002"]["state"] == "waiting"
    time.sleep(0.4)
    assert watcher.step() == 1
    assert watcher.status()["run_002"]["state"] == "done"
    assert watcher.step() == 0  # done runs are not looked at again


def test_a_failing_run_is_reported_and_the_others_go_on(tmp_path, staging):
    daq = tmp_path / "DAQ"
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(daq)})
    ctx.register(standard_plugins())
    for run in SEGMENTS:
        for k in range(SEGMENTS[run]):
            _copy_segment(staging, daq, run, k)
        (daq / run / "run.info").write_text("time.stop=2025/03/19 09:53:05.651-0400\n")
    bad = sorted((daq / "run_002" / "RAW").iterdir())[0]
    bad.write_bytes(bad.read_bytes().replace(b";", b",", 40))  # comma-separated rows
    watcher = Watcher(ctx, "peaks", settle=600, poll=True)
    watcher.step()
    status = watcher.status()
    assert status["run_001"]["state"] == "done"
    assert status["run_002"]["state"] == "failed"
    assert "FormatError" in status["run_002"]["reason"] and bad.name in status["run_002"]["reason"]
    assert watcher.step() == 0  # the same files fail the same way: not tried again


def test_context_watch_in_the_background(tmp_path, staging):
    daq = tmp_path / "DAQ"
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(daq)})
    ctx.register(standard_plugins())
    daq.mkdir()
    watcher = ctx.watch("peaks", background=True, poll=True, interval=0.05, settle=600)
    try:
        _copy_segment(staging, daq, "run_002", 0)
        _copy_segment(staging, daq, "run_002", 1)
        (daq / "run_002" / "run.info").write_text("time.stop=2025/03/19 09:53:05.651-0400\n")
        end = time.monotonic() + TIMEOUT
        while watcher.status().get("run_002", {}).get("state") != "done":
            assert time.monotonic() < end, watcher.status()
            time.sleep(0.05)
    finally:
        watcher.stop()
    assert len(watcher.live_data("run_002")) == len(ctx.get_data("run_002", "peaks")) > 0


def test_ctrl_c_stops_after_the_segment_in_hand(tmp_path, staging):
    """A real SIGINT in the middle of a segment: that segment's entries are written whole,
    the next is left for the next watcher, which finds the first in the cache."""
    from waveform_analysis.plugins import PeaksPlugin

    class InterruptedPeaks(PeaksPlugin):  # the standard plugin; Ctrl-C arrives while it runs
        hits = 0

        def compute_chunks(self, context, run_id, chunks):
            if not InterruptedPeaks.hits:
                InterruptedPeaks.hits += 1
                os.kill(os.getpid(), signal.SIGINT)
            yield from super().compute_chunks(context, run_id, chunks)

    daq = tmp_path / "DAQ"
    for k in range(3):
        _copy_segment(staging, daq, "run_001", k)
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(daq)})
    ctx.register(standard_plugins(), InterruptedPeaks(), replace=True)
    watcher = Watcher(ctx, "peaks", segments=True, settle=600, poll=True)
    status = watcher.run()  # returns once stopped
    assert InterruptedPeaks.hits == 1 and watcher.stopped
    assert status["run_001"]["segments"] == [0] and status["run_001"]["computed"] == 1
    checks = verify_folder(tmp_path / "cache")
    assert sorted(c.data_name for c in checks) == ["peaks", "st_waveforms"] and all(c.ok for c in checks)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler given back

    again = Watcher(ctx, "peaks", segments=True, settle=600, poll=True)
    assert again.step() == 1  # segment 1 only
    assert again.status()["run_001"]["from_cache"] == 1 and again.status()["run_001"]["computed"] == 1


def test_a_done_run_whose_files_change_is_processed_again(tmp_path, staging):
    daq = tmp_path / "DAQ"
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(daq)})
    ctx.register(standard_plugins())
    for k in range(2):
        _copy_segment(staging, daq, "run_002", k)
    info = daq / "run_002" / "run.info"
    info.write_text("time.start=2025/03/19 09:47:46.724-0400\n")  # CoMPASS: being taken
    watcher = Watcher(ctx, "peaks", settle=0, poll=True, recheck=0)
    assert watcher.step() == 0  # settled, but run.info says the run is still on
    assert watcher.status()["run_002"]["reason"].startswith("being taken")
    info.write_text("time.stop=2025/03/19 09:53:05.651-0400\n")
    assert watcher.step() == 1
    assert watcher.step() == 0  # rechecked: unchanged
    last = sorted((daq / "run_002" / "RAW").iterdir())[-1]
    rows = last.read_bytes().splitlines(keepends=True)[-2:]
    with open(last, "ab") as fh:  # the same triggers again, e.g. a file copied in twice
        fh.write(b"".join(rows))
    assert watcher.step() == 1
    status = watcher.status()["run_002"]
    assert status["state"] == "done" and status["records"] == 60 + 2


def test_folder_events_name_the_run_that_changed(tmp_path):
    pytest.importorskip("watchdog")
    from waveform_analysis.online.events import FolderEvents

    (tmp_path / "run_007" / "RAW").mkdir(parents=True)
    events = FolderEvents(tmp_path)
    try:
        assert events.mode != "poll"
        (tmp_path / "run_007" / "RAW" / "DataR_CH0@V1730_1463_run_007.CSV").write_bytes(b"x\n")
        assert events.wait(TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        touched: set[str] = set()
        while "run_007" not in touched and time.monotonic() < deadline:
            touched |= events.take_touched()
            time.sleep(0.01)
        assert touched == {"run_007"}
    finally:
        events.close()
    polling = FolderEvents(tmp_path, poll=True)
    assert polling.mode == "poll" and not polling.wait(0.01)
