"""The cache entry's writer thread: a piece is written while the next is made, failures and kills
leave no entry, and at most one piece is being written at a time."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from waveform_analysis import parallel
from waveform_analysis.core.storage import CacheStorage
from waveform_analysis.core.storage import entry as entry_mod
from waveform_analysis.errors import CacheWriteError

KEY = "k" * 20


def leftovers(root) -> list[str]:
    return sorted(p.name for p in root.rglob("*.tmp"))


def kernel_threads(monkeypatch, n: int) -> None:
    """This process's kernel threads set to ``n`` for the test (whatever an earlier test left)."""
    monkeypatch.setenv("WAVEFORM_ANALYSIS_THREADS", str(n))
    monkeypatch.setattr(parallel, "_limit", None)


@pytest.fixture()
def threads2(monkeypatch):
    kernel_threads(monkeypatch, 2)


def pieces(n: int = 4, rows: int = 1000) -> list[np.ndarray]:
    return [np.arange(i * rows, (i + 1) * rows, dtype=np.int64) for i in range(n)]


def test_a_piece_is_written_while_the_next_is_made_and_the_entry_is_whole(tmp_path, threads2, monkeypatch):
    real, go, writers = entry_mod.write_piece, threading.Event(), []

    def held_write(f, piece):
        writers.append(threading.current_thread().name)
        assert go.wait(30)
        real(f, piece)

    monkeypatch.setattr(entry_mod, "write_piece", held_write)
    s = CacheStorage(tmp_path)
    with s.writer("r", "x", KEY, {}) as w:
        w.append(pieces()[0])  # returns although its write is held: the caller goes on
        assert writers == ["cache-writer"]
        go.set()
        for p in pieces()[1:]:
            w.append(p)
    assert np.array_equal(w.result, np.concatenate(pieces()))
    assert np.array_equal(s.load("r", "x", KEY), np.concatenate(pieces())) and leftovers(tmp_path) == []


def test_at_most_one_piece_is_being_written(tmp_path, threads2, monkeypatch):
    real, lock, busy, most = entry_mod.write_piece, threading.Lock(), [0], [0]

    def counted(f, piece):
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        threading.Event().wait(0.01)  # long enough for the next append to come
        real(f, piece)
        with lock:
            busy[0] -= 1

    monkeypatch.setattr(entry_mod, "write_piece", counted)
    with CacheStorage(tmp_path).writer("r", "x", KEY, {}) as w:
        for p in pieces(6):
            w.append(p)
    assert most[0] == 1 and np.array_equal(w.result, np.concatenate(pieces(6)))


def test_one_kernel_thread_writes_in_the_callers_thread(tmp_path, monkeypatch):
    kernel_threads(monkeypatch, 1)
    real, writers = entry_mod.write_piece, []

    def named(f, piece):
        writers.append(threading.current_thread().name)
        real(f, piece)

    monkeypatch.setattr(entry_mod, "write_piece", named)
    with CacheStorage(tmp_path).writer("r", "x", KEY, {}) as w:
        for p in pieces(2):
            w.append(p)
    assert writers == [threading.current_thread().name] * 2


def fail_at(n: int, monkeypatch) -> None:
    real, count = entry_mod.write_piece, [0]

    def write_or_fail(f, piece):
        count[0] += 1
        if count[0] == n:
            f.write(b"\0" * 100)  # part of the piece reached the file
            raise OSError(errno.ENOSPC, "No space left on device")
        real(f, piece)

    monkeypatch.setattr(entry_mod, "write_piece", write_or_fail)


def test_a_failed_write_is_raised_by_the_next_append_and_nothing_is_kept(tmp_path, threads2, monkeypatch):
    fail_at(2, monkeypatch)
    s = CacheStorage(tmp_path)
    p = pieces()
    done = []
    with pytest.raises(CacheWriteError) as info:
        with s.writer("r", "x", KEY, {}) as w:
            for i in range(3):
                w.append(p[i])  # the second piece's write fails in the writer thread ...
                done.append(i)
    assert done == [0, 1]  # ... and the third append raises it
    assert info.value.errno == errno.ENOSPC and "nothing was kept" in str(info.value)
    assert s.load("r", "x", KEY) is None and leftovers(tmp_path) == [] and not list(tmp_path.rglob("*.json"))


def test_a_failed_write_of_the_last_piece_is_raised_by_the_commit(tmp_path, threads2, monkeypatch):
    fail_at(3, monkeypatch)
    s = CacheStorage(tmp_path)
    w = s.writer("r", "x", KEY, {})
    for p in pieces(3):
        w.append(p)
    with pytest.raises(CacheWriteError, match="nothing was kept"):
        w.commit()
    assert s.load("r", "x", KEY) is None and leftovers(tmp_path) == []
    assert np.array_equal(s.save("r", "x", KEY, np.arange(5), {}), np.arange(5))  # the next write works


def test_an_interrupt_while_a_piece_is_written_waits_for_it_and_keeps_nothing(tmp_path, threads2, monkeypatch):
    real, go = entry_mod.write_piece, threading.Event()

    def held_write(f, piece):
        assert go.wait(30)
        real(f, piece)

    monkeypatch.setattr(entry_mod, "write_piece", held_write)
    timer = threading.Timer(0.2, go.set)
    timer.start()
    s = CacheStorage(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with s.writer("r", "x", KEY, {}) as w:
            w.append(pieces()[0])
            raise KeyboardInterrupt  # Ctrl-C while the writer thread still writes
    timer.join()
    assert s.load("r", "x", KEY) is None and leftovers(tmp_path) == []


KILLED = textwrap.dedent(
    """
    import os, signal, sys, threading
    import numpy as np
    from waveform_analysis.core.storage import CacheStorage, entry

    real, count = entry.write_piece, [0]

    def write_and_die(f, piece):
        count[0] += 1
        if count[0] < 3:
            return real(f, piece)
        f.write(b"partial")
        f.flush()
        if sys.argv[2] == "writer":
            os.kill(os.getpid(), signal.SIGKILL)  # the plug pulled in the writer thread's write
        threading.Event().wait()  # the write hangs; the caller's thread is killed below

    entry.write_piece = write_and_die
    with CacheStorage(sys.argv[1]).writer("r", "x", "k" * 20, {}) as w:
        for i in range(3):
            w.append(np.arange(i * 10, i * 10 + 10))
        if sys.argv[2] == "caller":
            os.kill(os.getpid(), signal.SIGKILL)  # killed while making the next piece
        w.append(np.arange(30, 40))
    """
)


@pytest.mark.parametrize("where", ["writer", "caller"])
def test_a_kill_during_a_threaded_write_leaves_no_entry_and_is_cleaned(tmp_path, where):
    root, script = tmp_path / "cache", tmp_path / "killed.py"
    script.write_text(KILLED)
    env = dict(os.environ, WAVEFORM_ANALYSIS_THREADS="2")
    res = subprocess.run([sys.executable, str(script), str(root), where], capture_output=True, timeout=120,
                         env=env)  # fmt: skip
    assert res.returncode == -signal.SIGKILL, res.stderr.decode()[-2000:]
    assert leftovers(root), "the killed writer leaves its temporary file"
    s = CacheStorage(root)
    assert s.load("r", "x", KEY) is None  # no JSON was committed
    assert np.array_equal(s.save("r", "x", KEY, np.arange(10), {}), np.arange(10)) and leftovers(root) == []
