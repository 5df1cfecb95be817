"""TaskManager: one function run over a stream of tasks, in any execution mode.

The manager holds what a user configures (function, mode, retries, caches, hooks)
and the results of its last run; :mod:`celestialflow.runner` does the scheduling
and :mod:`celestialflow.backends` the execution. A manager is also a stage of a
:class:`celestialflow.graph.TaskGraph`.

Example::

    >>> from celestialflow import TaskManager
    >>> tm = TaskManager(lambda x, y: x + y, unpack_task_args=True,
    ...                  enable_success_cache=True, log_to_file=False)
    >>> tm.start([(1, 2), (3, 4)])
    >>> tm.get_success_dict()
    {(1, 2): 3, (3, 4): 7}
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .backends import EXECUTION_MODES, AsyncBackend, Backend, make_backend
from .errors import ConfigurationError
from .hooks import Hook, HookSet, ProgressHook
from .logs import RunLog, level_no
from .queues import IterSource
from .retry import DEFAULT_RETRY_EXCEPTIONS, Backoff
from .runner import Runner
from .runstate import COUNT_KEYS, RunState, StagePolicy
from .tasks import check_picklable, invoke, unpack

__all__ = ["COUNT_KEYS", "TaskManager"]


def _func_name(func: Callable) -> str:
    return getattr(func, "__name__", None) or type(func).__name__


class TaskManager:
    """Run ``func`` over tasks with retries, dedup, result caches, progress and logging.

    The positional parameters and their defaults are those of the CelestialFlow
    guide; everything after them is keyword-only and optional: ``name`` (used in
    logs and graphs), backoff settings (``backoff_base`` seconds, ``backoff_factor``,
    ``backoff_max``, ``backoff_jitter``), ``log_level``, ``log_dir``,
    ``log_to_file``, ``log_keep`` (newest log files kept in the folder; None keeps all),
    ``chunk_size`` (tasks per submitted chunk; automatic by
    default), ``mp_context`` (process start method), and ``dask_client`` (a
    ``distributed.Client`` or a scheduler address string; ``dask_address`` is the
    older name for an address) for ``execution_mode="dask"``, and ``pool``: an existing
    ``concurrent.futures`` executor for thread or process mode, shared between
    stages and left open afterwards.
    """

    #: how results go to successors in a graph: "each" (every result to every successor);
    #: TaskSplitter says "split", TaskRouter "route"
    emits = "each"

    def __init__(
        self,
        func: Callable,
        execution_mode: str = "serial",
        worker_limit: int = 50,
        max_retries: int = 3,
        max_info: int = 50,
        unpack_task_args: bool = False,
        enable_success_cache: bool = False,
        enable_error_cache: bool = False,
        enable_duplicate_check: bool = True,
        progress_desc: str = "Processing",
        show_progress: bool = False,
        *,
        name: str | None = None,
        backoff_base: float = 0.05,
        backoff_factor: float = 2.0,
        backoff_max: float = 5.0,
        backoff_jitter: float = 0.1,
        log_level: str | int = "INFO",
        log_dir: str | Path | None = None,
        log_to_file: bool = True,
        log_keep: int | None = 20,
        chunk_size: int | None = None,
        mp_context: str | None = None,
        dask_client: Any = None,
        dask_address: str | None = None,
        pool: Any = None,
    ) -> None:
        if not callable(func):
            raise TypeError(f"func must be callable, got {type(func).__name__}")
        if execution_mode not in EXECUTION_MODES:
            raise ConfigurationError(
                f"unknown execution_mode {execution_mode!r}; choose one of {', '.join(EXECUTION_MODES)}"
            )
        is_coro = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
            getattr(func, "__call__", None)  # noqa: B004 - async callables
        )
        if execution_mode == "async" and not is_coro:
            raise ConfigurationError(
                f"execution_mode='async' needs an 'async def' function; {_func_name(func)} is not"
            )
        if not isinstance(worker_limit, int) or isinstance(worker_limit, bool) or worker_limit < 1:
            raise ConfigurationError(f"worker_limit must be a positive int, got {worker_limit!r}")
        if not isinstance(max_info, int) or isinstance(max_info, bool) or max_info < 0:
            raise ConfigurationError(f"max_info must be an int >= 0, got {max_info!r}")
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise ConfigurationError(f"max_retries must be an int >= 0, got {max_retries!r}")
        if chunk_size is not None and (
            not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1
        ):
            raise ConfigurationError(
                f"chunk_size must be a positive int or None, got {chunk_size!r}"
            )
        level_no(log_level)  # validates

        self.func = func
        self.execution_mode = execution_mode
        # an 'async def' function can only be awaited: it runs on an event loop whatever the mode
        self._is_coro = is_coro
        self.worker_limit = worker_limit
        self.max_retries = max_retries
        self.max_info = max_info
        self.unpack_task_args = unpack_task_args
        self.enable_success_cache = enable_success_cache
        self.enable_error_cache = enable_error_cache
        self.enable_duplicate_check = enable_duplicate_check
        self.progress_desc = progress_desc
        self.show_progress = show_progress
        self.name = name or _func_name(func)
        try:
            self.backoff = Backoff(backoff_base, backoff_factor, backoff_max, backoff_jitter)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        self.log_level = log_level
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.log_to_file = log_to_file
        if log_keep is not None and (not isinstance(log_keep, int) or log_keep < 1):
            raise ConfigurationError(f"log_keep must be a positive int or None, got {log_keep!r}")
        self.log_keep = log_keep
        self.chunk_size = chunk_size
        self.mp_context = mp_context
        self.dask_client = dask_client
        self.dask_address = dask_address
        self.pool = pool

        self.retry_exceptions: tuple[type[BaseException], ...] = DEFAULT_RETRY_EXCEPTIONS
        self.hooks: list[Hook] = []
        self.last_run = RunState()  # the current run's, or the last one's
        self._graph: Any = None  # weak reference to the graph this manager is a stage of

    @property
    def success_dict(self) -> dict[Any, Any]:
        """``{task: result}`` of the last run (``last_run.success``)."""
        return self.last_run.success

    @property
    def error_dict(self) -> dict[Any, BaseException]:
        """``{task: exception}`` of the last run (``last_run.errors``)."""
        return self.last_run.errors

    @property
    def counts(self) -> dict[str, int]:
        """The last run's counters, live while it runs (``last_run.counts``)."""
        return self.last_run.counts

    @property
    def elapsed(self) -> float:
        """Seconds the last run took."""
        return self.last_run.elapsed

    @property
    def log_path(self) -> Path | None:
        """The log file of the last run, if it wrote one."""
        return self.last_run.log_path

    def get_args(self, task: Any) -> Any:
        """The arguments of ``func`` for ``task``: ``(task,)``, or the task itself when unpacking."""
        if self.unpack_task_args:
            return unpack(task)
        return (task,)

    def process_result(self, task: Any, result: Any) -> Any:
        """Transform ``func``'s result before it is cached and passed downstream."""
        return result

    def process_result_dict(self) -> dict[Any, Any]:
        """Called after a run: all outcomes, successes and errors, keyed by task."""
        return {**self.success_dict, **self.error_dict}

    def handle_error_dict(self) -> dict[Any, list[Any]]:
        """Called after a run: failed tasks grouped by their error, ``(type name, message)``."""
        groups: dict[Any, list[Any]] = defaultdict(list)
        for task, error in self.error_dict.items():
            groups[(type(error).__name__, str(error))].append(task)
        return dict(groups)

    def should_retry(self, task: Any, exc: BaseException, attempt: int) -> bool:
        """Whether ``task``, failed with ``exc`` after ``attempt`` retries, is tried again.

        By default: ``exc`` is one of ``retry_exceptions`` and retries are left.
        Called on the failure path only.
        """
        return attempt < self.max_retries and isinstance(exc, self.retry_exceptions)

    def add_retry_exceptions(self, *exception_types: type[BaseException]) -> None:
        """Also retry tasks failing with these exception types."""
        for exc in exception_types:
            if not (isinstance(exc, type) and issubclass(exc, BaseException)):
                raise TypeError(f"add_retry_exceptions takes exception classes, got {exc!r}")
        self.retry_exceptions = tuple(self.retry_exceptions) + tuple(
            e for e in exception_types if e not in self.retry_exceptions
        )

    def add_hook(self, hook: Hook) -> None:
        """Attach a lifecycle hook (see :mod:`celestialflow.hooks`)."""
        self.hooks.append(hook)

    def get_success_dict(self) -> dict[Any, Any]:
        """``{task: processed result}`` of the last run (filled when ``enable_success_cache``)."""
        return self.success_dict

    def get_error_dict(self) -> dict[Any, BaseException]:
        """``{task: exception}`` of the last run (filled when ``enable_error_cache``)."""
        return self.error_dict

    def get_counts(self) -> dict[str, int]:
        """Counts of the last run: processed, succeeded, failed, duplicated, retried."""
        return dict(self.counts)

    def start(self, task_list: Iterable[Any]) -> None:
        """Run every task to completion (async functions too: their loop runs in a thread here)."""
        self.check_picklable()
        source = IterSource(task_list)
        runner = self.new_runner(self.make_backend(), source)
        self.execute(runner, source.total)
        self.after_run()

    async def start_async(self, task_list: Iterable[Any]) -> None:
        """Run every task without blocking the running event loop.

        An ``async def`` function's coroutines run on this loop (so they may use
        loop-bound resources) while the scheduling loop waits in a thread; a plain
        function runs ``start`` in a worker thread."""
        if not self._is_coro:
            await asyncio.to_thread(self.start, task_list)
            return
        source = IterSource(task_list)
        backend = AsyncBackend(self.func, self.worker_limit, loop=asyncio.get_running_loop())
        cancelled = threading.Event()

        def stop_requested() -> bool:
            return cancelled.is_set()

        runner = self.new_runner(backend, source, should_stop=stop_requested)
        try:
            await asyncio.to_thread(self.execute, runner, source.total)
        except asyncio.CancelledError:
            cancelled.set()
            with source.cond:
                source.cond.notify_all()
            raise
        self.after_run()

    @property
    def is_coroutine(self) -> bool:
        """Whether ``func`` is an ``async def`` function (it then runs on an event loop in any mode)."""
        return self._is_coro

    def _overrides(self, method: str) -> bool:
        return getattr(type(self), method) is not getattr(TaskManager, method)

    def compose_call(self) -> Callable[[Any], Any]:
        """The whole per-task pipeline as one callable, skipping hooks left at their defaults."""
        func = self.func
        if self._overrides("get_args"):
            get_args = self.get_args

            def call(task: Any) -> Any:
                return invoke(func, get_args(task))
        elif self.unpack_task_args:

            def call(task: Any) -> Any:
                return invoke(func, unpack(task))
        else:
            call = func
        if self._overrides("process_result"):
            inner, process_result = call, self.process_result

            def call(task: Any) -> Any:
                return process_result(task, inner(task))

        return call

    def parallel_call(self) -> Callable[[Any], Any] | None:
        """The per-task pipeline (:meth:`compose_call`) when it holds no code of the stage's own,
        so that many threads may run it at once; None when ``get_args`` or ``process_result``
        is overridden (they then run one call at a time, under the run's hook lock)."""
        if self._overrides("get_args") or self._overrides("process_result"):
            return None
        return self.compose_call()

    def make_backend(self, stage_mode: str = "thread", shared: Any = None, priority: int = 0) -> Backend:
        """The back-end of this manager's mode (see :func:`celestialflow.backends.make_backend`)."""
        return make_backend(self, stage_mode=stage_mode, shared=shared, priority=priority)

    def check_picklable(self) -> None:
        """Fail fast when process mode cannot send ``func`` to its workers (no hook is called:
        a task whose arguments cannot be pickled fails on its own)."""
        if self.execution_mode != "process" or self._is_coro:  # dask pickles with cloudpickle
            return
        check_picklable(
            self.func,
            f"stage {self.name!r}: execution_mode={self.execution_mode!r} sends {_func_name(self.func)} "
            "to worker processes, but it",
        )

    def set_successors(self, names: frozenset[str]) -> None:
        """Told by a graph, before each run, the names of this stage's successors (used by routers)."""

    def policy(self) -> StagePolicy:
        """The rules of a run as they stand now (hooks left at their defaults are skipped)."""
        return StagePolicy(
            name=self.name,
            execution_mode=self.execution_mode,
            get_args=self.get_args,
            process_result=self.process_result if self._overrides("process_result") else None,
            should_retry=self.should_retry,
            backoff=self.backoff,
            dedup=self.enable_duplicate_check,
            keep_success=self.enable_success_cache,
            keep_errors=self.enable_error_cache,
            max_info=self.max_info,
            chunk_size=self.chunk_size,
            own_get_args=self._overrides("get_args"),
        )

    def new_runner(self, backend: Backend, source: Any, *, extra_hooks: tuple[Hook, ...] = (), **kw: Any) -> Runner:
        """Begin a run: a fresh ``last_run``, this run's policy and hooks, and the loop that runs it.

        ``extra_hooks`` join the user's for this run only (a graph's progress bars); ``kw``
        goes to :class:`~celestialflow.runner.Runner` (``emit``, ``settled``, ...)."""
        state = RunState()
        state.start()
        self.last_run = state
        hooks = [*self.hooks, *extra_hooks]
        if self.show_progress:
            hooks.append(ProgressHook())
        return Runner(self.policy(), state, HookSet(self, hooks), backend, source, **kw)

    def _run_log(self, parent: RunLog | None = None) -> RunLog:
        if parent is not None:
            return parent.child(self.name, self.log_level)
        return RunLog(self.name, self.log_dir, self.log_level, self.log_to_file, self.log_keep)

    def execute(self, runner: Runner, total: int | None, parent_log: RunLog | None = None) -> None:
        """Open the backend, run the loop, and release everything on every exit path.

        ``runner`` comes from :meth:`new_runner`. A task's KeyboardInterrupt or
        SystemExit is raised again here, after the cleanup."""
        state = runner.state
        with self._run_log(parent_log) as runlog:
            state.log_path = runlog.path
            if runlog.enabled("DEBUG"):
                state.debug_log = runlog.log
                runlog.log.debug(
                    "start {} mode={} workers={} tasks={}",
                    self.name,
                    self.execution_mode,
                    self.worker_limit,
                    "?" if total is None else total,
                )
            cancel = True
            runner.hooks.start(total)
            try:
                runner.backend.open()
                runner.run()
                cancel = runner.stopped
            finally:
                runner.backend.close(cancel=cancel)
                self._finish(runner, runlog)
        if runner.interrupt is not None:
            raise runner.interrupt

    def _finish(self, runner: Runner, runlog: RunLog) -> None:
        state = runner.state
        state.end()
        runner.hooks.end()
        c = state.counts
        msg = "end {}: {} succeeded, {} failed, {} duplicated, {} retried in {:.3f} s"
        args = (self.name, c["succeeded"], c["failed"], c["duplicated"], c["retried"], state.elapsed)
        level = "WARNING" if c["failed"] else "INFO"
        if runlog.enabled(level):  # log_level gates our messages everywhere, not only the file
            runlog.log.log(level, msg, *args)

    def after_run(self) -> None:
        """The seed's after-run hooks: ``process_result_dict`` then ``handle_error_dict``."""
        self.process_result_dict()
        self.handle_error_dict()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("last_run", "hooks", "dask_client", "_graph"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.last_run = RunState()
        self.hooks, self.dask_client, self.pool = [], None, None
        self._graph = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, execution_mode={self.execution_mode!r}, worker_limit={self.worker_limit})"
