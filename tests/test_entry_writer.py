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


PADDED = np.dtype({"names": ["t", "flag"], "formats": ["<i8", "?"], "offsets": [0, 8], "itemsize": 16})


def filled(rows: np.ndarray, start: int) -> np.ndarray:
    rows["t"] = np.arange(start, start + len(rows))
    rows["flag"] = rows["t"] % 3 == 0
    rows.view(np.uint8).reshape(len(rows), 16)[:, 9:] = 0xAB  # stray padding bytes
    return rows


@pytest.mark.parametrize("n", [1, 2])
def test_rows_made_in_slots_are_the_entry_with_no_write_and_zeroed_padding(tmp_path, monkeypatch, n):
    kernel_threads(monkeypatch, n)
    writes = []
    real = entry_mod.write_piece
    monkeypatch.setattr(entry_mod, "write_piece", lambda f, p: (writes.append(len(p)), real(f, p)))
    s = CacheStorage(tmp_path)
    with s.writer("r", "x", KEY, {}) as w:
        for a in range(0, 9000, 3000):
            w.append(filled(w.slot(3000, PADDED), a))
        w.append(filled(np.zeros(500, PADDED), 9000))  # a piece made elsewhere goes on after them
        w.append(filled(w.slot(700, PADDED), 9500))
    assert writes == [500]
    assert w.result["t"].tolist() == list(range(10200))
    assert (w.result["flag"] == (w.result["t"] % 3 == 0)).all()
    raw = np.asarray(w.result).view(np.uint8).reshape(-1, 16)
    assert not raw[:, 9:].any()  # the padding bytes are zero, whatever the slot held
    assert s.verify("r", "x", KEY).status == "ok"


def test_a_slot_replaced_by_another_array_or_never_appended_leaves_only_what_was_appended(tmp_path):
    s = CacheStorage(tmp_path)
    with s.writer("r", "x", KEY, {}) as w:
        w.append(filled(w.slot(100, PADDED), 0))
        filled(w.slot(1000, PADDED), 50)
        w.append(filled(np.zeros(10, PADDED), 100))  # instead of the slot: written over it
        filled(w.slot(5000, PADDED), 7)  # the run ended here: never appended
    assert w.result["t"].tolist() == list(range(110))
    assert os.path.getsize(s.paths("r", "x", KEY)[0]) == w._header_size + 110 * 16
    assert s.verify("r", "x", KEY).status == "ok"


def test_a_slot_of_another_dtype_is_refused_at_the_append(tmp_path):
    from waveform_analysis.errors import CacheError

    s = CacheStorage(tmp_path)
    w = s.writer("r", "x", KEY, {})
    w.append(w.slot(10, PADDED))
    with pytest.raises(CacheError, match="does not continue"):
        w.append(w.slot(10, np.int64))
    assert leftovers(tmp_path) == [] and not s.entries("r")
