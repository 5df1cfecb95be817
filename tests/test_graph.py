"""TaskGraph: streaming, termination, special stages, results and drawing."""

from __future__ import annotations

import json
import shutil
import subprocess

import networkx as nx
import pytest

from celestialflow import (
    ConfigurationError,
    GraphError,
    Hook,
    StageNotFoundError,
    TaskChain,
    TaskGraph,
    TaskLoop,
    TaskManager,
    TaskRouter,
    TaskSplitter,
    UnknownSuccessorError,
    failed_tasks,
    load_failures,
)


def inc(x):
    return x + 1


def dbl(x):
    return x * 2


def sub3(x):
    return x - 3


def fail_on_7(x):
    if x == 7:
        raise ValueError("seven")
    return x


def stage(func, mode="serial", **kw):
    kw.setdefault("log_to_file", False)
    kw.setdefault("worker_limit", 4)
    return TaskManager(func, execution_mode=mode, **kw)


@pytest.mark.parametrize("mode", ["serial", "thread", "process"])
def test_chain_every_mode(mode):
    chain = TaskChain([stage(inc, mode), stage(dbl, mode), stage(sub3, mode)])
    chain.start(range(200))
    assert sorted(chain.get_results()["sub3"]) == sorted((x + 1) * 2 - 3 for x in range(200))
    status = chain.get_status_dict()
    assert all(s["state"] == "finished" and s["succeeded"] == 200 for s in status.values())


def test_chain_async_stage():
    async def ainc(x):
        return x + 1

    chain = TaskChain([stage(ainc, "async"), stage(dbl)])
    chain.start(range(50))
    assert sorted(chain.get_results()["dbl"]) == [(x + 1) * 2 for x in range(50)]


def test_stage_in_own_process():
    g = TaskGraph("p")
    a = g.add_stage(stage(inc), stage_mode="process")
    b = g.add_stage(stage(dbl))
    g.connect(a, b)
    g.start_graph({a: list(range(100))})
    assert sorted(g.get_results()["dbl"]) == [(x + 1) * 2 for x in range(100)]
    assert g.get_status_dict()["inc"]["stage_mode"] == "process"
    with pytest.raises(ConfigurationError, match="stage_mode='process'"):
        g.add_stage(stage(sub3, "thread"), stage_mode="process")


def test_fan_out_and_fan_in():
    g = TaskGraph("fan")
    src = g.add_stage(stage(inc, name="src"))
    left = g.add_stage(stage(dbl, name="left"))
    right = g.add_stage(stage(sub3, name="right"))
    sink = g.add_stage(stage(lambda x: x, name="sink", enable_duplicate_check=False))
    g.connect(src, [left, right])
    g.connect([left, right], sink)
    g.start_graph({"src": range(10)})
    expected = sorted([(x + 1) * 2 for x in range(10)] + [(x + 1) - 3 for x in range(10)])
    assert sorted(g.get_results()["sink"]) == expected
    assert g.get_status_dict()["sink"]["processed"] == 20


def test_error_isolation_and_failure_log(tmp_path):
    g = TaskChain([stage(fail_on_7, name="gate"), stage(dbl)], failure_dir=tmp_path)
    g.start(range(10))
    assert sorted(g.get_results()["dbl"]) == [x * 2 for x in range(10) if x != 7]
    errors = g.get_error_dict()
    assert list(errors) == [("gate", 7)] and isinstance(errors[("gate", 7)], ValueError)
    assert g.get_status_dict()["gate"]["state"] == "failed"
    records = load_failures(g.failure_log_path, stage="gate")
    assert records[0]["error_type"] == "ValueError" and records[0]["message"] == "seven"
    assert failed_tasks(g.failure_log_path, error_type="ValueError") == [7]
    assert failed_tasks(g.failure_log_path, stage="dbl") == []


def test_no_failure_file_without_failures(tmp_path):
    g = TaskChain([stage(inc)], failure_dir=tmp_path)
    g.start([1])
    assert g.failure_log_path is None and not list(tmp_path.iterdir())


def test_failure_log_names_do_not_collide(tmp_path):
    paths = set()
    for _ in range(2):
        g = TaskChain([stage(fail_on_7)], failure_dir=tmp_path, name="same")
        g.start([7])
        paths.add(g.failure_log_path)
    assert len(paths) == 2


def test_loop_quiescence_exact_counts():
    def gate(x):
        if x > 100:
            raise ValueError("above bound")
        return x

    loop = TaskLoop([stage(inc), stage(gate)])
    loop.start([1])
    status = loop.get_status_dict()
    # 1 -> 2 ... -> 101 rejected by the gate: 100 increments, 99 pass the gate
    assert status["inc"]["succeeded"] == 100 and status["inc"]["processed"] == 100
    assert status["gate"]["succeeded"] == 99 and status["gate"]["failed"] == 1


def test_self_loop_and_complete_graph_end():
    g = TaskGraph("self")
    s = g.add_stage(stage(lambda x: x + 1 if x < 50 else (_ for _ in ()).throw(StopIteration()), name="s"))
    g.connect(s, s)
    g.start_graph({s: [0]})
    assert g.get_status_dict()["s"]["succeeded"] == 50


def test_splitter_and_router():
    g = TaskGraph("split-route")
    split = g.add_stage(TaskSplitter(lambda n: (i for i in range(n)), name="split", log_to_file=False))
    route = g.add_stage(TaskRouter(lambda x: ("even" if x % 2 == 0 else "odd", x), name="route", log_to_file=False))
    even = g.add_stage(stage(lambda x: x, name="even", enable_duplicate_check=False))
    odd = g.add_stage(stage(lambda x: x, name="odd", enable_duplicate_check=False))
    g.connect(split, route)
    g.connect(route, [even, odd])
    g.start_graph({split: [3, 0, 4]})
    res = g.get_results()
    assert sorted(res["even"]) == [0, 2] and sorted(res["odd"]) == [1, 3]
    # route deduplicates 0,1,2 repeated from the second split
    assert g.get_status_dict()["route"]["duplicated"] == 3


def test_router_unknown_successor_is_task_error():
    g = TaskGraph("r")
    r = g.add_stage(TaskRouter(name="r", log_to_file=False, enable_error_cache=True))
    a = g.add_stage(stage(lambda x: x, name="a"))
    g.connect(r, a)
    g.start_graph({r: [("a", 1), ("nowhere", 2)]})
    assert g.get_results()["a"] == [1]
    err = r.get_error_dict()[("nowhere", 2)]
    assert isinstance(err, UnknownSuccessorError) and "nowhere" in str(err)


def test_building_errors():
    g = TaskGraph("b")
    a = g.add_stage(stage(inc))
    with pytest.raises(GraphError, match="already"):
        g.add_stage(a)
    with pytest.raises(GraphError, match="already has a stage named 'inc'"):
        g.add_stage(stage(dbl), name="inc")
    with pytest.raises(StageNotFoundError, match="no stage 'nope'"):
        g.connect(a, "nope")
    with pytest.raises(StageNotFoundError, match="not part of graph"):
        g.start_graph({stage(dbl): [1]})
    b = g.add_stage(stage(inc))
    assert b.name == "inc-2"


def test_layered_schedule_runs_layer_after_layer():
    order = []

    def rec(tag):
        def f(x):
            order.append(tag)
            return x

        return f

    g = TaskChain([stage(rec("a"), name="a"), stage(rec("b"), name="b")], schedule="layered")
    g.start(range(3000))
    assert order.index("b") >= 3000 and len(order) == 6000
    loop = TaskLoop([stage(inc)], schedule="layered")
    with pytest.raises(GraphError, match="cycle"):
        loop.start([1])


def test_bounded_queues_hold_back_fast_stage():
    import time

    def slow(x):
        time.sleep(0.0005)
        return x

    g = TaskChain([stage(inc), stage(slow)], queue_capacity=100)
    peak = [0]

    class Watch(Hook):
        def on_progress(self, m, n):
            peak[0] = max(peak[0], g.status()["slow"].queued)

    g.stage("slow").add_hook(Watch())
    g.start(range(2000))
    assert peak[0] <= 100 + 1024  # one batch may overshoot a nearly full mailbox
    assert len(g.get_results()["slow"]) == 2000


def test_to_networkx_and_dot_roundtrip():
    pydot = pytest.importorskip("pydot")
    g = TaskGraph("draw")
    a, b, c = (g.add_stage(stage(f)) for f in (inc, dbl, sub3))
    g.connect(a, [b, c])
    g.connect(b, c)
    nxg = g.to_networkx()
    assert isinstance(nxg, nx.DiGraph) and set(nxg.nodes) == {"inc", "dbl", "sub3"}
    dot = g.to_dot()
    assert dot == g.to_dot()  # deterministic
    (parsed,) = pydot.graph_from_dot_data(dot)
    edges = {(e.get_source().strip('"'), e.get_destination().strip('"')) for e in parsed.get_edges()}
    assert edges == set(nxg.edges)
    g.start_graph({a: [1]})
    assert "ok 1" in g.to_dot()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed")
def test_dot_accepted_by_graphviz_and_render(tmp_path):
    g = TaskChain([stage(fail_on_7), stage(dbl)])
    g.start([7, 8])
    out = subprocess.run(["dot", "-Tsvg"], input=g.to_dot(), capture_output=True, text=True, check=True)
    assert "<svg" in out.stdout
    path = g.render(tmp_path / "g.svg")
    assert path.read_text().lstrip().startswith("<?xml") or "<svg" in path.read_text()
    assert "image/svg+xml" in g._repr_mimebundle_()


def test_render_without_dot_is_clear(monkeypatch, tmp_path):
    from celestialflow import GraphvizNotFoundError, dot

    monkeypatch.setattr(dot.shutil, "which", lambda name: None)
    g = TaskChain([stage(inc)])
    with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz"):
        g.render(tmp_path / "x.svg")
    assert "image/svg+xml" not in g._repr_mimebundle_()


def test_text_tree_marks_revisits():
    loop = TaskLoop([stage(inc), stage(dbl)])
    tree = loop.format_tree()
    assert "inc (ref)" in tree


def test_graph_progress_bars(capsys):
    chain = TaskChain([stage(inc, progress_desc="one"), stage(dbl, progress_desc="two")], show_progress=True)
    chain.start(range(10))
    err = capsys.readouterr().err
    assert "one" in err and "two" in err
    assert chain.stage("inc").hooks == []


def test_stage_crash_is_raised_and_graph_ends():
    class Broken(TaskManager):
        def process_result_dict(self):
            raise RuntimeError("hook bug")

    g = TaskChain([Broken(inc, log_to_file=False), stage(dbl)])
    with pytest.raises(RuntimeError, match="hook bug"):
        g.start(range(5))


def test_failure_records_are_json():
    g = TaskChain([stage(fail_on_7)], record_failures=True)
    g.start([7])
    line = g.failure_log_path.read_text().splitlines()[0]
    assert json.loads(line)["task"] == 7


def test_status_while_running():
    import threading
    import time

    release = threading.Event()

    def wait(x):
        release.wait(5)
        return x

    g = TaskChain([stage(inc), stage(wait)], queue_capacity=10)
    t = threading.Thread(target=g.start, args=(range(3000),))
    t.start()
    try:
        deadline = time.monotonic() + 5
        while g.get_status_dict()["wait"]["state"] != "running" and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        status = g.get_status_dict()["wait"]
        assert status["state"] == "running" and status["elapsed"] > 0
        assert status["in_flight"] > 0 and status["waiting"] > 0
    finally:
        release.set()
        t.join()
    assert g.get_status_dict()["wait"]["succeeded"] == 3000


def test_dask_mode_accepts_lambdas_without_pickle_check():
    m = TaskManager(lambda x: x, execution_mode="dask", log_to_file=False)
    m.check_picklable()  # cloudpickle on the dask side handles lambdas


def test_dot_has_exactly_one_node_per_stage():
    pydot = pytest.importorskip("pydot")
    g = TaskChain([stage(inc), stage(dbl), stage(sub3)])
    (parsed,) = pydot.graph_from_dot_data(g.to_dot())
    assert sorted(n.get_name().strip('"') for n in parsed.get_nodes()) == ["dbl", "inc", "sub3"]
    assert len(parsed.get_edges()) == 2


def _slow_const(x):
    import time

    time.sleep(0.05)
    return 1


@pytest.mark.parametrize("mode", ["serial", "thread"])
def test_a_stage_whose_last_input_is_a_duplicate_ends(mode):
    """The last item a stage takes is a duplicate: settling it ends the input, and the stage
    must not wait for more before it has settled it."""
    import threading

    chain = TaskChain(
        [stage(_slow_const, chunk_size=1, enable_duplicate_check=False), stage(inc, mode, chunk_size=1)]
    )
    t = threading.Thread(target=chain.start, args=([1, 2],), daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive(), "the chain did not end"
    counts = chain.get_status_dict()["inc"]
    assert counts["succeeded"] == 1 and counts["duplicated"] == 1
