"""Shared test setup: logs and caches go to temporary folders, never the working tree."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time

import pytest

# A suite started in the background (`make test &`, nohup) inherits an ignored
# SIGINT, and every child process would too: the Ctrl-C tests would then test
# nothing. A handler (unlike SIG_IGN) is reset to the default in each child.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _isolated_logs(tmp_path, monkeypatch):
    monkeypatch.setenv("CELESTIALFLOW_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("WAVEFORM_ANALYSIS_STORAGE_DIR", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def _kernel_thread_limit():
    """A test that builds a worker's Context in this process (``worker_context``) sets the
    process-wide kernel thread limit, as a worker process should; the next test gets it back."""
    from waveform_analysis import parallel

    before = parallel._limit
    yield
    parallel._limit = before


@pytest.fixture
def warnings_log():
    """The loguru warnings logged during the test, as a list of messages."""
    from loguru import logger

    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(m.record["message"]), level="WARNING")
    yield messages
    logger.remove(sink)


def pytest_sessionfinish(session, exitstatus):
    session.config._exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """End the session even when a failed test left a hung run behind: Python joins the
    threads of every thread and process pool at exit, so a run that never ends (a test's
    watchdog gave up on it) would keep the suite, and CI, waiting for ever. After a grace
    period the session names those threads, terminates its child processes and exits with
    the status pytest reported."""
    deadline = time.monotonic() + 10.0
    while True:
        left = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if not left:
        return
    print(f"\nthreads still running at the end of the session: {[t.name for t in left]}; "
          "terminating its child processes and exiting", file=sys.stderr)
    for child in multiprocessing.active_children():
        child.terminate()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(getattr(config, "_exit_status", 1))
