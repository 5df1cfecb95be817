"""BatchProcessor: the guide's examples, error modes, retries, cancellation, strategies, grid."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from waveform_analysis import BatchProcessor, CancellationToken, Context, Plugin, standard_plugins
from waveform_analysis.core.cancellation import CancellationToken as SeedToken
from waveform_analysis.core.context import Context as SeedContext
from waveform_analysis.core.data.batch_processor import BatchProcessor as SeedBatchProcessor
from waveform_analysis.synthetic import generate_runs

RUNS = ["run_001", "run_002"]


@pytest.fixture(scope="module")
def daq(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "DAQ"
    generate_runs(root, [f"run_{i:03d}" for i in range(1, 7)], n_waveforms=300, n_samples=200)
    return root


@pytest.fixture
def workdir(daq, tmp_path, monkeypatch):
    """The guide's examples use data_root="DAQ" relative to the working directory."""
    monkeypatch.chdir(daq.parent)
    return tmp_path


def make_context(storage: Path | None = None) -> Context:
    ctx = Context(storage_dir=storage, config={"data_root": "DAQ", "n_channels": 2})
    ctx.register(standard_plugins())
    return ctx


class _Factory:
    """A picklable context factory with its own storage folder."""

    def __init__(self, storage: Path) -> None:
        self.storage = storage

    def __call__(self) -> Context:
        return make_context(self.storage)


def cache_files(storage: Path, run: str, name: str) -> list[Path]:
    return sorted((storage / run).glob(f"{name}-*.npy")) if (storage / run).exists() else []


# -- the guide's quick start, verbatim apart from registering real plugins ---------------------


def test_seed_quickstart_1_basic(workdir):
    ctx = SeedContext(config={"data_root": "DAQ", "n_channels": 2})
    ctx.register(standard_plugins())
    processor = SeedBatchProcessor(ctx)
    result = processor.process_runs(
        run_ids=["run_001", "run_002"],
        data_name="peaks",
        max_workers=1,
    )
    assert set(result) == {"results", "errors", "meta", "ordered_run_ids"}
    assert result["ordered_run_ids"] == RUNS and result["errors"] == {}
    for run in RUNS:
        assert len(result["results"][run]) > 0
        assert result["meta"][run]["status"] == "success"
        assert result["meta"][run]["attempts"] == 1 and result["meta"][run]["elapsed"] > 0
        np.testing.assert_array_equal(result["results"][run], ctx.get_data(run, "peaks"))


def test_seed_quickstart_2_jupyter_mode(workdir):
    processor = BatchProcessor(make_context())
    result = processor.process_runs(
        run_ids=["run_001", "run_002"],
        data_name="peaks",
        jupyter_mode=True,  # 或 None 自动检测
    )
    assert sorted(result["results"]) == RUNS


def count_peaks(ctx, run_id):
    peaks = ctx.get_data(run_id, "peaks")
    return len(peaks)


def test_seed_quickstart_3_custom_func(workdir):
    processor = BatchProcessor(make_context())
    stats = processor.process_with_custom_func(
        run_ids=["run_001", "run_002"],
        func=count_peaks,
        max_workers=2,
    )
    ctx = make_context()
    assert stats["results"] == {r: len(ctx.get_data(r, "peaks")) for r in RUNS}
    assert processor.process_func == processor.process_with_custom_func


def test_seed_quickstart_4_parallel_factory(workdir):
    def make_context():
        ctx = Context(config={"data_root": "DAQ", "n_channels": 2})
        ctx.register(standard_plugins())
        return ctx

    processor = BatchProcessor(make_context())
    result = processor.process_runs(
        run_ids=["run_001", "run_002"],
        data_name="peaks",
        max_workers=4,
        context_factory=make_context,
        executor_type="thread",  # 或 "process"
    )
    assert sorted(result["results"]) == RUNS


def test_seed_cancellation_example(workdir):
    processor = BatchProcessor(make_context())
    token = SeedToken()
    result = processor.process_runs(
        run_ids=["run_001", "run_002"],
        data_name="peaks",
        cancellation_token=token,
    )
    token.cancel()
    assert sorted(result["results"]) == RUNS


# -- executors and strategies ---------------------------------------------------------------------


@pytest.mark.parametrize("executor_type", ["thread", "process"])
@pytest.mark.parametrize("with_factory", [False, True])
def test_executors_with_and_without_factory(workdir, executor_type, with_factory):
    storage = workdir / "cache"
    ctx = make_context(storage)
    runs = ["run_001", "run_002", "run_003"]
    result = BatchProcessor(ctx).process_runs(
        runs,
        "basic_features",
        max_workers=2,
        executor_type=executor_type,
        context_factory=_Factory(storage) if with_factory else None,
        show_progress=False,
    )
    assert result["errors"] == {}
    for run in runs:
        got = result["results"][run]
        np.testing.assert_array_equal(got, make_context(storage).get_data(run, "basic_features"))
        assert cache_files(storage, run, "peaks") and cache_files(storage, run, "st_waveforms")


def test_process_executor_rejects_unpicklable_factory(workdir):
    lock = threading.Lock()

    def factory():
        with lock:
            return make_context()

    with pytest.raises(TypeError, match="cannot be pickled"):
        BatchProcessor(make_context()).process_runs(
            RUNS, "peaks", max_workers=2, executor_type="process", context_factory=factory
        )


def test_readonly_strategy_writes_nothing(workdir):
    storage = workdir / "ro"
    result = BatchProcessor(make_context(storage)).process_runs(
        RUNS, "peaks", max_workers=2, storage_dir_strategy="readonly", show_progress=False
    )
    assert sorted(result["results"]) == RUNS
    assert not storage.exists() or not any(storage.rglob("*.npy"))


def test_readonly_strategy_reads_shared_cache(workdir):
    storage = workdir / "ro2"
    ctx = make_context(storage)
    ctx.get_data("run_001", "peaks")
    before = sorted(p.name for p in storage.rglob("*"))
    result = BatchProcessor(ctx).process_runs(
        ["run_001"], "peaks", max_workers=2, storage_dir_strategy="readonly", executor_type="process",
        show_progress=False,
    )
    assert sorted(p.name for p in storage.rglob("*")) == before
    np.testing.assert_array_equal(result["results"]["run_001"], ctx.get_data("run_001", "peaks"))


@pytest.mark.parametrize("clean", [True, False])
def test_per_worker_strategy(workdir, clean, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(workdir / "tmp"))
    (workdir / "tmp").mkdir()
    storage = workdir / "shared"
    result = BatchProcessor(make_context(storage)).process_runs(
        RUNS, "peaks", max_workers=2, storage_dir_strategy="per_worker", clean_temp_cache=clean,
        show_progress=False,
    )
    assert sorted(result["results"]) == RUNS
    assert not storage.exists() or not any(storage.rglob("*.npy"))  # the shared cache is untouched
    leftovers = list((workdir / "tmp").glob("wa-batch-*"))
    assert (leftovers == []) == clean
    assert len(result["results"]["run_001"]) > 0


def test_unknown_options_fail_before_work(workdir):
    p = BatchProcessor(make_context())
    with pytest.raises(ValueError, match="storage_dir_strategy 'everywhere'"):
        p.process_runs(RUNS, "peaks", storage_dir_strategy="everywhere")
    with pytest.raises(ValueError, match="on_error 'ignore'"):
        p.process_runs(RUNS, "peaks", on_error="ignore")
    with pytest.raises(ValueError, match="executor_type 'gpu'"):
        p.process_runs(RUNS, "peaks", executor_type="gpu")
    with pytest.raises(KeyError, match="no plugin provides 'hits'"):
        p.process_runs(RUNS, "hits")
    assert p.last_graph is None


# -- errors ----------------------------------------------------------------------------------------


def test_on_error_continue(workdir):
    result = BatchProcessor(make_context()).process_runs(
        ["run_001", "missing", "run_002"], "peaks", max_workers=1, show_progress=False
    )
    assert sorted(result["results"]) == RUNS
    err = result["errors"]["missing"]
    assert err["type"] == "RunNotFoundError" and "missing" in err["message"]
    assert "Traceback" in err["traceback"] and err["plugin"] == "raw_files"
    assert result["meta"]["missing"]["status"] == "failed"
    assert result["ordered_run_ids"] == ["run_001", "missing", "run_002"]


def test_on_error_stop_skips_the_rest(workdir):
    runs = ["missing", "run_001", "run_002", "run_003"]
    result = BatchProcessor(make_context()).process_runs(
        runs, "peaks", max_workers=1, on_error="stop", show_progress=False
    )
    assert result["meta"]["missing"]["status"] == "failed"
    statuses = [result["meta"][r]["status"] for r in runs[1:]]
    assert "skipped" in statuses and statuses[-1] == "skipped"
    assert set(statuses) <= {"success", "skipped"}
    for run in runs:  # a run never started took no time and no attempt
        meta = result["meta"][run]
        started = meta["status"] != "skipped"
        assert meta["attempts"] == int(started) and (meta["elapsed"] > 0) == started


def test_on_error_raise_propagates_original(workdir):
    from waveform_analysis.errors import RunNotFoundError

    with pytest.raises(RunNotFoundError, match="missing"):
        BatchProcessor(make_context()).process_runs(
            ["missing", "run_001"], "peaks", max_workers=1, on_error="raise", show_progress=False
        )


class FlakyError(Exception):
    pass


def flaky_count(ctx, run_id):
    marker = Path(os.environ["FLAKY_DIR"]) / run_id
    n = int(marker.read_text()) if marker.exists() else 0
    marker.write_text(str(n + 1))
    if n < 2:
        raise FlakyError(f"attempt {n + 1} of {run_id}")
    return n + 1


@pytest.mark.parametrize("executor_type", ["thread", "process"])
def test_retries_with_retry_on(workdir, monkeypatch, executor_type):
    monkeypatch.setenv("FLAKY_DIR", str(workdir))
    p = BatchProcessor(make_context())
    result = p.process_with_custom_func(
        RUNS, flaky_count, max_workers=2, retries=3, retry_on=(FlakyError,), executor_type=executor_type,
        show_progress=False,
    )
    assert result["results"] == {r: 3 for r in RUNS}
    assert all(result["meta"][r]["attempts"] == 3 for r in RUNS)


def test_retry_on_other_type_does_not_retry(workdir, monkeypatch):
    monkeypatch.setenv("FLAKY_DIR", str(workdir))
    result = BatchProcessor(make_context()).process_with_custom_func(
        ["run_001"], flaky_count, max_workers=1, retries=3, retry_on=(KeyError,), show_progress=False
    )
    assert result["errors"]["run_001"]["type"] == "FlakyError"
    assert result["meta"]["run_001"]["attempts"] == 1


# -- cancellation ----------------------------------------------------------------------------------


class SlowPeaks(Plugin):
    """peaks that cancels the batch token while run_002 is being computed."""

    provides = "slow_peaks"
    depends_on = ("peaks",)
    version = "1"
    token: CancellationToken | None = None

    def compute(self, context, run_id, peaks):
        if run_id == "run_002" and SlowPeaks.token is not None:
            SlowPeaks.token.cancel()
        return np.asarray(peaks["area"])


def test_cancellation_mid_batch(workdir):
    storage = workdir / "cancel"
    ctx = make_context(storage)
    ctx.register(SlowPeaks)
    token = CancellationToken()
    SlowPeaks.token = token
    runs = [f"run_{i:03d}" for i in range(1, 7)]
    try:
        result = BatchProcessor(ctx).process_runs(
            runs, "slow_peaks", max_workers=1, cancellation_token=token, show_progress=False
        )
    finally:
        SlowPeaks.token = None
    meta = result["meta"]
    assert meta["run_001"]["status"] == "success" and meta["run_002"]["status"] == "success"
    assert meta["run_006"]["status"] == "skipped"  # never started: the pipeline looks ahead a little only
    for run in runs:
        status = meta[run]["status"]
        assert status in ("success", "skipped", "cancelled")
        if status == "skipped":
            assert not (storage / run).exists() or not any((storage / run).iterdir())
        if status != "success":
            assert cache_files(storage, run, "slow_peaks") == [] and run not in result["results"]


# -- grid, progress, graph, many runs ---------------------------------------------------------------


def test_config_grid_computes_upstream_once(workdir, monkeypatch):
    from waveform_analysis.plugins.st_waveforms import StWaveformsPlugin

    calls = []
    original = StWaveformsPlugin.compute_chunks

    def counting(self, context, run_id, chunks):
        calls.append(run_id)
        return original(self, context, run_id, chunks)

    monkeypatch.setattr(StWaveformsPlugin, "compute_chunks", counting)
    configs = [{"threshold": 10.0}, {"threshold": 30.0}, {"threshold": 60.0}]
    out = BatchProcessor(make_context(workdir / "grid")).process_runs_with_config_grid(
        RUNS, "peaks", "peaks", configs, max_workers=1, show_progress=False
    )
    assert out["configs"] == configs
    assert [r["config_index"] for r in out["results"]] == [0, 1, 2]
    counts = [len(r["batch"]["results"]["run_001"]) for r in out["results"]]
    assert counts[0] > counts[1] > counts[2] > 0
    assert sorted(calls) == RUNS  # st_waveforms once per run, not once per config
    with pytest.raises(ValueError, match="does not have"):
        BatchProcessor(make_context()).process_runs_with_config_grid(RUNS, "peaks", "peaks", [{"thresh": 1}])


def test_config_grid_tmp_cache_leaves_no_files(workdir):
    storage = workdir / "grid-tmp"
    out = BatchProcessor(make_context(storage)).process_runs_with_config_grid(
        ["run_001"], "peaks", "peaks", [{"threshold": 20.0}], tmp_cache=True, show_progress=False
    )
    assert len(out["results"][0]["batch"]["results"]["run_001"]) > 0
    assert not storage.exists() or not any(storage.rglob("*.npy"))


def test_progress_bar_printed(workdir, capsys):
    BatchProcessor(make_context()).process_runs(RUNS, "peaks", max_workers=1, show_progress=True,
                                                progress_update_interval=0.0)
    err = capsys.readouterr().err
    assert "2/2" in err and "ok=2" in err


def test_user_progress_tracker(workdir):
    seen = []
    BatchProcessor(make_context()).process_runs(
        RUNS, "peaks", max_workers=1, progress_tracker=lambda done, total: seen.append((done, total))
    )
    assert seen[-1] == (2, 2)


def sleepy(ctx, run_id):
    import time

    time.sleep(0.2)
    return run_id


def test_progress_follows_the_stages_not_a_clock(workdir):
    """The tracker moves when a stage books a run: with a poll interval far longer than the
    batch, it still sees each run as it ends, in the calling thread."""
    seen = []
    runs = [f"run_{i:03d}" for i in range(1, 5)]
    caller = threading.current_thread()

    def tracker(done, total):
        assert threading.current_thread() is caller
        seen.append(done)

    BatchProcessor(make_context()).process_with_custom_func(
        runs, sleepy, max_workers=1, progress_tracker=tracker, progress_update_interval=0.0, poll_interval=60.0
    )
    assert seen[-1] == 4 and any(0 < done < 4 for done in seen), seen


def test_last_graph_drawable(workdir):
    p = BatchProcessor(make_context(workdir / "g"))
    p.process_runs(RUNS, "peaks", max_workers=1, show_progress=False)
    dot = p.last_graph.to_dot()
    assert '"st_waveforms" -> "peaks"' in dot


def test_twenty_runs_end_to_end(tmp_path):
    root = tmp_path / "DAQ"
    runs = [f"r{i:02d}" for i in range(20)]
    generate_runs(root, runs, n_waveforms=100, n_samples=200, seed=3)
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(root)})
    ctx.register(standard_plugins())
    result = BatchProcessor(ctx).process_runs(runs, "basic_features", max_workers=2, show_progress=False)
    assert result["errors"] == {} and sorted(result["results"]) == runs
    assert all(m["status"] == "success" for m in result["meta"].values())


# -- what a batch leaves behind, and what it refuses before starting ---------------------------


def kernel_threads_seen(ctx, run_id):
    from waveform_analysis.parallel import n_threads

    return n_threads()


def failing(ctx, run_id):
    raise RuntimeError(f"failed on {run_id}")


@pytest.mark.parametrize("before", [None, 3])
def test_thread_batch_restores_the_kernel_thread_limit(workdir, monkeypatch, before):
    from waveform_analysis import parallel as _threads

    monkeypatch.setattr(_threads, "_limit", before)
    out = BatchProcessor(make_context()).process_with_custom_func(
        RUNS, kernel_threads_seen, max_workers=2, show_progress=False
    )
    assert out["results"] == {r: 1 for r in RUNS}  # capped while the batch runs
    assert _threads._limit == before
    BatchProcessor(make_context()).process_runs(RUNS, "peaks", max_workers=1, show_progress=False)
    assert _threads._limit == before


def test_kernel_thread_limit_restored_after_an_error(workdir, monkeypatch):
    from waveform_analysis import parallel as _threads

    monkeypatch.setattr(_threads, "_limit", None)
    with pytest.raises(RuntimeError, match="failed on run_00"):
        BatchProcessor(make_context()).process_with_custom_func(
            RUNS, failing, max_workers=2, on_error="raise", show_progress=False
        )
    assert _threads._limit is None


def test_kernel_thread_limit_restored_after_ctrl_c(workdir, monkeypatch):
    import time

    from waveform_analysis import parallel as _threads

    monkeypatch.setattr(_threads, "_limit", None)
    pressed = []

    def ctrl_c(done, total):  # runs in the calling thread, where Ctrl-C lands
        if not pressed:
            pressed.append(done)
            raise KeyboardInterrupt

    def slow(ctx, run_id):
        time.sleep(0.2)
        return run_id

    with pytest.raises(KeyboardInterrupt):
        BatchProcessor(make_context()).process_with_custom_func(
            RUNS, slow, max_workers=1, progress_tracker=ctrl_c, progress_update_interval=0.0,
            poll_interval=0.01,
        )
    assert pressed and _threads._limit is None


def test_ctrl_c_cancels_the_callers_token_and_starts_no_new_run(workdir):
    token = CancellationToken()
    started = []

    def ctrl_c(done, total):
        raise KeyboardInterrupt

    def slow(ctx, run_id):
        import time

        started.append(run_id)
        time.sleep(0.2)
        return run_id

    runs = [f"run_{i:03d}" for i in range(1, 7)]
    with pytest.raises(KeyboardInterrupt):
        BatchProcessor(make_context()).process_with_custom_func(
            runs, slow, max_workers=1, progress_tracker=ctrl_c, progress_update_interval=0.0,
            cancellation_token=token, show_progress=False,
        )
    assert token.cancelled and len(started) < len(runs)


def test_overlapping_thread_batches_restore_the_limit_once_both_end(workdir, monkeypatch):
    from waveform_analysis import parallel

    monkeypatch.setattr(parallel, "_limit", 4)
    with parallel.kernel_threads(1):  # another batch still running in this process
        BatchProcessor(make_context()).process_runs(RUNS, "peaks", max_workers=1, show_progress=False)
        assert parallel.n_threads() == 1
    assert parallel.n_threads() == 4 and parallel._limit == 4


@pytest.mark.parametrize("kind", ["lambda", "closure"])
def test_process_executor_refuses_an_unpicklable_func_before_work(workdir, kind):
    lock = threading.Lock()

    def nested(ctx, run_id):
        with lock:
            return run_id

    func = (lambda ctx, run_id: run_id) if kind == "lambda" else nested
    p = BatchProcessor(make_context())
    with pytest.raises(TypeError, match="cannot be pickled") as info:
        p.process_with_custom_func(RUNS, func, max_workers=2, executor_type="process")
    msg = str(info.value)
    assert func.__qualname__ in msg and "executor_type='thread'" in msg and "module level" in msg
    assert p.last_graph is None  # refused before any pool or stage existed


def test_mistyped_option_refused_before_work(workdir):
    ctx = make_context()
    ctx.config["treshold"] = 50.0  # as Context(config=...) would leave it
    p = BatchProcessor(ctx)
    for call in (
        lambda: p.process_runs(RUNS, "peaks", max_workers=2),
        lambda: p.process_with_custom_func(RUNS, count_peaks, max_workers=2),
    ):
        with pytest.raises(ValueError, match="did you mean 'threshold'"):  # ConfigError is a ValueError
            call()
    assert p.last_graph is None


def test_config_grid_checks_every_value_before_the_first_config(workdir):
    p = BatchProcessor(make_context(workdir / "grid-bad"))
    with pytest.raises(ValueError, match="configs\\[1\\]: .*'threshold'.*expected type float"):
        p.process_runs_with_config_grid(RUNS, "peaks", "peaks", [{"threshold": 10.0}, {"threshold": "x"}])
    assert p.last_graph is None


def exit_on_run_002(ctx, run_id):
    if run_id == "run_002":
        import os

        os._exit(1)  # as a segfault in a C extension would
    return run_id.upper()


@pytest.mark.timeout(120)
def test_a_worker_dying_in_a_process_batch_fails_only_its_run(workdir):
    runs = [f"run_{i:03d}" for i in range(6)]
    ctx = Context(storage_dir=workdir / "cache", config={"data_root": str(workdir / "DAQ")})
    out = BatchProcessor(ctx).process_with_custom_func(
        runs, exit_on_run_002, max_workers=2, executor_type="process", show_progress=False
    )
    assert out["results"] == {r: r.upper() for r in runs if r != "run_002"}
    assert list(out["errors"]) == ["run_002"]
    assert out["errors"]["run_002"]["type"] == "WorkerLostError"
    assert "died" in out["errors"]["run_002"]["message"]
