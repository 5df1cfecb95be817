"""GraphRun: the status snapshot, the event channel, and a run's state apart from its stage."""

from __future__ import annotations

import threading
import time

import pytest

from celestialflow import Hook, TaskChain, TaskGraph, TaskManager
from celestialflow.events import GraphFinished, StageFinished, StageStarted, TasksFailed
from celestialflow.executors import SerialBackend
from celestialflow.graphrun import StageStatus
from celestialflow.hooks import HookSet
from celestialflow.queues import IterSource
from celestialflow.retry import Backoff
from celestialflow.runner import Runner
from celestialflow.runstate import RunState, StagePolicy


def stage(func, **kw):
    kw.setdefault("log_to_file", False)
    return TaskManager(func, **kw)


def inc(x):
    return x + 1


def fail_odd(x):
    if x % 2:
        raise ValueError(f"odd {x}")
    return x


def always_fails(x):
    raise KeyError(x)


def test_status_before_any_run_is_pending():
    g = TaskChain([stage(inc), stage(inc)])
    status = g.status()
    assert list(status) == ["inc", "inc-2"]
    assert all(s == StageStatus("pending", "idle", 0, 0, 0, 0, 0, 0, 0, 0, 0.0) for s in status.values())


def test_status_after_a_run_counts_every_item():
    g = TaskChain([stage(inc), stage(fail_odd, max_retries=1)], record_failures=False)
    g.add_stage(stage(inc, name="spare"))  # never fed: stays pending
    g.start(list(range(100)) + [0, 1])  # two duplicates
    status = g.status()
    first, second = status["inc"], status["fail_odd"]
    assert (first.state, first.detail) == ("done", "finished")
    assert first.received == 102 and first.processed == 102 and first.duplicates == 2
    assert first.succeeded == 100 and first.queued == 0 and first.in_flight == 0
    assert (second.state, second.detail) == ("failed", "failed")
    assert second.received == 100 and second.succeeded == 50 and second.failed == 50
    assert second.retried == 0  # ValueError is not retried by default
    assert status["spare"].state == "done" and status["spare"].received == 0
    assert first.elapsed > 0


def test_status_counts_retries():
    m = stage(always_fails, max_retries=2, backoff_base=0.0, backoff_jitter=0.0)
    m.add_retry_exceptions(KeyError)
    g = TaskChain([m], record_failures=False)
    g.start(range(5))
    s = g.status()["always_fails"]
    assert (s.failed, s.retried, s.succeeded) == (5, 10, 0)


def test_status_while_running_and_the_dict_shape():
    release = threading.Event()

    def wait(x):
        release.wait(10)
        return x

    g = TaskChain([stage(inc), stage(wait)], queue_capacity=10)
    t = threading.Thread(target=g.start, args=(range(500),))
    t.start()
    try:
        deadline = time.monotonic() + 10
        while g.status()["wait"].in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        s = g.status()["wait"]
        assert s.state == "running" and s.in_flight > 0 and s.succeeded == 0
        assert s.received >= s.processed >= s.in_flight
        assert g.last_run is not None and g.last_run.elapsed_now() > 0
    finally:
        release.set()
        t.join()
    d = g.get_status_dict()["wait"]
    assert set(d) >= {
        "state", "processed", "succeeded", "failed", "duplicated", "retried",
        "elapsed", "waiting", "in_flight", "execution_mode", "stage_mode", "received",
    }
    assert d["state"] == "finished" and d["succeeded"] == 500 and d["received"] == 500


def test_a_crashed_stage_is_failed():
    class Broken(TaskManager):
        def process_result_dict(self):
            raise RuntimeError("hook bug")

    g = TaskChain([Broken(inc, log_to_file=False)])
    with pytest.raises(RuntimeError, match="hook bug"):
        g.start(range(3))
    s = g.status()["inc"]
    assert (s.state, s.detail) == ("failed", "crashed")


def test_events_of_one_stage_in_order():
    g = TaskChain([stage(fail_odd)], name="ev", record_failures=False)
    events = []
    g.events.subscribe(events.append)
    g.start([0, 1, 2])
    assert [type(e) for e in events] == [StageStarted, TasksFailed, StageFinished, GraphFinished]
    started, failed, finished, end = events
    assert (started.graph, started.stage) == ("ev", "fail_odd")
    (failure,) = failed.failures
    assert (failure.task, failure.error_type, failure.message) == ("1", "ValueError", "odd 1")
    assert finished.state == "failed" and finished.counts["succeeded"] == 2 and finished.counts["failed"] == 1
    assert end.error is None and end.elapsed > 0


def test_failures_arrive_once_per_chunk_not_per_task():
    g = TaskChain([stage(always_fails, chunk_size=10)], record_failures=False)
    failed = []
    g.events.subscribe(lambda e: failed.append(e) if isinstance(e, TasksFailed) else None)
    g.start(range(30))
    assert [len(e.failures) for e in failed] == [10, 10, 10]


def test_unsubscribed_and_failing_observers_do_not_matter():
    g = TaskChain([stage(fail_odd)], record_failures=False)
    got = []
    stop = g.events.subscribe(got.append)
    stop()

    def broken(event):
        raise RuntimeError("observer bug")

    g.events.subscribe(broken)
    g.start(range(10))
    assert got == []
    assert g.status()["fail_odd"].succeeded == 5


def test_graph_finished_names_the_crash():
    def bad_tasks():
        yield 1
        raise OSError("feed broke")

    g = TaskGraph("crashy")
    g.add_stage(stage(inc))
    ends = []
    g.events.subscribe(lambda e: ends.append(e) if isinstance(e, GraphFinished) else None)
    with pytest.raises(OSError, match="feed broke"):
        g.start_graph({"inc": bad_tasks()})
    assert ends[0].error == "OSError: feed broke"


def test_hooks_are_resolved_once_per_method():
    class OnlyFailures(Hook):
        def on_failure(self, manager, task, exc):
            pass

    class Results(Hook):
        def __init__(self):
            self.calls = []

        def on_results(self, manager, *, tasks, results, **_):
            self.calls.append((list(tasks), list(results)))

    only, res = OnlyFailures(), Results()
    hooks = HookSet(None, [only, res])
    assert hooks.on_progress == () and len(hooks.on_failure) == 1 and len(hooks.on_results) == 1

    m = stage(fail_odd, chunk_size=4)
    m.add_hook(res)
    m.start(range(8))
    assert res.calls == [([0, 2], [0, 2]), ([4, 6], [4, 6])]  # once per chunk, the successes only


def test_on_submit_once_per_chunk_retries_included():
    class Submitted(Hook):
        def __init__(self):
            self.calls = []

        def on_submit(self, manager, *, tasks, **_):
            self.calls.append(list(tasks))

    seen = Submitted()
    assert len(HookSet(None, [seen]).on_submit) == 1 and HookSet(None, [Hook()]).on_submit == ()
    m = stage(fail_odd, execution_mode="thread", worker_limit=1, chunk_size=2, max_retries=1, backoff_base=0.0)
    m.add_retry_exceptions(ValueError)
    m.add_hook(seen)
    m.start(range(4))
    assert all(1 <= len(c) <= 2 for c in seen.calls)
    assert sorted(t for chunk in seen.calls for t in chunk) == [0, 1, 1, 2, 3, 3]  # the retries again


def test_runner_without_a_manager():
    policy = StagePolicy(
        name="double",
        execution_mode="serial",
        get_args=lambda t: (t,),
        process_result=None,
        should_retry=lambda task, exc, attempt: False,
        backoff=Backoff(0.0, 1.0, 0.0, 0.0),
        keep_success=True,
        keep_errors=True,
    )
    state = RunState()
    source = IterSource([1, 2, 2, "x"])
    runner = Runner(policy, state, HookSet(None, ()), SerialBackend(lambda t: t * 2 if t != "x" else 1 / 0), source)
    runner.run()
    assert state.success == {1: 2, 2: 4}
    assert isinstance(state.errors["x"], ZeroDivisionError)
    assert state.counts == {"processed": 4, "succeeded": 2, "failed": 1, "duplicated": 1, "retried": 0}


def test_a_manager_answers_from_its_last_run():
    m = stage(inc, enable_success_cache=True)
    m.start([1, 2])
    first = m.last_run
    assert m.get_success_dict() == {1: 2, 2: 3} and m.get_counts()["succeeded"] == 2
    m.start([5])
    assert m.last_run is not first and m.get_success_dict() == {5: 6}
    assert first.success == {1: 2, 2: 3}  # an earlier run's state is left as it was
