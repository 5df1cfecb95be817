"""One contract, every back-end: serial, thread, process, async, dask, and a stage in its own process.

Each test states one rule of :class:`~celestialflow.TaskManager` runs (results,
errors as instances, retries, dedup, list/dict tasks, a task's Ctrl-C, a dying
worker) and runs it in every execution mode, as dask's ``GetFunctionTestMixin``
does for every ``get``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from celestialflow import TaskGraph, TaskManager, WorkerLostError
from celestialflow.backends import BACKENDS, Backend, PriorityGate, ProcessPool

MODES = ["serial", "thread", "process", "async", "dask", "stage-process"]


class Flaky(Exception):
    """Raised by a task's first attempt."""


def square(x):
    return x * x


async def asquare(x):
    return x * x


def fail_odd(x):
    if x % 2:
        raise ValueError(f"odd {x}")
    return x


async def afail_odd(x):
    return fail_odd(x)


def add(x, y):
    return x + y


async def aadd(x, y):
    return x + y


def flaky(folder, i):
    """Fails on its first attempt for ``i`` (a marker file remembers it, across processes)."""
    marker = Path(folder) / f"{i}.seen"
    if not marker.exists():
        marker.touch()
        raise Flaky(f"first attempt at {i}")
    return i


async def aflaky(folder, i):
    return flaky(folder, i)


def interrupt_on_3(x):
    if x == 3:
        raise KeyboardInterrupt
    return x


async def ainterrupt_on_3(x):
    return interrupt_on_3(x)


def die_on_3(x):
    if x == 3:
        os._exit(1)
    return x


SYNC = {"square": square, "fail_odd": fail_odd, "add": add, "flaky": flaky, "interrupt": interrupt_on_3, "die": die_on_3}
ASYNC = {"square": asquare, "fail_odd": afail_odd, "add": aadd, "flaky": aflaky, "interrupt": ainterrupt_on_3}


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


@pytest.fixture
def run(mode, request):
    """``run(func name, tasks, **manager options)`` in this test's mode; returns the manager."""

    def go(name: str, tasks, *, retry_on: tuple[type[BaseException], ...] = (), **kw):
        kw.setdefault("log_to_file", False)
        func = ASYNC[name] if mode == "async" else SYNC[name]
        if mode == "stage-process":
            m = TaskManager(func, "serial", **kw)
        else:
            if mode == "dask":
                kw["dask_client"] = request.getfixturevalue("dask_client")
            m = TaskManager(func, mode, worker_limit=2, **kw)
        m.add_retry_exceptions(*retry_on)
        if mode == "stage-process":
            g = TaskGraph("contract", record_failures=False)
            g.add_stage(m, stage_mode="process")
            g.start_graph({m: tasks})
        else:
            m.start(tasks)
        return m

    return go


def test_results(run):
    m = run("square", range(50), enable_success_cache=True)
    assert m.get_success_dict() == {i: i * i for i in range(50)}
    assert m.get_counts() == {"processed": 50, "succeeded": 50, "failed": 0, "duplicated": 0, "retried": 0}


def test_errors_are_exception_instances(run):
    m = run("fail_odd", range(10), enable_success_cache=True, enable_error_cache=True)
    errors = m.get_error_dict()
    assert sorted(errors) == [1, 3, 5, 7, 9]
    assert all(isinstance(e, ValueError) for e in errors.values())
    assert str(errors[7]) == "odd 7"
    assert sorted(m.get_success_dict()) == [0, 2, 4, 6, 8]


def test_retries_with_backoff(run, tmp_path):
    tasks = [(str(tmp_path), i) for i in range(6)]
    m = run("flaky", tasks, retry_on=(Flaky,), unpack_task_args=True, enable_success_cache=True,
            max_retries=2, backoff_base=0.001, backoff_jitter=0.0)
    c = m.get_counts()
    assert (c["succeeded"], c["failed"], c["retried"]) == (6, 0, 6)
    assert m.get_success_dict() == {t: t[1] for t in tasks}


def test_duplicates_run_once(run):
    m = run("square", [1, 1, 2, 2, 3], enable_success_cache=True)
    assert m.get_success_dict() == {1: 1, 2: 4, 3: 9}
    assert m.get_counts()["duplicated"] == 2 and m.get_counts()["processed"] == 5


def test_list_and_dict_tasks(run):
    tasks = [[1, 2], {"x": 3, "y": 4}, (5, 6)]
    m = run("add", tasks, unpack_task_args=True, enable_success_cache=True)
    assert sorted(m.get_success_dict().values()) == [3, 7, 11]
    assert m.get_counts()["succeeded"] == 3


def test_a_task_raising_keyboard_interrupt_stops_the_run(run):
    with pytest.raises(KeyboardInterrupt):
        run("interrupt", range(8), chunk_size=1)


@pytest.mark.timeout(120)
def test_a_dying_worker_fails_only_its_task(run, mode):
    if mode not in ("process", "stage-process"):
        pytest.skip("workers in this mode are threads or coroutines of this process (dask: tests/test_dask.py)")
    m = run("die", range(8), enable_success_cache=True, enable_error_cache=True)
    assert sorted(m.get_success_dict()) == [0, 1, 2, 4, 5, 6, 7]
    assert isinstance(m.get_error_dict()[3], WorkerLostError)


def test_every_mode_has_a_backend_that_says_how_much_it_takes():
    assert set(BACKENDS) == {"serial", "thread", "process", "async", "dask"}
    for cls in BACKENDS.values():
        assert issubclass(cls, Backend)
    assert BACKENDS["serial"](square).max_inflight == 1
    assert BACKENDS["thread"](square, 4).max_inflight == 4
    assert BACKENDS["process"](square, 1).max_inflight == 2


def test_a_shared_gate_serves_deeper_stages_first_and_a_suspect_alone():
    import threading
    from concurrent.futures import ThreadPoolExecutor

    release = threading.Event()
    order = []

    def block():
        release.wait(10)

    def note(what):
        order.append(what)

    gate = PriorityGate(ThreadPoolExecutor(1), 1)
    first = gate.submit(block)
    queued = [gate.submit(note, "shallow", priority=0), gate.submit(note, "deep", priority=2),
              gate.submit(note, "alone", alone=True), gate.submit(note, "middle", priority=1)]
    release.set()
    first.result(10)
    for f in queued:
        f.result(10)
    gate.shutdown()
    assert order == ["alone", "deep", "middle", "shallow"]


def test_a_gate_refuses_work_its_reject_names():
    from concurrent.futures import ThreadPoolExecutor

    gate = PriorityGate(ThreadPoolExecutor(1), 1, reject=lambda priority: RuntimeError("stopped") if priority == 0 else None)
    assert gate.submit(square, 3, priority=1).result(10) == 9
    with pytest.raises(RuntimeError, match="stopped"):
        gate.submit(square, 3, priority=0).result(10)
    gate.shutdown()


@pytest.mark.timeout(120)
def test_a_process_pool_is_rebuilt_once_per_break():
    pool = ProcessPool(1)
    try:
        lost = pool.submit(die_on_3, 3)
        with pytest.raises(Exception):  # noqa: B017 - BrokenProcessPool
            lost.result(60)
        generation = pool.generation
        pool.recover(lost)  # the break was already recovered: nothing more happens
        assert pool.generation == generation and pool.submit(square, 4).result(60) == 16
    finally:
        pool.close()


@pytest.mark.timeout(120)
def test_a_gate_recovers_the_generation_its_lost_chunk_ran_on():
    pool = ProcessPool(1)
    gate = PriorityGate(pool, 2)
    try:
        lost = gate.submit(die_on_3, 3, alone=True)
        with pytest.raises(Exception):  # noqa: B017 - BrokenProcessPool
            lost.result(60)
        generation = pool.generation
        gate.recover(lost)  # that generation was replaced already: the new pool is left alone
        assert pool.generation == generation and gate.submit(square, 5).result(60) == 25
    finally:
        gate.shutdown()
