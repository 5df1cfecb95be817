"""The async execution loop: ``worker_limit`` coroutines share one task iterator.

Runs on the caller's event loop (so the user's coroutines may use loop-bound
resources). A task that fails with a retryable exception is put back with
``loop.call_later`` after its backoff instead of sleeping in a worker, so it
never holds a concurrency slot while it waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .hashable import make_hashable

if TYPE_CHECKING:
    from .manager import TaskManager

PROGRESS_EVERY = 64


async def run_async(m: TaskManager, tasks: Iterable[Any]) -> None:
    loop = asyncio.get_running_loop()
    it = iter(tasks)
    func = m.func
    get_args = m.get_args
    process_result = m.process_result if m._overrides("process_result") else None
    should_retry = m.should_retry
    success = m.success_dict if m.enable_success_cache else None
    errors = m.error_dict if m.enable_error_cache else None
    seen = m._seen if m.enable_duplicate_check else None
    counts = m.counts
    hooks = m._hooks
    retry_q: asyncio.Queue[tuple[Any, int]] = asyncio.Queue()
    state = {"outstanding": 0, "exhausted": False, "unreported": 0}

    def settle(n: int) -> None:
        state["unreported"] += n
        if state["unreported"] >= PROGRESS_EVERY:
            for hook in hooks:
                hook.on_progress(m, state["unreported"])
            state["unreported"] = 0

    def next_task() -> Any:
        for task in it:
            counts["processed"] += 1
            if seen is not None:
                try:
                    if task in seen:
                        counts["duplicated"] += 1
                        settle(1)
                        continue
                    seen.add(task)
                except TypeError:
                    key = make_hashable(task)
                    if key in seen:
                        counts["duplicated"] += 1
                        settle(1)
                        continue
                    seen.add(key)
            return task
        state["exhausted"] = True
        raise StopIteration

    def store(target: dict[Any, Any], task: Any, value: Any) -> None:
        try:
            target[task] = value
        except TypeError:
            target[make_hashable(task)] = value

    async def worker() -> None:
        while True:
            if not retry_q.empty():
                task, attempt = retry_q.get_nowait()
                state["outstanding"] -= 1
            else:
                task = None
                if not state["exhausted"]:
                    try:
                        task, attempt = next_task(), 0
                    except StopIteration:
                        task = None
                if task is None:
                    if state["outstanding"] == 0:
                        return
                    task, attempt = await retry_q.get()
                    state["outstanding"] -= 1
            try:
                args = get_args(task)
                result = await (func(**args) if type(args) is dict else func(*args))
                if process_result is not None:
                    result = process_result(task, result)
            except Exception as exc:
                if should_retry(task, exc, attempt):
                    counts["retried"] += 1
                    state["outstanding"] += 1
                    loop.call_later(m.backoff.delay(attempt + 1), retry_q.put_nowait, (task, attempt + 1))
                    for hook in hooks:
                        hook.on_retry(m, task, exc, attempt + 1)
                    continue
                counts["failed"] += 1
                if errors is not None:
                    store(errors, task, exc)
                for hook in hooks:
                    hook.on_failure(m, task, exc)
                m._log_failure(task, exc)
                settle(1)
                continue
            counts["succeeded"] += 1
            if success is not None:
                store(success, task, result)
            settle(1)

    await asyncio.gather(*(worker() for _ in range(m.worker_limit)))
    if state["unreported"]:
        for hook in hooks:
            hook.on_progress(m, state["unreported"])
