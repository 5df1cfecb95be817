"""Worker threads kept between runs (celestialflow.backends.parked): handed on, joined, let go."""

from __future__ import annotations

import contextvars
import os
import threading
import time

import pytest

from celestialflow import TaskChain, TaskManager
from celestialflow.backends import parked

VAR = contextvars.ContextVar("VAR", default="unset")


def _wait_parked(n: int) -> None:
    deadline = time.monotonic() + 5
    while parked.parked() < n and time.monotonic() < deadline:
        time.sleep(0.001)


def test_a_job_goes_to_a_parked_thread_under_its_own_name_and_is_joined():
    seen: list[tuple[int, str]] = []

    def job():
        seen.append((threading.get_ident(), threading.current_thread().name))

    first = parked.spawn(job, "first")
    assert first.join(5) and not first.is_alive()
    _wait_parked(1)
    second = parked.spawn(job, "second")
    assert second.join(5)
    assert seen[0][1] == "first" and seen[1][1] == "second"
    assert seen[1][0] == seen[0][0], "the second job did not reuse the parked thread"


def test_join_with_a_timeout_reports_a_job_still_running():
    release = threading.Event()
    running = parked.spawn(release.wait, "waits")
    assert not running.join(0.01) and running.is_alive()
    release.set()
    assert running.join(5)


def test_each_job_starts_with_a_fresh_context_as_in_a_new_thread():
    values: list[str] = []

    def job():
        values.append(VAR.get())
        VAR.set("set by an earlier job")

    for _ in range(3):
        parked.spawn(job, "ctx").join(5)
        _wait_parked(1)
    assert values == ["unset"] * 3


def test_a_parked_thread_exits_after_its_idle_time(monkeypatch):
    monkeypatch.setattr(parked, "IDLE", 0.05)
    before = set(threading.enumerate())
    parked.spawn(lambda: None, "short-lived").join(5)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        extra = [t for t in threading.enumerate() if t not in before and t.name == "short-lived"]
        if not extra:
            break
        time.sleep(0.01)
    assert not extra, "a parked thread outlived its idle time"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_hand_jobs_to_threads_it_does_not_have():
    parked.spawn(lambda: None, "before-fork").join(5)
    _wait_parked(1)
    pid = os.fork()
    if pid == 0:  # the child: the parked thread does not exist here
        ok = parked.parked() == 0 and parked.spawn(lambda: None, "in-child").join(5)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_second_run_starts_no_threads_when_the_first_ones_are_parked(monkeypatch):
    started: list[str] = []

    class Counting(threading.Thread):
        def start(self) -> None:
            started.append(self.name)
            super().start()

    monkeypatch.setattr(parked.threading, "Thread", Counting)

    def run() -> None:  # one stage, one worker: the stage's thread and the feeder's
        chain = TaskChain([TaskManager(abs, "thread", worker_limit=1, log_to_file=False)])
        chain.start(range(-20, 20))
        assert sorted(chain.get_results()["abs"]) == sorted(abs(x) for x in range(-20, 20))

    run()
    _wait_parked(2)
    started.clear()
    run()
    assert started == [], f"the second run started threads: {started}"


def test_a_parked_thread_holds_no_reference_to_the_job_it_ran():
    import gc
    import weakref

    class Job:
        def __call__(self) -> None:
            pass

    job = Job()
    ref = weakref.ref(job)
    assert parked.spawn(job, "forgets").join(5)
    del job
    gc.collect()
    assert ref() is None, "a parked thread keeps its last job (and what it refers to) alive"
