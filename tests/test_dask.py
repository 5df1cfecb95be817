"""Dask execution: a TaskManager stage and a batch on a LocalCluster."""

from __future__ import annotations

import pytest

distributed = pytest.importorskip("distributed")

from celestialflow import TaskChain, TaskManager  # noqa: E402


def square(x):
    return x * x


def fail_on_3(x):
    if x == 3:
        raise ValueError("three")
    return x


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_manager_on_dask(client):
    m = TaskManager(square, execution_mode="dask", dask_client=client, enable_success_cache=True,
                    enable_error_cache=True, log_to_file=False)
    m.start(list(range(40)))
    assert m.get_success_dict() == {i: i * i for i in range(40)}
    m2 = TaskManager(fail_on_3, execution_mode="dask", dask_client=client, enable_error_cache=True, log_to_file=False)
    m2.start([1, 3])
    assert isinstance(m2.get_error_dict()[3], ValueError)
    assert client.status == "running"  # a given client is left open


def test_chain_with_dask_stage(client):
    chain = TaskChain([TaskManager(square, execution_mode="dask", dask_client=client, log_to_file=False),
                       TaskManager(fail_on_3, log_to_file=False)])
    chain.start(range(5))
    assert sorted(chain.get_results()["fail_on_3"]) == [0, 1, 4, 9, 16]


def test_batch_on_dask(tmp_path):
    from waveform_analysis import BatchProcessor, Context, standard_plugins
    from waveform_analysis.synthetic import generate_runs

    generate_runs(tmp_path / "DAQ", ["run_001", "run_002"], n_waveforms=100, n_samples=200)
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(tmp_path / "DAQ")})
    ctx.register(standard_plugins())
    result = BatchProcessor(ctx).process_runs(
        ["run_001", "run_002", "nope"], "peaks", max_workers=2, executor_type="dask", show_progress=False
    )
    assert sorted(result["results"]) == ["run_001", "run_002"]
    assert result["errors"]["nope"]["type"] == "RunNotFoundError"
    assert len(result["results"]["run_001"]) == len(ctx.get_data("run_001", "peaks"))


def exit_on_5(x):
    if x == 5:
        import os

        os._exit(1)
    return x * 2


@pytest.mark.timeout(120)
def test_a_dask_worker_killed_mid_run_fails_only_its_task():
    import dask

    from celestialflow import WorkerLostError

    # a worker that dies once marks its task as suspect; one death is enough to give up on it
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address="127.0.0.1:0")
        with cluster, distributed.Client(cluster) as c:
            m = TaskManager(exit_on_5, execution_mode="dask", dask_client=c, enable_success_cache=True,
                            enable_error_cache=True, log_to_file=False)
            m.start(range(30))
    assert m.get_success_dict() == {i: i * 2 for i in range(30) if i != 5}
    (err,) = m.get_error_dict().values()
    assert isinstance(err, WorkerLostError) and "task 5" in str(err) and "died" in str(err)


def test_batch_on_a_given_client_and_by_address(tmp_path, client):
    import numpy as np

    from waveform_analysis import BatchProcessor, Context, standard_plugins
    from waveform_analysis.synthetic import generate_runs

    runs = ["run_001", "run_002", "run_003"]
    generate_runs(tmp_path / "DAQ", runs, n_waveforms=100, n_samples=200)

    def context(cache):
        ctx = Context(storage_dir=tmp_path / cache, config={"data_root": str(tmp_path / "DAQ")})
        ctx.register(standard_plugins())
        return ctx

    local = BatchProcessor(context("local")).process_runs(runs, "peaks", max_workers=2, show_progress=False)
    on_client = BatchProcessor(context("client")).process_runs(runs, "peaks", dask_client=client, show_progress=False)
    assert client.status == "running"  # nothing we did not start is closed
    by_address = BatchProcessor(context("address")).process_runs(
        runs, "peaks", dask_client=client.scheduler.address, show_progress=False
    )
    for run in runs:
        assert np.array_equal(on_client["results"][run], local["results"][run])
        assert np.array_equal(by_address["results"][run], local["results"][run])
    assert client.status == "running"


def test_manager_takes_a_scheduler_address_as_dask_client(client):
    m = TaskManager(square, execution_mode="dask", dask_client=client.scheduler.address,
                    enable_success_cache=True, log_to_file=False)
    m.start([2, 3])
    assert m.get_success_dict() == {2: 4, 3: 9}


def test_a_given_cluster_sets_how_many_runs_go_at_once(tmp_path):
    from waveform_analysis import BatchProcessor, Context, standard_plugins
    from waveform_analysis.synthetic import generate_runs

    runs = ["run_001", "run_002", "run_003", "run_004"]
    generate_runs(tmp_path / "DAQ", runs, n_waveforms=50, n_samples=128)
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(tmp_path / "DAQ")})
    ctx.register(standard_plugins())
    with distributed.LocalCluster(n_workers=1, threads_per_worker=3, processes=False,
                                  dashboard_address="127.0.0.1:0") as cluster, distributed.Client(cluster) as c:
        bp = BatchProcessor(ctx)
        out = bp.process_runs(runs, "peaks", dask_client=c, show_progress=False)
    assert sorted(out["results"]) == runs
    assert {stage.worker_limit for stage in bp.last_graph.stages.values()} == {3}  # its 3 threads, not 2 cores


class DiesOnRun2:
    """A plugin whose worker process dies while it computes run_002."""

    @staticmethod
    def make():
        from waveform_analysis import Plugin

        class Dies(Plugin):
            provides = "dies"
            depends_on = ("peaks",)

            def compute(self, context, run_id, peaks):
                if run_id == "run_002":
                    import os

                    os._exit(1)  # the worker is gone mid-run
                return peaks

        return Dies


@pytest.mark.timeout(180)
def test_a_dask_worker_killed_mid_batch_fails_its_run_and_no_other(tmp_path):
    import dask
    import numpy as np

    from waveform_analysis import BatchProcessor, Context, standard_plugins
    from waveform_analysis.synthetic import generate_runs

    runs = ["run_001", "run_002", "run_003", "run_004"]
    generate_runs(tmp_path / "DAQ", runs, n_waveforms=60, n_samples=200)
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(tmp_path / "DAQ")})
    ctx.register(standard_plugins(), DiesOnRun2.make())
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address="127.0.0.1:0")
        with cluster, distributed.Client(cluster) as c:
            out = BatchProcessor(ctx).process_runs(runs, "dies", dask_client=c, show_progress=False)
    assert sorted(out["results"]) == ["run_001", "run_003", "run_004"]  # none lost
    err = out["errors"]["run_002"]
    assert err["type"] == "WorkerLostError" and "died" in err["message"], err
    for run in out["results"]:
        assert np.array_equal(out["results"][run], ctx.get_data(run, "peaks"))


def test_workers_of_our_cluster_are_forked_only_from_a_process_without_other_threads():
    import threading

    from celestialflow.backends.dask import start_method as _start_method

    assert _start_method() == ("fork" if threading.active_count() == 1 else "forkserver")
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert _start_method() == "forkserver"  # a thread holding a lock at fork time can hang a worker
    finally:
        stop.set()
        other.join()


_ENV_SCRIPT = """
import json, os, sys
from waveform_analysis import BatchProcessor, Context, standard_plugins
from waveform_analysis.synthetic import generate_runs

if __name__ == "__main__":
    tmp = sys.argv[1]
    generate_runs(os.path.join(tmp, "DAQ"), ["run_001"], n_waveforms=50, n_samples=200)
    ctx = Context(storage_dir=os.path.join(tmp, "cache"), config={"data_root": os.path.join(tmp, "DAQ")})
    ctx.register(standard_plugins())
    keys = ["MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"]
    before = {k: os.environ.get(k) for k in keys}
    out = BatchProcessor(ctx).process_runs(["run_001"], "peaks", max_workers=2, executor_type="dask",
                                           show_progress=False)
    print(json.dumps({"ok": sorted(out["results"]), "before": before,
                      "after": {k: os.environ.get(k) for k in keys}}))
"""


@pytest.mark.timeout(180)
def test_a_dask_batch_leaves_the_environment_of_its_process_alone(tmp_path):
    # Dask's nannies write distributed.nanny.pre-spawn-environ into os.environ of the
    # process that starts them. A forkserver started afterwards then ran with
    # MALLOC_TRIM_THRESHOLD_ set, which fixes glibc's mmap threshold: every large array
    # of its workers was a fresh mapping (4 x the page faults of a process worker).
    import json
    import os
    import subprocess
    import sys

    script = tmp_path / "child.py"
    script.write_text(_ENV_SCRIPT)
    env = {k: v for k, v in os.environ.items()
           if k not in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True,
                          timeout=170, env=env, check=True)
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["ok"] == ["run_001"]
    assert got["after"] == got["before"]


def test_our_cluster_starts_with_a_quick_nanny_poll_and_gives_dask_its_own_back():
    # A nanny looks every WorkerProcess._init_msg_interval (Dask's: 50 ms) whether its worker
    # is up; the cluster's start waited that long after its last worker had registered.
    from distributed.nanny import WorkerProcess

    from celestialflow.backends.dask import NANNY_POLL, _quick_nanny_poll, local_cluster

    dasks = WorkerProcess._init_msg_interval
    assert dasks > NANNY_POLL
    with _quick_nanny_poll():
        assert WorkerProcess._init_msg_interval == NANNY_POLL
    assert WorkerProcess._init_msg_interval == dasks
    cluster = local_cluster(1)
    try:
        with distributed.Client(cluster) as c:
            assert c.submit(square, 3, pure=False).result() == 9
    finally:
        cluster.close()
    assert WorkerProcess._init_msg_interval == dasks  # a cluster of the caller's keeps Dask's
