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
