"""The scheduling loop shared by every execution mode.

State of one run: the input source, the chunks in flight, a heap of tasks
waiting out their backoff, the tasks of lost chunks to run again, the counters.
The loop repeats: under the stage lock (the source's), take the next chunk (due
retries, then re-runs, then fresh input) while fewer than ``max_inflight`` are
out, or sleep on the source's condition until a chunk finishes, input arrives, a
retry falls due or input ends; outside the lock, submit that chunk or account for
finished ones. A retried task waits in the heap, never in a worker. Chunk sizes
follow the work (:mod:`celestialflow.sizing`).

Who runs the loop is the back-end's choice (:meth:`Backend.drive`): one thread
submitting chunks to a pool, or every worker thread at once, each running the
chunk it took inside ``submit`` and accounting for it, so a result goes on from
the thread that computed it. The stage lock is never held while a task runs,
results are sent on or a hook is called; user code (hooks, ``get_args``,
``process_result``) runs under a second lock, one call at a time.

Every task ends accounted for. A chunk that fails as a whole is split: when its
worker died, its tasks are run again one at a time with nothing else in flight,
so the task that kills its worker is the only one to fail (with
:class:`~celestialflow.WorkerLostError`, retried only if that type is
in ``retry_exceptions``); any other chunk-level failure (arguments that cannot be
pickled, an outcome that cannot be decoded) re-runs the tasks one per chunk and
fails only those that fail alone. A KeyboardInterrupt or SystemExit raised by a
task stops the run in every mode: the tasks not run are reported as unfinished
and the exception is raised again by the caller.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import pickle
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from .backends import Backend
from .errors import NotPicklableError, WorkerLostError
from .logs import truncate
from .sizing import ChunkSize
from .tasks import admit, store, unhashable_error

if TYPE_CHECKING:
    from .hooks import HookSet
    from .runstate import RunState, StagePolicy

_NO_LOCK = contextlib.nullcontext()


class Runner:
    """Runs one stage's ``policy`` over ``source`` on ``backend``, writing into ``state``; see the
    module docstring. ``hooks`` is the run's :class:`~celestialflow.hooks.HookSet`."""

    def __init__(
        self, policy: StagePolicy, state: RunState, hooks: HookSet, backend: Backend, source: Any, *,
        emit: Callable[[list[Any]], None] | None = None, settled: Callable[[int], None] | None = None,
        on_failure: Callable[[Any, BaseException], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.policy = policy
        self.state = state
        self.hooks = hooks
        self.backend = backend
        self.source = source
        self.cond = source.cond
        self.lock = source.lock  # the condition's lock: the stage lock
        self.hook_lock = threading.Lock()
        self.emit = emit
        self.settled = settled
        self.on_failure = on_failure
        self.should_stop = should_stop or (lambda: False)
        self.fused = backend.fused
        # chunk id -> (tasks, attempts, future, isolated): taken and not yet accounted for
        self._open: dict[int, tuple[list[Any], list[int] | None, Future | None, bool]] = {}
        self.done: deque[int] = deque()  # chunks finished in a pool, to account for
        self._chunk_ids = itertools.count()
        self.max_inflight = backend.max_inflight
        self.retry_heap: list[tuple[float, int, Any, int]] = []
        self._seq = itertools.count()
        self.size = ChunkSize(backend, policy.chunk_size)
        self.singles: deque[tuple[Any, int]] = deque()  # re-run one per chunk
        self.isolate: deque[tuple[Any, int]] = deque()  # re-run one at a time, alone
        self.not_run: list[Any] = []  # handed to a chunk that stopped before them
        self.interrupt: BaseException | None = None
        self.stopped = False
        self._halted = False  # a loop ended early: the others end after their chunk
        self._inflight_items = 0  # kept by hand: read from other threads (status) without a lock

        self.counts = state.counts
        self.seen = state.seen if policy.dedup else None
        self.should_retry = policy.should_retry
        self.success = state.success if policy.keep_success else None
        self.errors = state.errors if policy.keep_errors else None
        self.get_args = policy.get_args
        self.args_lock = self.hook_lock if policy.own_get_args else _NO_LOCK
        self.process_result = None if self.fused else policy.process_result

    @property
    def inflight_items(self) -> int:
        """Tasks in those chunks (safe to read from any thread)."""
        return self._inflight_items

    def _can_submit(self) -> bool:
        if self.isolate:
            return not self._open
        if len(self._open) >= self.max_inflight:
            return False
        return bool(self.singles) or self.source.has_input()

    def _idle(self) -> bool:
        return not (self._open or self.retry_heap or self.singles or self.isolate) and self.source.exhausted

    def run(self) -> None:
        """Run to the end: the loop below, in this thread or in each worker of the back-end."""
        self.backend.drive(self._loop)

    def _loop(self) -> None:
        lock, done = self.lock, self.done
        try:
            while True:
                notes: list[tuple] = []
                finished: list[int] = []
                end = False
                with lock:
                    if self._halted:
                        return
                    if self.should_stop() or self.interrupt is not None:
                        self.stopped = True
                        self._halt()
                        return
                    picked = self._pick(notes)
                    if picked is None and not notes:  # noted settles may end the input: flush first
                        self._wait()
                        finished = list(done)
                        done.clear()
                        end = not finished and self._idle()
                        if end:
                            self.cond.notify_all()  # every worker may end
                if notes:
                    self._flush(notes)
                if picked is not None:
                    self._submit(*picked)
                for chunk_id in finished:
                    self._complete(chunk_id)
                if end:
                    return
        except BaseException:
            with lock:
                self._halt()
            raise

    def _halt(self) -> None:
        """This loop ends early: the others (workers of the same stage) end after their chunk."""
        self._halted = True
        self.cond.notify_all()

    def _wait(self) -> None:
        """Sleep on the source's condition until there is something to do (the lock is held)."""
        cond, done, heap = self.cond, self.done, self.retry_heap
        while not done:
            if self.should_stop() or self.interrupt is not None or self._halted or self._can_submit():
                return
            timeout = None
            if heap:
                timeout = heap[0][0] - time.monotonic()
                if timeout <= 0:
                    return
            if self._idle():
                return
            cond.wait(timeout)

    def _pick(self, notes: list[tuple]) -> tuple[int, list[Any], list[int] | None, bool] | None:
        """The next chunk, registered as open (the lock is held), or None when none may go now."""
        heap, open_ = self.retry_heap, self._open
        while True:
            if self.isolate:
                if open_:
                    return None
                task, attempt = self.isolate.popleft()
                return self._register([task], [attempt], True)
            if len(open_) >= self.max_inflight:
                return None
            if heap and heap[0][0] <= time.monotonic():
                tasks, attempts = [], []
                n = self.size.next(self.source, len(open_), self.max_inflight)
                now = time.monotonic()
                while heap and heap[0][0] <= now and len(tasks) < n:
                    _, _, task, attempt = heapq.heappop(heap)
                    tasks.append(task)
                    attempts.append(attempt)
                return self._register(tasks, attempts, False)
            if self.singles:
                task, attempt = self.singles.popleft()
                return self._register([task], [attempt], False)
            batch = self.source.take(self.size.next(self.source, len(open_), self.max_inflight))
            if not batch:
                return None
            self.counts["processed"] += len(batch)
            if self.seen is not None:
                batch, dup, unhashable = admit(batch, self.seen)
                final = 0
                for task in unhashable:
                    final += self._fail(task, 0, unhashable_error(task), notes)
                if dup:
                    self.counts["duplicated"] += dup
                if dup or final:
                    notes.append(("settle", dup + final))
                if not batch:
                    continue
            return self._register(batch, None, False)

    def _register(self, tasks: list[Any], attempts: list[int] | None, isolated: bool):
        chunk_id = next(self._chunk_ids)
        # open before submit: a chunk run inside submit is accounted for before it returns
        self._open[chunk_id] = (tasks, attempts, None, isolated)
        self._inflight_items += len(tasks)
        return chunk_id, tasks, attempts, isolated

    def _drop(self, chunk_id: int) -> tuple[list[Any], list[int] | None, Future | None, bool]:
        entry = self._open.pop(chunk_id)
        self._inflight_items -= len(entry[0])
        return entry

    def _submit(self, chunk_id: int, tasks: list[Any], attempts: list[int] | None, isolated: bool) -> None:
        """Submit an open chunk (lock not held); one run inside submit is accounted for at once."""
        if self.fused:
            payload = tasks
        else:
            payload, tasks, attempts = self._prepare_args(chunk_id, tasks, attempts)
            if not tasks:
                return
        with self.hook_lock if self.hooks.on_submit else _NO_LOCK:  # the chunk's tasks start
            self.hooks.submit(tasks)
        backend = self.backend
        try:
            fut = backend.submit(payload, isolated)
        except Exception as exc:  # broken pool, arguments that cannot be pickled, ...
            if backend.is_lost(exc):
                backend.recover(exc)
                try:
                    fut = backend.submit(payload, isolated)
                except Exception as again:  # noqa: BLE001
                    self._failed_at_submit(chunk_id, again)
                    return
            else:
                self._failed_at_submit(chunk_id, exc)
                return
        if fut.done():
            self._complete(chunk_id, fut)
            return
        cond, done = self.cond, self.done
        with self.lock:
            self._open[chunk_id] = (tasks, attempts, fut, isolated)

        def finished(_: Future) -> None:
            with cond:
                done.append(chunk_id)
                cond.notify_all()

        fut.add_done_callback(finished)

    def _failed_at_submit(self, chunk_id: int, exc: BaseException) -> None:
        notes: list[tuple] = []
        with self.lock:
            tasks, attempts, _, isolated = self._drop(chunk_id)
            self._chunk_failed(tasks, attempts, exc, None, isolated, notes, at_submit=True)
        self._flush(notes)

    def _prepare_args(self, chunk_id: int, tasks: list[Any], attempts: list[int] | None):
        """Run ``get_args``; a failure there is that task's error and takes it out of the chunk.
        Returns the arguments, tasks and attempts left."""
        get_args = self.get_args
        payload, kept, kept_attempts = [], [], []
        failed: list[tuple[Any, int, BaseException]] = []
        with self.args_lock:
            for i, task in enumerate(tasks):
                try:
                    payload.append(get_args(task))
                except Exception as exc:
                    failed.append((task, attempts[i] if attempts else 0, exc))
                    continue
                kept.append(task)
                kept_attempts.append(attempts[i] if attempts else 0)
        if not failed:
            return payload, tasks, attempts
        notes: list[tuple] = []
        with self.lock:
            final = sum(self._fail(task, attempt, exc, notes) for task, attempt, exc in failed)
            isolated = self._drop(chunk_id)[3]
            if kept:
                self._open[chunk_id] = (kept, kept_attempts, None, isolated)
                self._inflight_items += len(kept)
            if final:
                notes.append(("settle", final))
        self._flush(notes)
        return payload, kept, kept_attempts

    def _chunk_failed(
        self, tasks: list[Any], attempts: list[int] | None, exc: BaseException, fut: Future | None,
        isolated: bool, notes: list[tuple], at_submit: bool = False,
    ) -> None:
        """A chunk failed as a whole: re-run its tasks so that only a guilty one fails (the lock is held)."""
        pairs = list(zip(tasks, attempts or [0] * len(tasks)))
        lost = self.backend.is_lost(exc)
        if lost:
            if not at_submit:
                self.backend.recover(fut)
            if not isolated:
                self.isolate.extend(pairs)
                self.cond.notify_all()
                return
        elif len(pairs) > 1:
            self.singles.extend(pairs)
            self.cond.notify_all()
            return
        task, attempt = pairs[0]
        if lost:
            exc = WorkerLostError(
                f"the worker process died while running task {truncate(task, self.policy.max_info)} "
                f"of {self.policy.name!r} ({type(exc).__name__}: {exc})"
            )
        elif at_submit and isinstance(exc, (pickle.PicklingError, TypeError, AttributeError)):
            exc = NotPicklableError(
                f"the arguments of task {truncate(task, self.policy.max_info)} cannot be pickled for "
                f"execution_mode={self.policy.execution_mode!r}: {exc}"
            )
        notes.append(("settle", self._fail(task, attempt, exc, notes)))

    def _complete(self, chunk_id: int, fut: Any = None) -> None:
        """Account for a finished chunk: its state under the lock; then, outside it, the hooks,
        the results sent on and the settled count, in that order."""
        lock = self.lock
        notes: list[tuple] = []
        # read without the lock: only the thread accounting for a chunk touches its entry
        tasks, attempts, open_fut, isolated = self._open[chunk_id]
        fut = fut if fut is not None else open_fut
        try:
            outcome, nbytes = self.backend.outcome(fut)
        except BaseException as exc:  # the whole chunk failed (worker died, pool broken, ...)
            with lock:
                self._drop(chunk_id)
                if not isinstance(exc, KeyboardInterrupt):
                    self._chunk_failed(tasks, attempts, exc, fut, isolated, notes)
            if isinstance(exc, KeyboardInterrupt):
                raise
            self._flush(notes)
            return
        results, errors, ran, elapsed, stop = outcome
        not_run, tasks = tasks[ran:], tasks[:ran]  # not run: cancelled or interrupted before them
        process_result = self.process_result
        if process_result is not None:  # user code: under the hook lock, outside the stage lock
            errors = dict(errors) if errors else {}
            with self.hook_lock:
                for i, task in enumerate(tasks):
                    if i not in errors:
                        try:
                            results[i] = process_result(task, results[i])
                        except Exception as e:
                            errors[i] = e
        with lock:
            self._drop(chunk_id)
            self.size.learn(ran, elapsed, nbytes)
            if not_run:
                self.not_run.extend(not_run)
            if stop is not None and self.interrupt is None:
                self.interrupt = stop
                self.cond.notify_all()
            out, ok_tasks, final = (results, tasks, len(tasks)) if not errors else ([], [], 0)
            if errors:
                for i, task in enumerate(tasks):
                    exc = errors.get(i)
                    if exc is None:
                        out.append(results[i])
                        ok_tasks.append(task)
                        final += 1
                    else:
                        final += self._fail(task, attempts[i] if attempts else 0, exc, notes)
            self.counts["succeeded"] += len(out)
            if self.success is not None:
                for task, value in zip(ok_tasks, out):
                    store(self.success, task, value)
        if notes:
            self._flush(notes)
        if out and self.hooks.on_results:
            with self.hook_lock:
                self.hooks.results(ok_tasks, out)
        if self.emit is not None and out:
            self.emit(out)
        self._settle(final)

    def _settle(self, n: int) -> None:
        """``n`` inputs reached their final state (done, failed or duplicate)."""
        if not n:
            return
        if self.settled:
            self.settled(n)
        if self.hooks.on_progress:
            with self.hook_lock:
                self.hooks.progress(n)

    def _fail(self, task: Any, attempt: int, exc: BaseException, notes: list[tuple]) -> int:
        """Schedule a retry or record a final failure (the lock is held; the hooks to call go
        to ``notes``, for :meth:`_flush`); returns 1 if final."""
        if self.should_retry(task, exc, attempt):
            self.counts["retried"] += 1
            due = time.monotonic() + self.policy.backoff.delay(attempt + 1)
            heapq.heappush(self.retry_heap, (due, next(self._seq), task, attempt + 1))
            self.cond.notify_all()  # a waiting worker sleeps until the earliest retry is due
            notes.append(("retry", task, exc, attempt + 1))
            return 0
        self.counts["failed"] += 1
        if self.errors is not None:
            store(self.errors, task, exc)
        notes.append(("failure", task, exc))
        return 1

    def _flush(self, notes: list[tuple]) -> None:
        """Make the calls noted under the stage lock, in order (hooks one at a time)."""
        hooks = self.hooks
        for note in notes:
            if note[0] == "settle":
                self._settle(note[1])
            elif note[0] == "retry":
                if hooks.on_retry:
                    with self.hook_lock:
                        hooks.retry(*note[1:])
            else:
                _, task, exc = note
                with self.hook_lock:
                    if self.on_failure is not None:
                        self.on_failure(task, exc)
                    hooks.failure(task, exc)
                log = self.state.debug_log
                if log is not None:
                    p = self.policy
                    log.debug("{} failed on {}: {}: {}", p.name, truncate(task, p.max_info), type(exc).__name__, exc)

    def unfinished(self) -> list[Any]:
        """Tasks started but not finished when a run stopped early: in flight, handed to a
        chunk that stopped before them, waiting to be re-run, or waiting to retry."""
        with self.lock:
            in_flight = [t for entry in self._open.values() for t in entry[0]]
            rerun = [t for t, _ in self.isolate] + [t for t, _ in self.singles]
            return in_flight + self.not_run + rerun + [t for _, _, t, _ in self.retry_heap]
