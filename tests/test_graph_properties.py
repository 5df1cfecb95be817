"""Property tests: random small graphs with random failures account for every input and end."""

from __future__ import annotations

import random

import networkx as nx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celestialflow import TaskGraph, TaskManager


def make_func(fail_mod: int, bound: int):
    def f(x):
        if fail_mod and x % fail_mod == 0:
            raise ValueError(f"unlucky {x}")
        if x > bound:
            raise OverflowError("bound")  # keeps cycles finite
        return x + 1

    return f


@st.composite
def graphs(draw):
    n = draw(st.integers(1, 5))
    edges = draw(st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=8))
    fails = draw(st.lists(st.sampled_from([0, 0, 3, 5, 7]), min_size=n, max_size=n))
    modes = draw(st.lists(st.sampled_from(["serial", "serial", "thread"]), min_size=n, max_size=n))
    dedup = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    feeds = draw(st.dictionaries(st.integers(0, n - 1), st.lists(st.integers(0, 30), max_size=20), min_size=1))
    capacity = draw(st.sampled_from([1, 4, 8192]))
    return n, sorted(edges), fails, modes, dedup, feeds, capacity


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_every_input_accounted_for_and_run_ends(spec):
    n, edges, fails, modes, dedup, feeds, capacity = spec
    # without dedup a value going round a cycle with a fork doubles at every turn
    shape = nx.DiGraph(edges)
    shape.add_nodes_from(range(n))
    cyclic = {v for comp in nx.strongly_connected_components(shape) for v in comp
              if len(comp) > 1 or shape.has_edge(v, v)}  # fmt: skip
    dedup = [d or i in cyclic for i, d in enumerate(dedup)]
    g = TaskGraph("prop", queue_capacity=capacity, record_failures=False)
    stages = [
        g.add_stage(
            TaskManager(
                make_func(fails[i], 60),
                execution_mode=modes[i],
                worker_limit=3,
                enable_duplicate_check=dedup[i],
                log_to_file=False,
                name=f"s{i}",
            )
        )
        for i in range(n)
    ]
    for a, b in edges:
        g.connect(stages[a], stages[b])
    g.start_graph({stages[i]: tasks for i, tasks in feeds.items()})
    status = g.get_status_dict()
    received = {f"s{i}": len(feeds.get(i, [])) for i in range(n)}
    for a, b in edges:
        received[f"s{b}"] += status[f"s{a}"]["succeeded"]
    for name, s in status.items():
        assert s["processed"] == s["succeeded"] + s["failed"] + s["duplicated"], (name, s)
        assert s["processed"] == received[name], (name, s, received)
        assert s["waiting"] == 0 and s["state"] in ("finished", "failed")
    # sinks' collected results match their success counts
    for name, results in g.get_results().items():
        assert len(results) == status[name]["succeeded"]


def test_random_seeded_dense_graph_ends():
    rng = random.Random(4)
    g = TaskGraph("dense", queue_capacity=2, record_failures=False)
    stages = [
        g.add_stage(TaskManager(make_func(rng.choice([0, 3]), 40), log_to_file=False, name=f"d{i}")) for i in range(6)
    ]
    for a in stages:
        for b in stages:
            if rng.random() < 0.5:
                g.connect(a, b)
    g.start_graph({stages[0]: list(range(20))})
    assert all(s["state"] in ("finished", "failed") for s in g.get_status_dict().values())
