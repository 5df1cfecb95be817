"""Kernel threads (waveform_analysis/parallel.py): a cap per block, never a switch left set."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from waveform_analysis import parallel
from waveform_analysis.parallel import kernel_threads, n_threads, thread_limit, thread_map


@pytest.fixture
def eight(monkeypatch):
    monkeypatch.setenv(parallel.ENV_VAR, "8")
    monkeypatch.setattr(parallel, "_limit", None)


def test_blocks_nest_and_the_smallest_cap_applies(eight):
    assert n_threads() == 8 and thread_limit() is None
    with kernel_threads(3):
        assert n_threads() == 3
        with kernel_threads(5):
            assert n_threads() == 3  # a cap never raises the count
        with kernel_threads(1):
            assert n_threads() == 1 and thread_limit() == 1
        assert n_threads() == 3
    assert n_threads() == 8 and thread_limit() is None
    with kernel_threads(None):
        assert n_threads() == 8


def test_overlapping_blocks_in_two_threads_each_remove_only_their_own(eight):
    entered, leave = threading.Event(), threading.Event()

    def other():
        with kernel_threads(2):
            entered.set()
            leave.wait(10)

    t = threading.Thread(target=other)
    t.start()
    entered.wait(10)
    with kernel_threads(1):
        assert n_threads() == 1
    assert n_threads() == 2  # the other thread's block is still in force, in every thread
    leave.set()
    t.join()
    assert n_threads() == 8


def test_the_cap_goes_on_an_error(eight):
    with pytest.raises(KeyboardInterrupt), kernel_threads(1):
        raise KeyboardInterrupt
    assert n_threads() == 8


def test_process_setting_and_environment(monkeypatch):
    monkeypatch.setattr(parallel, "_limit", None)
    monkeypatch.setenv(parallel.ENV_VAR, "not a number")
    assert n_threads() >= 1
    parallel.limit_threads(2)
    try:
        assert n_threads() == 2 and thread_limit() == 2
        with kernel_threads(1):
            assert n_threads() == 1
    finally:
        parallel.limit_threads(None)
    assert thread_limit() is None


def test_thread_map_keeps_order(eight):
    assert thread_map(lambda x: x * x, range(20)) == [x * x for x in range(20)]
    with kernel_threads(1):
        assert thread_map(str, [1, 2]) == ["1", "2"]


def test_old_path_is_this_module_and_imports_load_no_numba():
    from waveform_analysis.daq import _threads

    assert _threads is parallel
    code = (
        "import sys, waveform_analysis.processing, waveform_analysis.plugins, "
        "waveform_analysis.saturation, waveform_analysis.hit_defaults; "
        "print('numba' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_row_parts_cover_every_row_once(eight):
    for n in (0, 1, 3999, 4000, 9001, 1_000_000):
        parts = parallel.row_parts(n)
        assert parts[0][0] == 0 and parts[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(parts[:-1], parts[1:]))
        assert len(parts) == (1 if n < 4000 else min(32, n // 2000))
    with kernel_threads(2):
        assert len(parallel.row_parts(1_000_000)) == 8


def test_a_part_of_a_thread_map_on_several_threads_maps_serially(eight):
    inner = thread_map(lambda _: (n_threads(), len(parallel.row_parts(100_000))), range(4))
    assert inner == [(1, 4)] * 4  # cut as for one thread, and run in the part's thread
    with kernel_threads(1):  # one thread: the parts run in the caller, which keeps its threads
        assert thread_map(lambda _: n_threads(), range(2)) == [1, 1]
    assert n_threads() == 8


def test_thread_map_raises_the_first_failing_parts_error(eight):
    def f(x):
        if x in (3, 5):
            raise ValueError(f"part {x}")
        return x

    with pytest.raises(ValueError, match="part 3"):
        thread_map(f, range(8))
    assert n_threads() == 8  # the caller, which took parts, is no longer marked busy
