"""Fault injection: random graphs whose tasks raise, return odd values, sleep or kill their worker.

Each example builds a random DAG or cyclic graph of up to 8 stages with random
execution modes and random per-task behaviour (see ``faultlib``), runs it on a
watchdog, and checks: the run ends; every stage's received = succeeded + failed
+ duplicated; what each stage received, did and emitted equals the sequential
model's (so what it received equals what its upstreams emitted, and results do
not depend on the mode); the failure file holds exactly the failed tasks; no
thread, child process or file descriptor is left behind.

The default run tries a few examples per family (about half a minute on 2
cores); ``CF_FAULTS_LONG=1 pytest tests/reliability/test_engine_faults.py``
tries many more and lets hypothesis shrink what fails to a minimal example.
What the families found before the engine was fixed is in docs/reliability.md.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from celestialflow import TaskManager

from .faultlib import (
    MAX_RETRIES,
    GraphSpec,
    Hang,
    Snapshot,
    StageSpec,
    behaviour,
    check,
    expected,
    run_guarded,
    run_within,
    shown,
    stacks,
)

LONG = os.environ.get("CF_FAULTS_LONG") == "1"
MAX_STAGES = 8
BOUND = 30.0 if LONG else 6.0  # seconds a run may take before it counts as a hang
# one async manager, at most 30 tasks, no process pool: a hang shows sooner (a failing example runs twice)
ASYNC_MANAGER_BOUND = 30.0 if LONG else 1.5
BENIGN = ("ok", "ok", "ok", "none", "sleep", "retry", "fail")


def fault_settings(short: int, long: int = 150):
    """Few fixed examples by default; many random ones, shrunk when they fail, with CF_FAULTS_LONG=1."""
    if LONG:
        return settings(max_examples=long, deadline=None, suppress_health_check=list(HealthCheck))
    return settings(
        max_examples=short,
        deadline=None,
        derandomize=True,
        database=None,
        report_multiple_bugs=False,  # the first failure ends a family: a hang costs BOUND once
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
    )


@st.composite
def graph_specs(draw, modes, kinds, rare=(), cycles=False, own_process=False, max_stages=MAX_STAGES, rare_min=0):
    """A random graph (with a loop when ``cycles``, drawn when None); ``rare`` kinds appear at
    most once among a stage's ~10 weighted kinds (at least ``rare_min`` times over the graph)."""
    n = draw(st.integers(1, max_stages))
    forward = [(a, b) for a in range(n) for b in range(a + 1, n)]
    edges = set(draw(st.lists(st.sampled_from(forward), max_size=2 * n, unique=True))) if forward else set()
    if cycles is None:
        cycles = draw(st.booleans())
    if cycles:  # at least one loop: a path a -> ... -> b and the edge back (a self-loop when a == b)
        b = draw(st.integers(0, n - 1))
        a = draw(st.integers(0, b))
        edges |= {(k, k + 1) for k in range(a, b)} | {(b, a)}
        edges |= set(draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=2)))
    shape = GraphSpec((), tuple(sorted(edges)), (), False)
    cyclic = shape.cyclic() if cycles else set()
    stages = []
    rare_left = rare_min
    for i in range(n):
        mode = draw(st.sampled_from(modes))
        own = own_process and mode == "serial" and draw(st.booleans())
        stage_kinds = tuple(draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=6)))
        if rare:
            chosen = draw(st.lists(st.sampled_from(rare), min_size=1 if rare_left else 0, max_size=1))
            rare_left -= len(chosen) if rare_left else 0
            stage_kinds += ("ok",) * draw(st.integers(6, 14)) + tuple(chosen)
        stages.append(
            StageSpec(
                mode=mode,
                own_process=own,
                dedup=draw(st.booleans()) or i in cyclic,  # without dedup a forked loop doubles each turn
                workers=draw(st.integers(1, 4)),
                seed=draw(st.integers(0, 2**16)),
                kinds=stage_kinds,
            )
        )
    feeds = draw(
        st.lists(
            st.tuples(st.integers(0, n - 1), st.lists(st.integers(0, 39), max_size=12).map(tuple)),
            min_size=1,
            max_size=3,
        )
    )
    return GraphSpec(
        tuple(stages), tuple(sorted(edges)), tuple(feeds), draw(st.booleans()), draw(st.sampled_from([2, 16, 8192]))
    )


#: The behaviour families: which modes and which task behaviours each one draws.
FAMILIES = {
    "ordinary": graph_specs(("serial", "thread", "process"), BENIGN, own_process=True),
    "async-stages": graph_specs(("serial", "thread", "async"), BENIGN),
    "exception-does-not-unpickle": graph_specs(("process",), ("ok", "ok", "twoarg"), max_stages=3),
    "unpicklable-result": graph_specs(("process", "serial"), ("ok", "ok", "gen"), own_process=True, max_stages=3),
    "worker-killed": graph_specs(
        ("process", "serial"), ("ok", "sleep"), rare=("kill",), own_process=True, max_stages=4, rare_min=1
    ),
    "cycles": graph_specs(("serial", "thread", "process", "async"), BENIGN, cycles=True, own_process=True),
    "everything": graph_specs(
        ("serial", "thread", "process", "async"), BENIGN + ("twoarg", "gen"), rare=("kill",), cycles=None, own_process=True
    ),
}


def note(spec: GraphSpec) -> None:
    """What the example holds, for ``--hypothesis-show-statistics``."""
    for s in spec.stages:
        event(f"mode {'own-process' if s.own_process else s.mode}")
    event(f"{len(spec.stages)} stages" + (", cyclic" if spec.cyclic() else ""))
    n_input = sum(len(t) for _, t in spec.feeds)
    event("input tasks: " + ("none" if not n_input else "1-9" if n_input < 10 else "10+"))
    want = expected(spec)
    event(f"failed tasks: {'some' if any(c['failed'] for c in want.counts.values()) else 'none'}")


def run_and_check(spec: GraphSpec) -> None:
    note(spec)
    with tempfile.TemporaryDirectory(prefix="cf-faults-") as tmp:
        check(spec, run_guarded(spec, Path(tmp), BOUND))


# -- DAGs -----------------------------------------------------------------------------


@fault_settings(12)
@given(FAMILIES["ordinary"])
def test_dag_with_ordinary_failures(spec):
    run_and_check(spec)


@fault_settings(8)
@given(FAMILIES["async-stages"])
def test_dag_with_async_stages(spec):
    run_and_check(spec)


@fault_settings(6)
@given(FAMILIES["exception-does-not-unpickle"])
def test_dag_exception_that_does_not_unpickle(spec):
    run_and_check(spec)


@fault_settings(6)
@given(FAMILIES["unpicklable-result"])
def test_dag_unpicklable_result(spec):
    run_and_check(spec)


@fault_settings(6)
@given(FAMILIES["worker-killed"])
def test_dag_worker_killed(spec):
    run_and_check(spec)


# -- cycles ---------------------------------------------------------------------------


@fault_settings(10)
@given(FAMILIES["cycles"])
def test_cycles_end_and_account_for_every_item(spec):
    run_and_check(spec)


# -- everything at once ----------------------------------------------------------------


@fault_settings(8, long=300)
@given(FAMILIES["everything"])
def test_everything_at_once(spec):
    run_and_check(spec)


# -- the same results in every mode ------------------------------------------------------


@fault_settings(5, long=60)
@given(graph_specs(("serial",), BENIGN, max_stages=5), st.booleans())
def test_same_results_in_every_mode(spec, cycles):
    if cycles:  # close the graph into a loop; loops need dedup (see graph_specs)
        last = len(spec.stages) - 1
        stages = tuple(StageSpec(s.mode, s.own_process, True, s.workers, s.seed, s.kinds) for s in spec.stages)
        spec = GraphSpec(stages, spec.edges + ((last, 0),), spec.feeds, spec.generator_input)
    seen = {}
    with tempfile.TemporaryDirectory(prefix="cf-modes-") as tmp:
        for mode in ("serial", "thread", "process", "async"):
            one = spec.with_modes(mode)
            got = run_guarded(one, Path(tmp) / mode, BOUND)
            check(one, got)
            seen[mode] = (
                {k: Counter(shown(v) for v in vs) for k, vs in got.results.items()},
                {k: Counter(vs) for k, vs in got.failures.items()},
            )
    assert all(v == seen["serial"] for v in seen.values()), seen


# -- one manager on its own (TaskManager.start, where async has its own loop today) ----------


@st.composite
def manager_specs(draw, modes, kinds):
    spec = draw(graph_specs(modes, kinds, max_stages=1))
    s = spec.stages[0]
    tasks = tuple(draw(st.lists(st.none() | st.integers(0, 39), max_size=30)))
    return GraphSpec((s,), (), ((0, tasks),), spec.generator_input)


def run_manager(spec: GraphSpec, workdir: Path) -> TaskManager:
    (s,) = spec.stages
    attempts = workdir / "attempts"
    attempts.mkdir()
    tm = TaskManager(
        behaviour(spec, 0, str(attempts), os.getpid()),
        execution_mode=s.mode,
        worker_limit=s.workers,
        max_retries=MAX_RETRIES,
        enable_duplicate_check=s.dedup,
        enable_success_cache=True,
        enable_error_cache=True,
        backoff_base=0.001,
        backoff_max=0.01,
        log_to_file=False,
        name="s0",
    )
    (_, tasks), = spec.feeds
    before = Snapshot.take()
    bound = ASYNC_MANAGER_BOUND if s.mode == "async" else BOUND
    _guarded(lambda: tm.start((t for t in tasks) if spec.generator_input else list(tasks)), bound)
    left = before.leftovers()
    assert not left, "[leftovers] " + "; ".join(left)
    return tm


def _guarded(fn, bound: float) -> None:
    try:
        run_within(fn, bound, "TaskManager.start")
    except Hang:
        raise
    except BaseException as exc:  # noqa: BLE001 - any error out of start() breaks the invariant
        raise AssertionError(f"[raised] start raised {type(exc).__name__}: {exc}") from exc


def check_manager(spec: GraphSpec, tm: TaskManager) -> None:
    want = expected(spec)
    counts = tm.get_counts()
    got = {k: counts[k] for k in ("processed", "succeeded", "failed", "duplicated")}
    assert got["processed"] == got["succeeded"] + got["failed"] + got["duplicated"], f"[accounting] {got}"
    assert got == dict(want.counts["s0"]), f"[model] counts {got}, the model says {dict(want.counts['s0'])}"
    assert set(tm.get_error_dict()) == set(want.failed["s0"]), (
        f"[errors] errors for {sorted(tm.get_error_dict(), key=repr)}, the model says {sorted(want.failed['s0'], key=repr)}"
    )
    if spec.stages[0].dedup:  # each task once: the success cache holds every result
        results = Counter(shown(v) for v in tm.get_success_dict().values())
        assert results == want.results.get("s0", Counter()), f"[results] {results}, the model says {want.results}"


MANAGER_FAMILIES = {
    "manager-sync": manager_specs(("serial", "thread", "process"), BENIGN),
    "manager-async": manager_specs(("async",), BENIGN),
}


def run_manager_and_check(spec: GraphSpec) -> None:
    with tempfile.TemporaryDirectory(prefix="cf-manager-") as tmp:
        check_manager(spec, run_manager(spec, Path(tmp)))


@fault_settings(10)
@given(MANAGER_FAMILIES["manager-sync"])
def test_manager_start_sync_modes(spec):
    run_manager_and_check(spec)


@fault_settings(10)
@given(MANAGER_FAMILIES["manager-async"])
def test_manager_start_async(spec):
    run_manager_and_check(spec)


# -- the harness itself --------------------------------------------------------------------


_HELD = threading.Lock()


def _stuck_on_a_lock() -> None:
    _HELD.acquire()
    _HELD.acquire()


@pytest.mark.skipif(not hasattr(signal, "SIGUSR2"), reason="needs SIGUSR2")
def test_a_hang_report_shows_where_a_forked_worker_waits():
    child = multiprocessing.get_context("fork").Process(target=_stuck_on_a_lock)
    child.start()
    try:
        time.sleep(0.3)
        report = stacks()
    finally:
        child.terminate()
        child.join()
    assert f"--- child process {child.name} ({child.pid})" in report
    assert "in _stuck_on_a_lock" in report
