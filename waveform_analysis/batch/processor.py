"""BatchProcessor: one data type over many runs, as a streaming celestialflow TaskGraph.

``process_runs(run_ids, "peaks")`` builds a chain of stages, one per cached
plugin the target needs (``st_waveforms -> peaks``), and streams run ids
through it: while peaks are found in run 1, run 2 is being parsed. Stages hand
each other run ids; the data itself goes through the disk cache, so stages in
different processes pass references, never arrays. All stages share one pool of
``max_workers`` threads or processes, each worker with a Context of its own
(``context_factory()``, or a copy of the processor's Context). On Dask a run's
chain is one stage, one Dask task per run (:mod:`.plan`).

Cancellation, ``on_error="stop"`` and retries act between stages: the gate in
front of the workers asks the batch's :class:`~.ledger.Ledger` before a run
starts a stage, so after ``cancel()`` no new stage starts, stages in flight
finish, and the cache only ever holds complete entries. The ledger books every
run through the engine's hooks (see :mod:`.ledger`).

Before any work starts, each method checks the Context's config
(``Context.check_config``) and, for ``executor_type="process"``, that what
must travel to the workers pickles: one clear error instead of one per run.

Ctrl-C stops a batch that way too, and re-raises ``KeyboardInterrupt`` once the
stages in flight have finished and the pools are closed; SIGTERM does the same
and then exits with status 143 (see :mod:`.signals`).

While a batch runs in threads, the numeric kernels of this process are capped
at one thread each (``max_workers`` is the number of cores a batch uses); the
previous cap comes back when the batch ends, however it ends.

The graph of the last call is ``processor.last_graph`` (draw it with
``to_dot()``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import networkx as nx
import numpy as np

from celestialflow import TaskChain, TaskManager
from celestialflow.tasks import check_picklable

from ..core.config import merge_config, validate_config
from ..core.context import Context
from ..errors import ConfigError, UnknownDataError
from ..parallel import kernel_threads
from .ledger import BatchOptions, Ledger, RunCancelled, RunSkipped
from .plan import stages_for
from .pools import make_pool, warm_up_dask, warm_up_processes
from .progress import BatchProgress
from .signals import sigterm_as_interrupt
from .workers import WorkerSpec, call_user_func, compute_stage

__all__ = ["BatchProcessor", "RunCancelled", "RunSkipped"]


class _RunStage(TaskManager):
    """A stage of a batch: ``hooks`` (the ledger first, so the progress shows what it booked)
    follow its runs; a run the gate turned away (skipped, cancelled) is not retried."""

    def __init__(self, func: Callable, hooks: list[Any], name: str, **kw: Any) -> None:
        # the batch reports runs itself: no per-stage log lines or files
        super().__init__(func, name=name, log_to_file=False, log_level="ERROR", chunk_size=1, **kw)
        for hook in hooks:
            self.add_hook(hook)

    def should_retry(self, task: Any, exc: BaseException, attempt: int) -> bool:
        return not isinstance(exc, (RunSkipped, RunCancelled)) and super().should_retry(task, exc, attempt)


class _Stage:
    """A picklable ``run_id -> ...`` callable bound to a worker spec (for pools)."""

    def __init__(self, target: Callable, spec: WorkerSpec, *args: Any) -> None:
        self.target, self.spec, self.args = target, spec, args
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
        dask_client: Any = None,
    ) -> dict[str, Any]:
        """``get_data(run, data_name)`` for every run; returns results, errors, meta, ordered_run_ids.

        ``dask_client``: a ``distributed.Client`` or a scheduler address; the batch then
        runs on that cluster (``executor_type="dask"``) and nothing is started or closed."""
        opts = BatchOptions.pick(locals())
        if data_name not in self.context.plugins:
            raise UnknownDataError(
                f"no plugin provides {data_name!r}; registered: {', '.join(sorted(self.context.plugins)) or 'none'}"
            )
        self.context.check_config()
        run_ids = _run_list(run_ids)
        fused = opts.executor_type == "dask"
        stages = stages_for(self.context, data_name, run_ids, opts.storage_dir_strategy, fused)

        def make(spec: WorkerSpec) -> list[tuple[str, Callable]]:
            return [
                (name, _Stage(compute_stage, spec, name, i == len(stages) - 1))
                for i, name in enumerate(stages)
            ]

        return self._run(run_ids, make, f"batch {data_name}", opts)

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
        dask_client: Any = None,
    ) -> dict[str, Any]:
        """``func(context, run_id)`` for every run, with the same machinery as ``process_runs``."""
        if not callable(func):
            raise TypeError(f"func must be callable as func(context, run_id), got {type(func).__name__}")
        opts = BatchOptions.pick(locals())
        if opts.executor_type == "process":
            _check_sendable(func, f"func {getattr(func, '__qualname__', None) or repr(func)!r}")
        self.context.check_config()
        run_ids = _run_list(run_ids)
        name = getattr(func, "__name__", "func")

        def make(spec: WorkerSpec) -> list[tuple[str, Callable]]:
            return [(name, _Stage(call_user_func, spec, func))]

        return self._run(run_ids, make, f"batch {name}", opts)

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
        dask_client: Any = None,
    ) -> dict[str, Any]:
        """``process_runs`` once per options dict of ``plugin_name``.

        Plugins upstream of ``plugin_name`` keep their keys across configs, so
        they are computed once and read from the cache afterwards. With
        ``tmp_cache`` everything the grid computes goes to a temporary cache that
        is removed at the end (results are then copied into memory).
        """
        opts = BatchOptions.pick(locals())
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
            try:  # every value too, before the first config runs
                validate_config(merge_config(self.context.config, {plugin_name: cfg}), plugins, complete=True)
            except ConfigError as exc:
                raise ConfigError(f"configs[{i}]: {exc}") from None
        tmp_dir = tempfile.mkdtemp(prefix="wa-grid-") if tmp_cache else None
        out: dict[str, Any] = {"configs": configs, "results": []}
        try:
            for i, cfg in enumerate(configs):
                overrides: dict[str, Any] = {"config": {plugin_name: dict(cfg)}}
                if tmp_dir:
                    overrides["storage_dir"] = tmp_dir
                sub = BatchProcessor(self.context.clone(**overrides))
                factory = _ConfiguredFactory(context_factory, plugin_name, cfg) if context_factory else None
                batch = sub.process_runs(run_ids, data_name, **{**asdict(opts), "context_factory": factory})
                if tmp_dir:
                    batch["results"] = {r: np.array(v) for r, v in batch["results"].items()}
                self.last_graph = sub.last_graph
                out["results"].append({"config_index": i, "config": cfg, "batch": batch})
        finally:
            if tmp_dir:
                shutil.rmtree(tmp_dir, ignore_errors=True)
        return out

    def _run(
        self,
        run_ids: list[str],
        make_stages: Callable[[WorkerSpec], list[tuple[str, Callable]]],
        desc: str,
        opts: BatchOptions,
    ) -> dict[str, Any]:
        with sigterm_as_interrupt():  # SIGTERM stops the batch as Ctrl-C does, then exits
            if opts.executor_type != "thread":  # worker processes cap themselves (WorkerSpec.kernel_threads)
                return self._run_batch(run_ids, make_stages, desc, opts)
            # thread workers share this process's kernels: cap them here, for the batch only
            with kernel_threads(1):
                return self._run_batch(run_ids, make_stages, desc, opts)

    def _run_batch(
        self,
        run_ids: list[str],
        make_stages: Callable[[WorkerSpec], list[tuple[str, Callable]]],
        desc: str,
        opts: BatchOptions,
    ) -> dict[str, Any]:
        workers = max(1, int(opts.max_workers)) if opts.max_workers else max(1, min(len(run_ids) or 1, os.cpu_count() or 1))
        if opts.executor_type == "process":
            if opts.context_factory is not None:
                _check_sendable(opts.context_factory, "context_factory")
            else:
                _check_sendable(self.context, "the Context (its plugins)")
        strategy, executor_type = opts.storage_dir_strategy, opts.executor_type
        temp_root = tempfile.mkdtemp(prefix="wa-batch-") if strategy == "per_worker" else None
        spec = WorkerSpec(
            strategy=strategy,
            factory=opts.context_factory,
            context=self.context,
            # one worker without a factory uses the processor's own Context, as a plain loop would
            use_directly=(
                workers == 1 and opts.context_factory is None and executor_type == "thread" and strategy == "shared"
            ),
            temp_root=temp_root,
            # a batch parallelises over runs: max_workers is the number of cores it uses;
            # thread workers never touch the process-wide cap (_run holds it for them)
            kernel_threads=None if executor_type == "thread" else 1,
        )
        stages = make_stages(spec)
        batch = Ledger(run_ids, opts.on_error, opts.cancellation_token, [name for name, _ in stages])
        progress = BatchProgress(
            len(run_ids), desc, show=opts.show_progress, jupyter_mode=opts.jupyter_mode,
            tracker=opts.progress_tracker, update_interval=opts.progress_update_interval,
        )
        closer: Callable[[], None] | None = None
        try:
            pool, closer = make_pool(executor_type, workers, batch.rejection, opts.dask_client)
            if executor_type == "dask" and not opts.max_workers and opts.dask_client is not None:
                # a cluster of its own size: as many runs at once as it has threads, not local cores
                workers = max(1, min(len(run_ids) or 1, pool.capacity))
            managers = []
            for name, func in stages:
                kw: dict[str, Any] = {"worker_limit": workers, "max_retries": opts.retries, "backoff_base": 0.1}
                m = _RunStage(func, [batch, progress], name, execution_mode=executor_type, **kw)
                m.retry_exceptions = opts.retry_types()
                managers.append(m)
            graph = TaskChain(managers, name=desc, queue_capacity=max(2, 2 * workers), record_failures=False,
                              collect_results=False, shared_workers=pool)
        except BaseException:
            if closer is not None:
                closer()
            if temp_root:
                shutil.rmtree(temp_root, ignore_errors=True)
            raise
        self.last_graph = graph
        crash: list[BaseException] = []

        # Waiting on an Event, not Thread.join: on Python 3.11 a Ctrl-C that
        # interrupts join() marks the thread as ended while it still runs, so the
        # pools were closed under the runs in flight (cpython issue 90882).
        ended = threading.Event()

        def drive() -> None:
            try:
                graph.start(run_ids)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                crash.append(exc)
            finally:
                ended.set()
                progress.wake()

        interrupted: KeyboardInterrupt | None = None
        try:
            if executor_type == "process":
                warm_up_processes(pool.inner)  # fork workers now, before any stage thread exists
            elif executor_type == "dask":
                warm_up_dask(pool.inner, own_cluster=opts.dask_client is None)
            runner = threading.Thread(target=drive, name="wa-batch", daemon=True)
            runner.start()
            try:
                progress.follow(ended, batch.counts, opts.poll_interval)
            except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (BatchTerminated)
                interrupted = exc
                batch.cancel()
                ended.wait()  # the stages in flight finish; nothing new starts
            runner.join()
        finally:
            progress.close(*batch.counts())
            closer()
            if temp_root and opts.clean_temp_cache:
                for run, value in list(batch.results.items()):
                    if isinstance(value, np.memmap) and str(getattr(value, "filename", "")).startswith(temp_root):
                        batch.results[run] = np.array(value)
                shutil.rmtree(temp_root, ignore_errors=True)
        if interrupted is not None:
            raise interrupted
        if crash:
            raise crash[0]
        if opts.on_error == "raise" and batch.first_exception is not None:
            raise batch.first_exception
        return batch.outcome()


def _run_list(run_ids: Sequence[str]) -> list[str]:
    if isinstance(run_ids, str):
        raise TypeError("run_ids must be a list of run ids, not a single string")
    seen: dict[str, None] = {}
    for run in run_ids:
        if not isinstance(run, str) or not run:
            raise ValueError(f"run ids must be non-empty strings, got {run!r}")
        seen.setdefault(run, None)
    return list(seen)


def _check_sendable(obj: Any, what: str) -> None:
    """Before any pool starts: ``what`` must travel to worker processes (one clear error, not one per run)."""
    check_picklable(
        obj,
        f'executor_type="process" sends {what} to worker processes, but it',
        "define it with def at module level (not a lambda or a nested function), or use executor_type='thread'",
    )
