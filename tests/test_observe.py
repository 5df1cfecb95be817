"""The observer: snapshots from the runner's counters, events for stages and failures."""

from __future__ import annotations

import threading

import pytest

from celestialflow import TaskChain, TaskGraph, TaskManager
from celestialflow.observe import GraphObserver


def inc(x):
    return x + 1


def picky(x):
    if x % 10 == 0:
        raise ValueError(f"no multiples of ten: {x}")
    return x


def chain(*funcs):
    return TaskChain([TaskManager(f, log_to_file=False) for f in funcs])


def test_snapshot_matches_status_and_counts_every_stage():
    g = chain(inc, picky, inc)
    obs = GraphObserver(g)
    g.start([*range(100), 5, 5])  # two duplicates of 5 at the first stage
    snap = obs.snapshot()
    status = g.get_status_dict()
    assert snap["state"] == "failed" and snap["run"] == 1
    for name, s in status.items():
        for key, value in s.items():
            assert snap["stages"][name][key] == value, (name, key)
    first, second, third = (snap["stages"][n] for n in ("inc", "picky", "inc-2"))
    assert first["received"] == 102 and first["duplicated"] == 2 and first["total"] == 102
    assert second["received"] == 100 and second["failed"] == 10 and second["total"] == 100
    assert third["total"] == 90 and third["done"] == 90
    assert snap["totals"]["failed"] == 10 and snap["failures"] == 10
    assert snap["totals"]["succeeded"] == 100 + 90 + 90


def test_events_tell_stage_start_finish_and_failures_with_traceback():
    g = chain(inc, picky)
    obs = GraphObserver(g)
    g.start(range(30))
    events = obs.events_since(0)
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("run_started") == 1 and obs.run == 1
    assert kinds.count("stage_started") == 2 and kinds.count("stage_finished") == 2
    failed = [e for e in events if e["kind"] == "task_failed"]
    assert len(failed) == 3
    assert {e["stage"] for e in failed} == {"picky"}
    assert all(e["error"] == "ValueError" and "multiples of ten" in e["message"] for e in failed)
    assert "in picky" in failed[0]["traceback"] and "ValueError" in failed[0]["traceback"]
    assert obs.events_since(events[-2]["seq"]) == events[-1:]


def test_snapshot_during_a_run_reads_counters_and_gives_eta():
    gate = threading.Event()
    entered = threading.Event()

    def hold(x):
        entered.set()
        gate.wait(10)
        return x

    g = TaskChain([TaskManager(inc, log_to_file=False), TaskManager(hold, log_to_file=False)])
    obs = GraphObserver(g, interval=0.05)
    t = threading.Thread(target=g.start, args=(list(range(50)),))
    t.start()
    try:
        assert entered.wait(10)
        snap = obs.snapshot()
        assert snap["state"] == "running"
        held = snap["stages"]["hold"]
        assert held["state"] == "running" and held["in_flight"] >= 1 and held["total"] == 50
        assert held["received"] == held["processed"] + held["queued"]
    finally:
        gate.set()
        t.join(10)
    final = obs.snapshot()
    assert final["state"] == "finished" and final["stages"]["hold"]["succeeded"] == 50
    assert obs.history()["t"], "the sampler kept a history for the chart"


def test_close_detaches_the_hook_and_sizes_unknown_for_iterators():
    g = chain(inc, inc)
    obs = GraphObserver(g)
    g.start(iter(range(10)))
    assert obs.snapshot()["stages"]["inc"]["total"] is None
    obs.close()
    assert not g.events  # no subscriber left
    g.start([1, 2])
    assert obs.run == 1  # no longer told about runs


def test_a_cycle_has_no_estimate_but_counts():
    g = TaskGraph("loop")
    a = g.add_stage(TaskManager(lambda x: x + 1, name="a", log_to_file=False))
    b = g.add_stage(TaskManager(lambda x: x, name="b", log_to_file=False))
    g.connect(a, b)
    obs = GraphObserver(g)
    g.start_graph({a: [1, 2, 3]})
    snap = obs.snapshot()
    assert snap["stages"]["a"]["total"] == 3 and snap["stages"]["b"]["total"] == 3
    g2 = TaskGraph("cycle")
    x = g2.add_stage(TaskManager(lambda v: v, name="x", log_to_file=False))
    y = g2.add_stage(TaskManager(lambda v: v, name="y", log_to_file=False))
    g2.connect(x, y)
    g2.connect(y, x)
    obs2 = GraphObserver(g2)
    assert set(obs2.snapshot()["stages"]) == {"x", "y"}
    assert all(s["total"] is None for s in obs2.snapshot()["stages"].values())


@pytest.mark.parametrize("n_failures", [3])
def test_process_stage_mode_graph_still_observable(n_failures):
    g = TaskGraph("proc")
    g.add_stage(TaskManager(picky, name="p", log_to_file=False), stage_mode="process")
    obs = GraphObserver(g)
    g.start_graph({"p": list(range(n_failures * 10))})
    assert obs.snapshot()["stages"]["p"]["failed"] == n_failures


def test_stages_starting_together_begin_one_run():
    g = TaskGraph("wide")
    src = g.add_stage(TaskManager(inc, name="src", log_to_file=False))
    for i in range(8):
        g.connect(src, g.add_stage(TaskManager(picky, name=f"leaf{i}", log_to_file=False)))
    obs = GraphObserver(g)
    for run in (1, 2, 3):
        g.start_graph({src: list(range(20))})
        events = obs.events_since(0)
        assert obs.run == run and [e["kind"] for e in events].count("run_started") == 1
        assert sum(e["kind"] == "task_failed" for e in events) == 8 * 2


def test_attached_after_a_run_shows_it_with_its_failures():
    g = chain(inc, picky)
    g.start(range(30))
    obs = GraphObserver(g)
    snap = obs.snapshot()
    assert snap["state"] == "failed" and snap["run"] == 1 and snap["failures"] == 3
    failed = [e for e in obs.events_since(0) if e["kind"] == "task_failed"]
    assert len(failed) == 3 and failed[0]["error"] == "ValueError" and "in picky" in failed[0]["traceback"]
    obs.close()
