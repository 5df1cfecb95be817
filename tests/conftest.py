"""Shared test setup: logs and caches go to temporary folders, never the working tree."""

from __future__ import annotations

import signal

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
