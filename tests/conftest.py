"""Shared test setup: logs and caches go to temporary folders, never the working tree."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_logs(tmp_path, monkeypatch):
    monkeypatch.setenv("CELESTIALFLOW_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("WAVEFORM_ANALYSIS_STORAGE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def warnings_log():
    """The loguru warnings logged during the test, as a list of messages."""
    from loguru import logger

    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(m.record["message"]), level="WARNING")
    yield messages
    logger.remove(sink)
