"""BatchProcessor: one data type over many runs, as a streaming celestialflow TaskGraph.

``process_runs(run_ids, "peaks")`` builds a chain of stages, one per cached
plugin the target needs (``st_waveforms -> peaks``), and streams run ids
through it: while peaks are found in run 1, run 2 is being parsed. Stages hand
each other run ids; the data itself goes through the disk cache, so stages in
different processes pass references, never arrays. All stages share one pool of
``max_workers`` threads or processes, each worker with a Context of its own
(``context_factory()``, or a copy of the processor's Context).

Cancellation, ``on_error="stop"`` and retries act between stages: a stage
checks the token before it starts a run, so after ``cancel()`` no new stage
starts, stages in flight finish, and the cache only ever holds complete entries.

The graph of the last call is ``processor.last_graph`` (draw it with
``to_dot()``).
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import networkx as nx
import numpy as np

from celestialflow import Hook, TaskChain, TaskManager

from ...errors import ConfigError, UnknownDataError
from ..context import Context
from .dispatch import StageGate
from .progress import BatchProgress
from .workers import STRATEGIES, MappedResult, WorkerSpec, call_user_func, compute_stage

__all__ = ["BatchProcessor", "RunCancelled", "RunSkipped"]

ON_ERROR = ("continue", "stop", "raise")
EXECUTORS = ("thread", "process", "dask")


class RunSkipped(Exception):
    """A run was not started because the batch stopped (``on_error``) or was cancelled."""


class RunCancelled(Exception):
    """A started run did not finish its stages because the batch was cancelled."""


class _Batch(Hook):
    """Book-keeping of one batch call: statuses, timings, attempts, errors, results."""

    def __init__(self, run_ids: list[str], on_error: str, token: Any) -> None:
        self.run_ids = run_ids
        self.on_error = on_error
        self.token = token
        self.stop = threading.Event()  # on_error stop/raise, or Ctrl-C
        self.lock = threading.Lock()
        self.results: dict[str, Any] = {}
        self.errors: dict[str, dict[str, Any]] = {}
        self.status: dict[str, str] = {}
        self.started: dict[str, float] = {}
        self.elapsed: dict[str, float] = {}
        self.attempts: dict[str, int] = {}
        self.first_exception: BaseException | None = None
        self.done = self.ok = self.failed = 0

    def cancelled(self) -> bool:
        return self.token is not None and self.token.cancelled

    def rejection(self, stage_index: int) -> BaseException | None:
        """Why queued work of ``stage_index`` must not start now (None: it may)."""
        if self.cancelled():
            return RunSkipped("batch cancelled") if stage_index == 0 else RunCancelled("batch cancelled")
        if stage_index == 0 and self.stop.is_set():
            return RunSkipped("batch stopped after an error")
        return None

    # -- called by the stages, in the main process ---------------------------------
    def before_stage(self, run_id: str, index: int) -> None:
        if index == 0:
            if self.stop.is_set() or self.cancelled():
                raise RunSkipped(run_id)
            with self.lock:  # a retried run passes here again: keep its start and attempts
                self.started.setdefault(run_id, time.perf_counter())
                self.attempts.setdefault(run_id, 1)
        elif self.cancelled():
            raise RunCancelled(run_id)

    def finish(self, run_id: str, status: str, value: Any = None) -> None:
        with self.lock:
            if run_id in self.status:
                return
            self.status[run_id] = status
            if run_id in self.started:
                self.elapsed[run_id] = time.perf_counter() - self.started[run_id]
            if status == "success":
                self.results[run_id] = value
                self.ok += 1
            elif status == "failed":
                self.failed += 1
            self.done += 1

    # -- Hook interface (failure path only) -------------------------------------------
    def on_retry(self, manager: TaskManager, task: Any, exc: BaseException, attempt: int) -> None:
        with self.lock:
            self.attempts[task] = self.attempts.get(task, 1) + 1

    def on_failure(self, manager: TaskManager, task: Any, exc: BaseException) -> None:
        if isinstance(exc, RunSkipped):
            self.finish(task, "skipped")
            return
        if isinstance(exc, RunCancelled):
            self.finish(task, "cancelled")
            return
        with self.lock:
            self.errors[task] = {
                "type": type(exc).__name__,
                "message": str(exc),
                "traceback": getattr(exc, "wa_traceback", None) or "".join(traceback.format_exception(exc)),
                "plugin": getattr(exc, "wa_plugin", manager.name),
                "stage": manager.name,
            }
            if self.first_exception is None:
                self.first_exception = exc
        self.finish(task, "failed")
        if self.on_error in ("stop", "raise"):
            self.stop.set()

    # -- the outcome -----------------------------------------------------------------------
    def outcome(self) -> dict[str, Any]:
        meta = {}
        for run in self.run_ids:
            status = self.status.get(run, "cancelled" if run in self.started else "skipped")
            meta[run] = {
                "status": status,
                "elapsed": self.elapsed.get(run, 0.0),
                "attempts": self.attempts.get(run, 0),
            }
        return {
            "results": {r: self.results[r] for r in self.run_ids if r in self.results},
            "errors": {r: self.errors[r] for r in self.run_ids if r in self.errors},
            "meta": meta,
            "ordered_run_ids": list(self.run_ids),
        }


class _RunStage(TaskManager):
    """A stage of a batch: checks the batch state before a run, records the last stage's result."""

    def __init__(self, func: Callable, batch: _Batch, index: int, final: bool, name: str, **kw: Any) -> None:
        # the batch reports runs itself: no per-stage log lines or files
        super().__init__(func, name=name, log_to_file=False, log_level="ERROR", chunk_size=1, **kw)
        self.batch = batch
        self.index = index
        self.final = final
        self.add_hook(batch)

    def should_retry(self, task: Any, exc: BaseException, attempt: int) -> bool:
        return not isinstance(exc, (RunSkipped, RunCancelled)) and super().should_retry(task, exc, attempt)

    def get_args(self, run_id: str) -> tuple[str]:
        self.batch.before_stage(run_id, self.index)
        return (run_id,)

    def process_result(self, run_id: str, result: Any) -> Any:
        if self.final:
            if isinstance(result, MappedResult):
                result = result.load()
            self.batch.finish(run_id, "success", result)
        return run_id


class _Stage:
    """A picklable ``run_id -> ...`` callable bound to a worker spec (for pools)."""

    def __init__(self, target: Callable, spec: WorkerSpec, *args: Any, stage_index: int = 0) -> None:
        self.target, self.spec, self.args = target, spec, args
        self.stage_index = stage_index  # read by the StageGate: later stages go first
        what = getattr(args[0], "__name__", None) or repr(args[0])
        self.__qualname__ = f"{target.__name__}[{what}]"  # shown in graph drawings

    def __call__(self, run_id: str) -> Any:
        return self.target(self.spec, *self.args, run_id)


class _ConfiguredFactory:
    """``factory()`` with one plugin's options set (picklable when ``factory`` is)."""

    def __init__(self, factory: Callable[[], Context], plugin_name: str, config: dict[str, Any]) -> None:
        self.factory, self.plugin_name, self.config = factory, plugin_name, config

    def __call__(self) -> Context:
        ctx = self.factory()
        ctx.set_config({self.plugin_name: dict(self.config)})
        return ctx


class BatchProcessor:
    """Runs ``context.get_data`` (or your function) over many runs; see the module docstring."""

    def __init__(self, context: Context) -> None:
        if not isinstance(context, Context):
            raise TypeError(f"BatchProcessor needs a waveform_analysis Context, got {type(context).__name__}")
        self.context = context
        self.last_graph: TaskChain | None = None

    # -- public API (parameters as in the user guide) ---------------------------------
    def process_runs(
        self,
        run_ids: list[str],
        data_name: str,
        max_workers: int | None = None,
        context_factory: Callable[[], Context] | None = None,
        executor_type: str = "thread",
        storage_dir_strategy: str = "shared",
        clean_temp_cache: bool = True,
        show_progress: bool = True,
        on_error: str = "continue",
        progress_tracker: Any | None = None,
        cancellation_token: Any | None = None,
        jupyter_mode: bool | None = None,
        progress_update_interval: float = 0.5,
        poll_interval: float = 0.1,
        retries: int = 0,
        retry_on: tuple[type, ...] | None = None,
    ) -> dict[str, Any]:
        """``get_data(run, data_name)`` for every run; returns results, errors, meta, ordered_run_ids."""
        self._check_common(executor_type, storage_dir_strategy, on_error, retries, retry_on)
        if data_name not in self.context.plugins:
            raise UnknownDataError(
                f"no plugin provides {data_name!r}; registered: {', '.join(sorted(self.context.plugins)) or 'none'}"
            )
        run_ids = _run_list(run_ids)
        stages = self._stage_names(run_ids, data_name, storage_dir_strategy)

        def make(spec: WorkerSpec) -> list[tuple[str, Callable]]:
            return [
                (name, _Stage(compute_stage, spec, name, i == len(stages) - 1, stage_index=i))
                for i, name in enumerate(stages)
            ]

        return self._run(
            run_ids, make, f"batch {data_name}", max_workers, context_factory, executor_type,
            storage_dir_strategy, clean_temp_cache, show_progress, on_error, progress_tracker,
            cancellation_token, jupyter_mode, progress_update_interval, poll_interval, retries, retry_on,
        )  # fmt: skip

    def process_with_custom_func(
        self,
        run_ids: list[str],
        func: Callable[[Context, str], Any],
        max_workers: int | None = None,
        context_factory: Callable[[], Context] | None = None,
        executor_type: str = "thread",
        storage_dir_strategy: str = "shared",
        clean_temp_cache: bool = True,
        show_progress: bool = True,
        on_error: str = "continue",
        progress_tracker: Any | None = None,
        jupyter_mode: bool | None = None,
        progress_update_interval: float = 0.5,
        poll_interval: float = 0.1,
        retries: int = 0,
        retry_on: tuple[type, ...] | None = None,
        cancellation_token: Any | None = None,
    ) -> dict[str, Any]:
        """``func(context, run_id)`` for every run, with the same machinery as ``process_runs``."""
        if not callable(func):
            raise TypeError(f"func must be callable as func(context, run_id), got {type(func).__name__}")
        self._check_common(executor_type, storage_dir_strategy, on_error, retries, retry_on)
        run_ids = _run_list(run_ids)
        name = getattr(func, "__name__", "func")

        def make(spec: WorkerSpec) -> list[tuple[str, Callable]]:
            return [(name, _Stage(call_user_func, spec, func))]

        return self._run(
            run_ids, make, f"batch {name}", max_workers, context_factory, executor_type,
            storage_dir_strategy, clean_temp_cache, show_progress, on_error, progress_tracker,
            cancellation_token, jupyter_mode, progress_update_interval, poll_interval, retries, retry_on,
        )  # fmt: skip

    process_func = process_with_custom_func

    def process_runs_with_config_grid(
        self,
        run_ids: list[str],
        data_name: str,
        plugin_name: str,
        configs: list[dict[str, Any]],
        max_workers: int | None = None,
        context_factory: Callable[[], Context] | None = None,
        executor_type: str = "thread",
        storage_dir_strategy: str = "shared",
        clean_temp_cache: bool = True,
        show_progress: bool = True,
        on_error: str = "continue",
        jupyter_mode: bool | None = None,
        progress_update_interval: float = 0.5,
        poll_interval: float = 0.1,
        retries: int = 0,
        retry_on: tuple[type, ...] | None = None,
        tmp_cache: bool = False,
    ) -> dict[str, Any]:
        """``process_runs`` once per options dict of ``plugin_name``.

        Plugins upstream of ``plugin_name`` keep their keys across configs, so
        they are computed once and read from the cache afterwards. With
        ``tmp_cache`` everything the grid computes goes to a temporary cache that
        is removed at the end (results are then copied into memory).
        """
        self._check_common(executor_type, storage_dir_strategy, on_error, retries, retry_on)
        plugins = self.context.plugins
        if plugin_name not in plugins:
            raise UnknownDataError(f"no plugin provides {plugin_name!r}; registered: {', '.join(sorted(plugins))}")
        if data_name not in plugins:
            raise UnknownDataError(f"no plugin provides {data_name!r}; registered: {', '.join(sorted(plugins))}")
        if plugin_name not in nx.ancestors(self.context.lineage(data_name), data_name) | {data_name}:
            raise ConfigError(f"{data_name!r} does not depend on {plugin_name!r}, so its configs cannot change it")
        configs = list(configs)
        known = plugins[plugin_name].options
        for i, cfg in enumerate(configs):
            if not isinstance(cfg, dict):
                raise ConfigError(f"configs[{i}] must be a dict of {plugin_name!r} options, got {type(cfg).__name__}")
            unknown = set(cfg) - set(known)
            if unknown:
                raise ConfigError(
                    f"configs[{i}] sets {', '.join(sorted(unknown))}, which {plugin_name!r} does not have; "
                    f"its options: {', '.join(sorted(known)) or 'none'}"
                )
        tmp_dir = tempfile.mkdtemp(prefix="wa-grid-") if tmp_cache else None
        out: dict[str, Any] = {"configs": configs, "results": []}
        try:
            for i, cfg in enumerate(configs):
                overrides: dict[str, Any] = {"config": {plugin_name: dict(cfg)}}
                if tmp_dir:
                    overrides["storage_dir"] = tmp_dir
                sub = BatchProcessor(self.context.clone(**overrides))
                factory = _ConfiguredFactory(context_factory, plugin_name, cfg) if context_factory else None
                batch = sub.process_runs(
                    run_ids, data_name, max_workers, factory, executor_type, storage_dir_strategy,
                    clean_temp_cache, show_progress, on_error, None, None, jupyter_mode,
                    progress_update_interval, poll_interval, retries, retry_on,
                )  # fmt: skip
                if tmp_dir:
                    batch["results"] = {r: np.array(v) for r, v in batch["results"].items()}
                self.last_graph = sub.last_graph
                out["results"].append({"config_index": i, "config": cfg, "batch": batch})
        finally:
            if tmp_dir:
                shutil.rmtree(tmp_dir, ignore_errors=True)
        return out

    # -- machinery ------------------------------------------------------------------------------
    @staticmethod
    def _check_common(executor_type: str, strategy: str, on_error: str, retries: int, retry_on: Any) -> None:
        if executor_type not in EXECUTORS:
            raise ValueError(f"unknown executor_type {executor_type!r}; choose one of {', '.join(EXECUTORS)}")
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown storage_dir_strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if on_error not in ON_ERROR:
            raise ValueError(f"unknown on_error {on_error!r}; choose one of {', '.join(ON_ERROR)}")
        if not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an int >= 0, got {retries!r}")
        if retry_on is not None:
            types = retry_on if isinstance(retry_on, tuple) else (retry_on,)
            if not all(isinstance(t, type) and issubclass(t, BaseException) for t in types):
                raise ValueError(f"retry_on must be exception classes, got {retry_on!r}")

    def _stage_names(self, run_ids: list[str], data_name: str, strategy: str) -> list[str]:
        """Cached plugins the target needs, dependencies first; the target always last.

        Without a shared cache to hand data over (``per_worker``, ``readonly``)
        a run's whole chain is one stage.
        """
        ctx = self.context
        if strategy != "shared" or not ctx.plugins[data_name].save_to_cache:
            return [data_name]
        needed: set[str] = set()
        for run in run_ids:
            try:
                needed.update(ctx.plan(run, data_name))
            except Exception:  # a bad run fails in its own stage, with its own error
                needed.update(nx.ancestors(ctx.lineage(data_name), data_name))
        order = list(nx.topological_sort(ctx.lineage(data_name)))
        names = [n for n in order if n in needed and n != data_name and ctx.plugins[n].save_to_cache]
        return names + [data_name]

    def _run(
        self,
        run_ids: list[str],
        make_stages: Callable[[WorkerSpec], list[tuple[str, Callable]]],
        desc: str,
        max_workers: int | None,
        context_factory: Callable[[], Context] | None,
        executor_type: str,
        strategy: str,
        clean_temp_cache: bool,
        show_progress: bool,
        on_error: str,
        progress_tracker: Any,
        token: Any,
        jupyter_mode: bool | None,
        progress_update_interval: float,
        poll_interval: float,
        retries: int,
        retry_on: tuple[type, ...] | None,
    ) -> dict[str, Any]:
        workers = max(1, int(max_workers)) if max_workers else max(1, min(len(run_ids) or 1, os.cpu_count() or 1))
        if executor_type == "process":
            _check_picklable(context_factory, self.context)
        temp_root = tempfile.mkdtemp(prefix="wa-batch-") if strategy == "per_worker" else None
        spec = WorkerSpec(
            strategy=strategy,
            factory=context_factory,
            context=self.context,
            # one worker without a factory uses the processor's own Context, as a plain loop would
            use_directly=(workers == 1 and context_factory is None and executor_type == "thread" and strategy == "shared"),
            temp_root=temp_root,
            # a batch parallelises over runs: max_workers is the number of cores it uses
            kernel_threads=1,
        )
        stages = make_stages(spec)
        batch = _Batch(run_ids, on_error, token)
        retry_types = tuple(retry_on) if isinstance(retry_on, tuple) else ((retry_on,) if retry_on else (Exception,))
        progress = BatchProgress(
            len(run_ids), desc, show=show_progress, jupyter_mode=jupyter_mode,
            tracker=progress_tracker, update_interval=progress_update_interval,
        )  # fmt: skip
        closer: Callable[[], None] | None = None
        try:
            pool, closer = _make_pool(executor_type, workers, batch.rejection)
            managers = []
            for i, (name, func) in enumerate(stages):
                kw: dict[str, Any] = {"worker_limit": workers, "max_retries": retries, "backoff_base": 0.1}
                kw["dask_client" if executor_type == "dask" else "pool"] = pool
                m = _RunStage(func, batch, i, i == len(stages) - 1, name, execution_mode=executor_type, **kw)
                m.retry_exceptions = retry_types
                managers.append(m)
            graph = TaskChain(managers, name=desc, queue_capacity=max(2, 2 * workers), record_failures=False,
                              collect_results=False)  # fmt: skip
        except BaseException:
            if closer is not None:
                closer()
            if temp_root:
                shutil.rmtree(temp_root, ignore_errors=True)
            raise
        self.last_graph = graph
        crash: list[BaseException] = []

        def drive() -> None:
            try:
                graph.start(run_ids)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                crash.append(exc)

        interrupted = False
        try:
            if executor_type == "process":
                _warm_up(pool.inner)  # fork workers now, before any stage thread exists
            runner = threading.Thread(target=drive, name="wa-batch", daemon=True)
            runner.start()
            try:
                while runner.is_alive():
                    runner.join(poll_interval)
                    progress.update(batch.done, batch.ok, batch.failed)
            except KeyboardInterrupt:
                interrupted = True
                batch.stop.set()
                if token is not None:
                    token.cancel()
                else:
                    batch.token = _Cancelled()
                runner.join()
        finally:
            progress.close(batch.done, batch.ok, batch.failed)
            closer()
            if temp_root and clean_temp_cache:
                for run, value in list(batch.results.items()):
                    if isinstance(value, np.memmap) and str(getattr(value, "filename", "")).startswith(temp_root):
                        batch.results[run] = np.array(value)
                shutil.rmtree(temp_root, ignore_errors=True)
        if interrupted:
            raise KeyboardInterrupt
        if crash:
            raise crash[0]
        if on_error == "raise" and batch.first_exception is not None:
            raise batch.first_exception
        return batch.outcome()


class _Cancelled:
    cancelled = True


def _run_list(run_ids: Sequence[str]) -> list[str]:
    if isinstance(run_ids, str):
        raise TypeError("run_ids must be a list of run ids, not a single string")
    seen: dict[str, None] = {}
    for run in run_ids:
        if not isinstance(run, str) or not run:
            raise ValueError(f"run ids must be non-empty strings, got {run!r}")
        seen.setdefault(run, None)
    return list(seen)


def _check_picklable(factory: Callable[[], Context] | None, context: Context) -> None:
    what, obj = ("context_factory", factory) if factory is not None else ("the Context (its plugins)", context)
    try:
        pickle.dumps(obj)
    except Exception as exc:
        raise TypeError(
            f'executor_type="process" sends {what} to worker processes, but it cannot be pickled '
            f"({exc}); define it at module level, or use executor_type='thread'"
        ) from exc


def _make_pool(
    executor_type: str, workers: int, reject: Callable[[int], BaseException | None]
) -> tuple[Any, Callable[[], None]]:
    if executor_type in ("thread", "process"):
        inner: Executor = (
            ThreadPoolExecutor(workers, thread_name_prefix="wa-worker")
            if executor_type == "thread"
            else ProcessPoolExecutor(workers)
        )
        gate = StageGate(inner, workers, reject)
        return gate, lambda: gate.shutdown(wait=True, cancel_futures=True)
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ConfigError("executor_type='dask' needs dask.distributed: pip install 'celestialflow[dask]'") from exc
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = Client(cluster)

    def close() -> None:
        client.close()
        cluster.close()

    return client, close


def _noop() -> int:
    return os.getpid()


def _warm_up(pool: ProcessPoolExecutor) -> None:
    """Start the workers now, with the numeric kernels already loaded here so they inherit them."""
    import importlib

    for module in _KERNEL_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:  # pragma: no cover - a trimmed installation
            pass
    pool.submit(_noop).result()


_KERNEL_MODULES = (
    "waveform_analysis.daq._vx2730_kernels",
    "waveform_analysis.daq._v1725_kernels",
    "waveform_analysis.processing.hits",
)
