"""TaskGraph(shared_workers=...): stages without workers of their own run on the caller's, which stay open."""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from celestialflow import ConfigurationError, TaskChain, TaskManager
from celestialflow.backends import PriorityGate, ProcessPool, workers_kind


def _where(x):
    return threading.current_thread().name


def _pid(x):
    return os.getpid()


def _inc(x):
    return x + 1


def stage(func, mode, name, **kw):
    return TaskManager(func, name=name, log_to_file=False, execution_mode=mode, worker_limit=2, **kw)


def test_thread_stages_run_on_the_shared_workers_which_stay_open():
    inner = ThreadPoolExecutor(2, thread_name_prefix="shared-w")
    gate = PriorityGate(inner, 2)
    try:
        chain = TaskChain([stage(_inc, "thread", "a"), stage(_where, "thread", "b")], record_failures=False,
                          shared_workers=gate)
        chain.start(range(6))
        assert all(name.startswith("shared-w") for name in chain.get_results()["b"])
        chain.start(range(3))  # a second run uses them again
        assert len(chain.get_results()["b"]) == 3
        assert gate.submit(abs, -1).result() == 1
    finally:
        gate.shutdown()


def test_without_shared_workers_thread_stages_use_their_own():
    chain = TaskChain([stage(_where, "thread", "b")], record_failures=False)
    chain.start(range(4))
    assert not any(name.startswith("shared-w") for name in chain.get_results()["b"])


def test_process_stages_run_on_the_shared_process_pool():
    import multiprocessing

    gate = PriorityGate(ProcessPool(2), 2)
    try:
        chain = TaskChain([stage(_inc, "process", "a"), stage(_pid, "process", "b")], record_failures=False,
                          shared_workers=gate)
        seen = set()
        for _ in range(2):
            chain.start(range(8))
            seen |= set(chain.get_results()["b"])
        # every worker that ran them is still alive: the runs neither started nor closed a pool
        alive = {p.pid for p in multiprocessing.active_children()}
        assert seen and os.getpid() not in seen and seen <= alive
        assert gate.submit(_inc, 1).result() == 2
    finally:
        gate.shutdown()


def test_a_stage_with_its_own_pool_keeps_it():
    shared = PriorityGate(ThreadPoolExecutor(1, thread_name_prefix="shared-w"), 1)
    own = ThreadPoolExecutor(1, thread_name_prefix="own-w")
    try:
        chain = TaskChain([stage(_where, "thread", "b", pool=own)], record_failures=False, shared_workers=shared)
        chain.start(range(3))
        assert all(name.startswith("own-w") for name in chain.get_results()["b"])
    finally:
        shared.shutdown()
        own.shutdown()


@pytest.mark.parametrize(
    "mode, workers",
    [("thread", lambda: ProcessPool(1)), ("process", lambda: ThreadPoolExecutor(1)), ("dask", lambda: ThreadPoolExecutor(1))],
)
def test_workers_of_another_kind_are_refused_before_the_run(mode, workers):
    pool = workers()
    try:
        chain = TaskChain([stage(_inc, mode, "odd")], record_failures=False, shared_workers=PriorityGate(pool, 1))
        with pytest.raises(ConfigurationError, match=f"stage 'odd' \\(execution_mode='{mode}'\\).*shared_workers"):
            chain.start(range(3))
    finally:
        pool.shutdown()


def test_shared_workers_must_be_an_executor():
    with pytest.raises(ConfigurationError, match="shared_workers must be an executor"):
        TaskChain([TaskManager(abs, name="a", log_to_file=False)], shared_workers=4)


def test_workers_kind():
    threads, procs = ThreadPoolExecutor(1), ProcessPool(1)
    try:
        assert workers_kind(threads) == "thread" and workers_kind(PriorityGate(threads, 1)) == "thread"
        assert workers_kind(procs) == "process" and workers_kind(object()) is None
    finally:
        threads.shutdown()
        procs.shutdown()


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.mark.parametrize("gated", [False, True])
def test_dask_stages_run_on_the_shared_client_which_stays_open(client, gated):
    workers = PriorityGate(client, 2, owns_inner=False) if gated else client
    assert workers_kind(workers) == "dask"
    chain = TaskChain([stage(_inc, "dask", "a"), stage(_inc, "dask", "b")], record_failures=False,
                      shared_workers=workers)
    chain.start(range(10))
    assert sorted(chain.get_results()["b"]) == list(range(2, 12))
    assert client.status == "running"
    chain.start(range(3))
    assert sorted(chain.get_results()["b"]) == [2, 3, 4]
    if gated:
        workers.shutdown()
        assert client.status == "running"  # a gate that does not own its client leaves it open
