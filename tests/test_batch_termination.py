"""SIGTERM during a batch: stopped like Ctrl-C, previous handler restored, exit status 143."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from waveform_analysis import BatchProcessor, Context
from waveform_analysis.batch.signals import BatchTerminated, sigterm_as_interrupt


@pytest.fixture
def default_sigterm():
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGTERM, previous)


def _terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(1)  # the handler runs in the main thread meanwhile (never this long)


def test_sigterm_exits_143_after_the_block_and_restores_the_default(default_sigterm):
    with pytest.raises(SystemExit) as info:
        with sigterm_as_interrupt():
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
            _terminate_self()
    assert info.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_callers_handler_is_called_afterwards_and_kept(default_sigterm):
    seen = []

    def mine(signum, frame):
        seen.append(signum)

    signal.signal(signal.SIGTERM, mine)
    with pytest.raises(BatchTerminated):
        with sigterm_as_interrupt():
            _terminate_self()
    assert seen == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is mine


def test_handler_restored_when_the_block_ends_normally_or_with_an_error(default_sigterm):
    with sigterm_as_interrupt():
        pass
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    with pytest.raises(ValueError):
        with sigterm_as_interrupt():
            raise ValueError("boom")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_ignored_sigterm_stays_ignored(default_sigterm):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with sigterm_as_interrupt():
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN


def test_other_threads_change_nothing(default_sigterm):
    seen = []

    def body():
        with sigterm_as_interrupt():
            seen.append(signal.getsignal(signal.SIGTERM))

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert seen == [signal.SIG_DFL]


def _stop_on_r2(ctx, run_id):
    if run_id == "r2":
        _terminate_self()
    return run_id


def test_batch_stops_on_sigterm_then_exits_143(tmp_path, default_sigterm):
    ctx = Context(storage_dir=str(tmp_path / "cache"))
    runs = [f"r{i}" for i in range(6)]
    with pytest.raises(SystemExit) as info:
        BatchProcessor(ctx).process_with_custom_func(runs, _stop_on_r2, max_workers=1, show_progress=False)
    assert info.value.code == 143
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
