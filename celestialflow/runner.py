"""The scheduling loop shared by every execution mode.

State kept by one run: the input source, the chunks in flight (futures), a heap
of tasks waiting out their backoff before another attempt, the tasks of lost
chunks waiting to be run again, and the counters. The loop repeats: submit
chunks while fewer than ``max_inflight`` are out (retries that are due first,
then re-runs, then fresh input); sleep on the source's condition until a chunk
finishes, input arrives, a retry falls due, or input ends; account for finished
chunks. A retried task waits in the heap, never in a worker, so it does not hold
up other tasks.

Chunks follow the work: each starts small and grows (at most doubling per
finished chunk) towards the back-end's target seconds of work, measured in the
worker; chunks that send back many bytes are cut to a byte budget; a pool's
chunk never takes more than its share of the input actually available, so every
worker gets some. A slow task is therefore handed over, and its result passed
on, one at a time; trivial tasks travel in big chunks.

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

import heapq
import itertools
import pickle
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from .backends import Backend
from .errors import NotPicklableError, WorkerLostError
from .logs import truncate
from .tasks import make_hashable, store

if TYPE_CHECKING:
    from .hooks import HookSet
    from .runstate import RunState, StagePolicy

#: Bytes a chunk's outcome may take on its way back from a worker process.
CHUNK_BYTES = 8 << 20


class Runner:
    """Runs one stage's ``policy`` over ``source`` on ``backend``, writing into ``state``; see the
    module docstring. ``hooks`` is the run's :class:`~celestialflow.hooks.HookSet`."""

    def __init__(
        self,
        policy: StagePolicy,
        state: RunState,
        hooks: HookSet,
        backend: Backend,
        source: Any,
        *,
        emit: Callable[[list[Any]], None] | None = None,
        settled: Callable[[int], None] | None = None,
        on_failure: Callable[[Any, BaseException], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.policy = policy
        self.state = state
        self.hooks = hooks
        self.backend = backend
        self.source = source
        self.cond = source.cond
        self.emit = emit
        self.settled = settled
        self.on_failure = on_failure
        self.should_stop = should_stop or (lambda: False)
        self.fused = backend.fused
        # chunk id -> (tasks, attempts, future, isolated): submitted and not yet accounted for
        self._open: dict[int, tuple[list[Any], list[int] | None, Future | None, bool]] = {}
        self.done: deque[int] = deque()
        self._chunk_ids = itertools.count()
        self.max_inflight = backend.max_inflight
        self.retry_heap: list[tuple[float, int, Any, int]] = []
        self._seq = itertools.count()
        self.fixed_chunk = policy.chunk_size
        self.chunk = backend.first_chunk
        self.per_task: float | None = None
        self.singles: deque[tuple[Any, int]] = deque()  # re-run one per chunk
        self.isolate: deque[tuple[Any, int]] = deque()  # re-run one at a time, alone
        self.not_run: list[Any] = []  # handed to a chunk that stopped before them
        self.interrupt: BaseException | None = None
        self.stopped = False
        self._inflight_items = 0  # kept by hand: read from other threads (status) without a lock

        self.counts = state.counts
        self.dedup = policy.dedup
        self.seen = state.seen
        self.should_retry = policy.should_retry
        self.success = state.success if policy.keep_success else None
        self.errors = state.errors if policy.keep_errors else None
        self.get_args = policy.get_args
        self.process_result = policy.process_result

    @property
    def inflight_items(self) -> int:
        """Tasks in those chunks (safe to read from any thread)."""
        return self._inflight_items

    def _chunk_size(self) -> int:
        if self.fixed_chunk:
            return self.fixed_chunk
        n = self.chunk
        if not self.fused:  # a pool: never more than a free worker's share of what is there
            avail = self.source.available()
            if avail is not None:
                b = self.backend
                # workers busy with a chunk each get none; async chunks overlap, so by worker count
                free = b.workers if b.target is None else max(1, min(b.workers, self.max_inflight - len(self._open)))
                n = min(n, max(1, -(-avail // free)))
        return n

    def _learn(self, ran: int, elapsed: float, nbytes: int) -> None:
        """Adapt the chunk size to what the last chunk measured in its worker."""
        if ran <= 0 or self.fixed_chunk:
            return
        per = elapsed / ran
        self.per_task = per if self.per_task is None else 0.5 * (self.per_task + per)
        b = self.backend
        if b.target is None:
            fit = b.max_chunk
        else:
            fit = int(b.target / self.per_task) if self.per_task > 0 else b.max_chunk
        if nbytes:
            fit = min(fit, int(CHUNK_BYTES * ran / nbytes))
        self.chunk = max(1, min(b.max_chunk, fit, 2 * self.chunk))

    def _can_submit(self) -> bool:
        if self.isolate:
            return not self._open
        if len(self._open) >= self.max_inflight:
            return False
        return bool(self.singles) or self.source.has_input()

    def _idle(self) -> bool:
        return (
            not self._open
            and not self.retry_heap
            and not self.singles
            and not self.isolate
            and self.source.exhausted
        )

    def run(self) -> None:
        cond, done = self.cond, self.done
        while True:
            if self.should_stop():
                self.stopped = True
                break
            self._submit_ready()
            with cond:
                while not done:
                    if self.should_stop():
                        break
                    if self._can_submit():
                        break
                    timeout = None
                    if self.retry_heap:
                        timeout = self.retry_heap[0][0] - time.monotonic()
                        if timeout <= 0:
                            break
                    if self._idle():
                        break
                    cond.wait(timeout)
                finished = list(done)
                done.clear()
            for chunk_id in finished:
                self._complete(chunk_id)
            if self.interrupt is not None:
                self.stopped = True
                break
            if not done and self._idle():
                break

    def _submit_ready(self) -> None:
        heap = self.retry_heap
        while True:
            if self.isolate:
                if not self._open:
                    task, attempt = self.isolate.popleft()
                    self._submit([task], [attempt], isolated=True)
                return
            if len(self._open) >= self.max_inflight:
                return
            if heap and heap[0][0] <= time.monotonic():
                tasks, attempts = [], []
                n = self._chunk_size()
                now = time.monotonic()
                while heap and heap[0][0] <= now and len(tasks) < n:
                    _, _, task, attempt = heapq.heappop(heap)
                    tasks.append(task)
                    attempts.append(attempt)
                self._submit(tasks, attempts)
                continue
            if self.singles:
                task, attempt = self.singles.popleft()
                self._submit([task], [attempt])
                continue
            batch = self.source.take(self._chunk_size())
            if not batch:
                return
            self.counts["processed"] += len(batch)
            if self.dedup:
                batch = self._admit(batch)
                if not batch:
                    continue
            self._submit(batch, None)

    def _admit(self, batch: list[Any]) -> list[Any]:
        seen = self.seen
        fresh = []
        final = 0
        for task in batch:
            try:
                if task in seen:
                    continue
                seen.add(task)
            except TypeError:
                try:
                    key = make_hashable(task)
                except TypeError:
                    err = TypeError(
                        f"task of type {type(task).__name__} cannot be made hashable for the duplicate "
                        f"check; pass enable_duplicate_check=False to run such tasks"
                    )
                    final += self._fail(task, 0, err)
                    continue
                if key in seen:
                    continue
                seen.add(key)
            fresh.append(task)
        dup = len(batch) - len(fresh) - final
        if dup:
            self.counts["duplicated"] += dup
        if dup or final:
            self._settle(dup + final)
        return fresh

    def _submit(self, tasks: list[Any], attempts: list[int] | None, isolated: bool = False) -> None:
        if self.fused:
            payload = tasks
        else:
            payload, tasks, attempts = self._prepare_args(tasks, attempts)
            if not tasks:
                return
        chunk_id = next(self._chunk_ids)
        # registered before submit: a serial back-end runs the chunk inside it
        self._open[chunk_id] = (tasks, attempts, None, isolated)
        self._inflight_items += len(tasks)
        try:
            fut = self.backend.submit(payload, isolated)
        except Exception as exc:  # broken pool, arguments that cannot be pickled, ...
            if self.backend.is_lost(exc):
                self.backend.recover(exc)
                try:
                    fut = self.backend.submit(payload, isolated)
                except Exception as again:  # noqa: BLE001
                    self._drop(chunk_id)
                    self._chunk_failed(tasks, attempts, again, None, isolated, at_submit=True)
                    return
            else:
                self._drop(chunk_id)
                self._chunk_failed(tasks, attempts, exc, None, isolated, at_submit=True)
                return
        self._open[chunk_id] = (tasks, attempts, fut, isolated)
        if self.hooks.on_submit:
            self.hooks.submit(tasks)
        cond, done = self.cond, self.done

        def finished(_: Future) -> None:
            with cond:
                done.append(chunk_id)
                cond.notify_all()

        fut.add_done_callback(finished)

    def _drop(self, chunk_id: int) -> tuple[list[Any], list[int] | None, Future | None, bool]:
        entry = self._open.pop(chunk_id)
        self._inflight_items -= len(entry[0])
        return entry

    def _prepare_args(self, tasks: list[Any], attempts: list[int] | None):
        """Run ``get_args`` in this thread; a failure there is that task's error."""
        get_args = self.get_args
        payload, kept, kept_attempts = [], [], []
        failed: list[tuple[Any, int, BaseException]] = []
        for i, task in enumerate(tasks):
            try:
                payload.append(get_args(task))
            except Exception as exc:
                failed.append((task, attempts[i] if attempts else 0, exc))
                continue
            kept.append(task)
            kept_attempts.append(attempts[i] if attempts else 0)
        if failed:
            final = 0
            for task, attempt, exc in failed:
                final += self._fail(task, attempt, exc)
            if final:
                self._settle(final)
        return payload, kept, kept_attempts

    def _chunk_failed(
        self,
        tasks: list[Any],
        attempts: list[int] | None,
        exc: BaseException,
        fut: Future | None,
        isolated: bool,
        at_submit: bool = False,
    ) -> None:
        """A chunk failed as a whole: re-run its tasks so that only a guilty one fails."""
        pairs = list(zip(tasks, attempts or [0] * len(tasks)))
        lost = self.backend.is_lost(exc)
        if lost:
            if not at_submit:
                self.backend.recover(fut)
            if not isolated:
                self.isolate.extend(pairs)
                return
        elif len(pairs) > 1:
            self.singles.extend(pairs)
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
        if self._fail(task, attempt, exc):
            self._settle(1)

    def _complete(self, chunk_id: int) -> None:
        tasks, attempts, fut, isolated = self._drop(chunk_id)
        assert fut is not None
        try:
            outcome, nbytes = self.backend.outcome(fut)
        except BaseException as exc:  # the whole chunk failed (worker died, pool broken, ...)
            if isinstance(exc, KeyboardInterrupt):
                raise
            self._chunk_failed(tasks, attempts, exc, fut, isolated)
            return
        results, errors, ran, elapsed, stop = outcome
        self._learn(ran, elapsed, nbytes)
        if ran < len(tasks):  # cancelled or interrupted before these
            self.not_run.extend(tasks[ran:])
            tasks = tasks[:ran]
        if stop is not None and self.interrupt is None:
            self.interrupt = stop
        process_result = None if self.fused else self.process_result
        if not errors and process_result is None:
            out, ok_tasks, final = results, tasks, len(tasks)
        else:
            out, ok_tasks, final = [], [], 0
            for i, task in enumerate(tasks):
                exc = errors.get(i) if errors else None
                if exc is None and process_result is not None:
                    try:
                        results[i] = process_result(task, results[i])
                    except Exception as e:
                        exc = e
                if exc is None:
                    out.append(results[i])
                    ok_tasks.append(task)
                    final += 1
                else:
                    final += self._fail(task, attempts[i] if attempts else 0, exc)
        self.counts["succeeded"] += len(out)
        if self.success is not None:
            success = self.success
            for task, value in zip(ok_tasks, out):
                store(success, task, value)
        if out and self.hooks.on_results:
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
            self.hooks.progress(n)

    def _fail(self, task: Any, attempt: int, exc: BaseException) -> int:
        """Schedule a retry or record a final failure; returns 1 if final."""
        if self.should_retry(task, exc, attempt):
            self.counts["retried"] += 1
            due = time.monotonic() + self.policy.backoff.delay(attempt + 1)
            heapq.heappush(self.retry_heap, (due, next(self._seq), task, attempt + 1))
            self.hooks.retry(task, exc, attempt + 1)
            return 0
        self.counts["failed"] += 1
        if self.errors is not None:
            store(self.errors, task, exc)
        if self.on_failure is not None:
            self.on_failure(task, exc)
        self.hooks.failure(task, exc)
        log = self.state.debug_log
        if log is not None:
            p = self.policy
            log.debug("{} failed on {}: {}: {}", p.name, truncate(task, p.max_info), type(exc).__name__, exc)
        return 1

    def unfinished(self) -> list[Any]:
        """Tasks started but not finished when a run stopped early: in flight, handed to a
        chunk that stopped before them, waiting to be re-run, or waiting to retry."""
        in_flight = [t for entry in list(self._open.values()) for t in entry[0]]
        return (
            in_flight
            + self.not_run
            + [t for t, _ in self.isolate]
            + [t for t, _ in self.singles]
            + [t for _, _, t, _ in self.retry_heap]
        )
