"""The CelestialFlow structures are wired as their names say, and reject bad shapes."""

from __future__ import annotations

import pytest

from celestialflow import (
    GraphError,
    TaskChain,
    TaskComplete,
    TaskCross,
    TaskGrid,
    TaskLoop,
    TaskManager,
    TaskWheel,
)


def st(name, bound=None):
    def f(x):
        if bound is not None and x > bound:
            raise ValueError("bound")
        return x + 1

    return TaskManager(f, name=name, log_to_file=False)


def edges(g):
    return set(g.to_networkx().edges)


def test_chain_and_loop_edges():
    assert edges(TaskChain([st("a"), st("b"), st("c")])) == {("a", "b"), ("b", "c")}
    assert edges(TaskLoop([st("a"), st("b")])) == {("a", "b"), ("b", "a")}
    assert edges(TaskLoop([st("a")])) == {("a", "a")}


def test_cross_connects_adjacent_layers():
    g = TaskCross([[st("a1"), st("a2")], [st("b1"), st("b2")], [st("c")]])
    assert edges(g) == {("a1", "b1"), ("a1", "b2"), ("a2", "b1"), ("a2", "b2"), ("b1", "c"), ("b2", "c")}
    g.start([1, 2])
    status = g.get_status_dict()
    # each b stage gets 2 copies of {2, 3} (one from each a) and passes {3, 4} on once
    assert status["b1"]["processed"] == 4 and status["b1"]["duplicated"] == 2
    assert status["c"]["processed"] == 4 and status["c"]["duplicated"] == 2


def test_complete_graph_every_ordered_pair_and_ends():
    g = TaskComplete([st("a", 20), st("b", 20), st("c", 20)], record_failures=False)
    assert edges(g) == {(u, v) for u in "abc" for v in "abc" if u != v}
    g.start([1])
    assert all(s["state"] in ("finished", "failed") for s in g.get_status_dict().values())


def test_wheel_center_feeds_ring_cycle():
    g = TaskWheel(st("hub"), [st("r1", 10), st("r2", 10), st("r3", 10)], record_failures=False)
    assert edges(g) == {("hub", "r1"), ("hub", "r2"), ("hub", "r3"), ("r1", "r2"), ("r2", "r3"), ("r3", "r1")}
    g.start([0])
    assert g.get_status_dict()["hub"]["succeeded"] == 1


def test_grid_right_and_down():
    g = TaskGrid([[st("a"), st("b")], [st("c"), st("d")]])
    assert edges(g) == {("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")}
    g.start([0])
    assert g.get_status_dict()["d"]["processed"] == 2


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: TaskChain([]), "at least one stage"),
        (lambda: TaskLoop([]), "at least one stage"),
        (lambda: TaskCross([]), "at least one layer"),
        (lambda: TaskCross([[st("a")], []]), "at least one stage"),
        (lambda: TaskGrid([]), "at least one row"),
        (lambda: TaskGrid([[st("a"), st("b")], [st("c")]]), "equal lengths"),
        (lambda: TaskWheel(st("hub"), []), "at least one stage"),
        (lambda: TaskChain([lambda x: x]), "takes TaskManagers"),
    ],
)
def test_bad_shapes(build, message):
    with pytest.raises(GraphError, match=message):
        build()


def test_same_function_twice_gets_unique_names():
    g = TaskChain([st("s"), st("s"), st("s")])
    assert list(g.stages) == ["s", "s-2", "s-3"]
