"""CancellationToken: flag, callbacks, reset, thread safety."""

from __future__ import annotations

import threading

import pytest

from waveform_analysis import CancellationToken
from waveform_analysis.core.cancellation import CancellationToken as SeedPath
from waveform_analysis.errors import CancelledError


def test_seed_import_path():
    assert SeedPath is CancellationToken


def test_cancel_and_raise():
    t = CancellationToken()
    assert not t.cancelled and not t.is_cancelled()
    t.raise_if_cancelled()
    t.cancel("user asked")
    assert t.cancelled and t.is_cancelled()
    with pytest.raises(CancelledError, match="user asked"):
        t.raise_if_cancelled()
    t.reset()
    assert not t.cancelled
    t.raise_if_cancelled()


def test_callbacks_run_once_and_late_registration_fires():
    t = CancellationToken()
    seen = []
    t.on_cancel(lambda: seen.append("a"))
    t.cancel()
    t.cancel()
    assert seen == ["a"]
    t.on_cancel(lambda: seen.append("b"))
    assert seen == ["a", "b"]


def test_broken_callback_does_not_stop_others():
    t = CancellationToken()
    seen = []
    t.on_cancel(lambda: 1 / 0)
    t.on_cancel(lambda: seen.append(1))
    t.cancel()
    assert seen == [1] and t.cancelled


def test_cancel_from_another_thread_wakes_waiter():
    t = CancellationToken()
    th = threading.Thread(target=t.cancel)
    th.start()
    assert t.wait(timeout=30)
    th.join()


def test_concurrent_cancel_calls_callback_once():
    t = CancellationToken()
    seen = []
    lock = threading.Lock()

    def cb():
        with lock:
            seen.append(1)

    t.on_cancel(cb)
    threads = [threading.Thread(target=t.cancel) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert seen == [1]
