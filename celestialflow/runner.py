"""The scheduling loop shared by every execution mode.

State kept by one run: the input source, the chunks in flight (futures), a heap
of tasks waiting out their backoff before another attempt, and the counters.
The loop repeats: submit chunks while fewer than ``max_inflight`` are out
(retries that are due first, then fresh input); sleep on the source's condition
until a chunk finishes, input arrives, a retry falls due, or input ends;
account for finished chunks. A retried task waits in the heap, never in a worker,
so it does not hold up other tasks.

Chunk size adapts to the work: for serial runs it grows while chunks finish fast
and shrinks when they take long (few Python-level steps for trivial tasks, quick
hand-over and stop for slow ones); for pools it is about ``total / (4 * workers)``
so every worker stays busy to the end.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from .executors import Backend
from .hashable import make_hashable

if TYPE_CHECKING:
    from .manager import TaskManager

# Fused (serial) chunks aim at FUSED_TARGET seconds each: trivial tasks go through
# in big chunks, slow ones reach the next stage (and see a stop request) quickly.
# A chunk shrinks at once when tasks are slow and at most doubles when they are fast.
FUSED_START, FUSED_MAX = 16, 2048
FUSED_TARGET = 0.01
POOL_CHUNK_MAX = {"thread": 256, "async": 256, "process": 4096, "dask": 4096}


class Runner:
    """Runs ``manager`` over ``source`` on ``backend``; see the module docstring."""

    def __init__(
        self,
        manager: TaskManager,
        backend: Backend,
        source: Any,
        *,
        emit: Callable[[list[Any]], None] | None = None,
        settled: Callable[[int], None] | None = None,
        on_failure: Callable[[Any, BaseException], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        chunk_size: int | None = None,
    ) -> None:
        self.m = manager
        self.backend = backend
        self.source = source
        self.cond = source.cond
        self.emit = emit
        self.settled = settled
        self.on_failure = on_failure
        self.should_stop = should_stop or (lambda: False)
        self.fused = backend.fused
        self.done: deque[tuple[int, list[Any], list[int] | None, Future, float]] = deque()
        self._open: dict[int, list[Any]] = {}  # tasks of each chunk submitted and not yet accounted for
        self._chunk_ids = itertools.count()
        self.max_inflight = 1 if backend.name == "serial" else backend.workers * 2
        self.retry_heap: list[tuple[float, int, Any, int]] = []
        self._seq = itertools.count()
        self.fixed_chunk = chunk_size
        self.fused_chunk = FUSED_START
        self.stopped = False

        m = manager
        self.dedup = m.enable_duplicate_check
        self.seen = m._seen
        self.should_retry = m.should_retry
        self.success = m.success_dict if m.enable_success_cache else None
        self.errors = m.error_dict if m.enable_error_cache else None
        self.get_args = m.get_args
        self.process_result = m.process_result if m._overrides("process_result") else None
        self.hooks = m._hooks

    @property
    def inflight(self) -> int:
        """Chunks submitted and not accounted for."""
        return len(self._open)

    @property
    def inflight_items(self) -> int:
        """Tasks in those chunks."""
        return sum(len(tasks) for tasks in self._open.values())

    # -- chunking -------------------------------------------------------------
    def _chunk_size(self) -> int:
        if self.fixed_chunk:
            return self.fixed_chunk
        if self.fused:
            return self.fused_chunk
        cap = POOL_CHUNK_MAX.get(self.backend.name, 256)
        total = self.source.total
        if total is not None:
            want = -(-total // (self.backend.workers * 4))
        else:
            want = self.source.available() // self.backend.workers
        return max(1, min(cap, want))

    # -- the loop ---------------------------------------------------------------
    def run(self) -> None:
        source, cond, done = self.source, self.cond, self.done
        while True:
            if self.should_stop():
                self.stopped = True
                break
            self._submit_ready()
            with cond:
                while not done:
                    if self.should_stop():
                        break
                    if self.inflight < self.max_inflight and source.has_input():
                        break
                    timeout = None
                    if self.retry_heap:
                        timeout = self.retry_heap[0][0] - time.monotonic()
                        if timeout <= 0:
                            break
                    if not self.inflight and not self.retry_heap and source.exhausted:
                        break
                    cond.wait(timeout)
                finished = list(done)
                done.clear()
            for item in finished:
                self._complete(*item)
            if not self.inflight and not self.retry_heap and not done and source.exhausted:
                break

    def _submit_ready(self) -> None:
        heap = self.retry_heap
        while self.inflight < self.max_inflight:
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
            batch = self.source.take(self._chunk_size())
            if not batch:
                return
            self.m.counts["processed"] += len(batch)
            if self.dedup:
                batch = self._admit(batch)
                if not batch:
                    continue
            self._submit(batch, None)

    def _admit(self, batch: list[Any]) -> list[Any]:
        seen = self.seen
        fresh = []
        for task in batch:
            try:
                if task in seen:
                    continue
                seen.add(task)
            except TypeError:
                key = make_hashable(task)
                if key in seen:
                    continue
                seen.add(key)
            fresh.append(task)
        dup = len(batch) - len(fresh)
        if dup:
            self.m.counts["duplicated"] += dup
            self._settle(dup)
        return fresh

    def _submit(self, tasks: list[Any], attempts: list[int] | None) -> None:
        if self.fused:
            payload = tasks
        else:
            payload, tasks, attempts = self._prepare_args(tasks, attempts)
            if not tasks:
                return
        chunk_id = next(self._chunk_ids)
        self._open[chunk_id] = tasks  # before submit: a serial back-end runs the chunk inside it
        t0 = time.perf_counter()
        fut = self.backend.submit(payload)
        entry = (chunk_id, tasks, attempts, fut, t0)
        cond, done = self.cond, self.done

        def finished(_: Future) -> None:
            with cond:
                done.append(entry)
                cond.notify_all()

        fut.add_done_callback(finished)

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

    def _complete(
        self, chunk_id: int, tasks: list[Any], attempts: list[int] | None, fut: Future, t0: float
    ) -> None:
        if self.fused and tasks:
            per_task = (time.perf_counter() - t0) / len(tasks)
            fit = int(FUSED_TARGET / per_task) if per_task > 0 else FUSED_MAX
            self.fused_chunk = max(1, min(FUSED_MAX, fit, 2 * self.fused_chunk))
        del self._open[chunk_id]
        try:
            results, errors = fut.result()
        except BaseException as exc:  # the whole chunk failed (pool broken, pickling, ...)
            if isinstance(exc, KeyboardInterrupt):
                raise
            results, errors = [None] * len(tasks), dict.fromkeys(range(len(tasks)), exc)
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
        self.m.counts["succeeded"] += len(out)
        if self.success is not None:
            success = self.success
            for task, value in zip(ok_tasks, out):
                try:
                    success[task] = value
                except TypeError:
                    success[make_hashable(task)] = value
        if self.emit is not None and out:
            self.emit(out)
        self._settle(final)

    def _settle(self, n: int) -> None:
        """``n`` inputs reached their final state (done, failed or duplicate)."""
        if self.settled:
            self.settled(n)
        for hook in self.hooks:
            hook.on_progress(self.m, n)

    def _fail(self, task: Any, attempt: int, exc: BaseException) -> int:
        """Schedule a retry or record a final failure; returns 1 if final."""
        if self.should_retry(task, exc, attempt):
            self.m.counts["retried"] += 1
            due = time.monotonic() + self.m.backoff.delay(attempt + 1)
            heapq.heappush(self.retry_heap, (due, next(self._seq), task, attempt + 1))
            for hook in self.hooks:
                hook.on_retry(self.m, task, exc, attempt + 1)
            return 0
        self.m.counts["failed"] += 1
        if self.errors is not None:
            try:
                self.errors[task] = exc
            except TypeError:
                self.errors[make_hashable(task)] = exc
        if self.on_failure is not None:
            self.on_failure(task, exc)
        for hook in self.hooks:
            hook.on_failure(self.m, task, exc)
        self.m._log_failure(task, exc)
        return 1

    def unfinished(self) -> list[Any]:
        """Tasks started but not finished when a run stopped early: in flight or waiting to retry."""
        in_flight = [t for tasks in self._open.values() for t in tasks]
        return in_flight + [t for _, _, t, _ in self.retry_heap]
