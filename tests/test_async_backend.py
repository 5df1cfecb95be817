"""The async back-end's worker coroutines: bounds, failures and cancellation."""

from __future__ import annotations

import asyncio

from celestialflow import TaskManager


def tm(func, **kw):
    kw.setdefault("log_to_file", False)
    kw.setdefault("enable_success_cache", True)
    kw.setdefault("enable_error_cache", True)
    return TaskManager(func, "async", **kw)


def test_bound_holds_across_many_small_chunks():
    active, peak = [0], [0]

    async def f(x):
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        await asyncio.sleep(0.0005)
        active[0] -= 1
        return x

    m = tm(f, worker_limit=5, chunk_size=1)
    m.start(range(60))
    assert 1 < peak[0] <= 5
    assert m.get_success_dict() == {x: x for x in range(60)}


def test_task_that_cancels_itself_fails_alone():
    async def f(x):
        await asyncio.sleep(0)
        if x == 3:
            raise asyncio.CancelledError("gave up")
        return x * 2

    m = tm(f, worker_limit=4, max_retries=0)
    m.start(range(8))
    assert m.get_success_dict() == {x: x * 2 for x in range(8) if x != 3}
    assert isinstance(m.get_error_dict()[3], BaseException) and set(m.get_error_dict()) == {3}


def test_cancelled_start_async_cancels_running_coroutines_on_the_callers_loop():
    started = asyncio.Event
    log: list[str] = []

    async def main():
        first = started()

        async def f(x):
            first.set()
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                log.append("cancelled")
                raise
            return x

        m = tm(f, worker_limit=3)
        run = asyncio.create_task(m.start_async(range(100)))
        await first.wait()
        run.cancel()
        try:
            await run
        except asyncio.CancelledError:
            pass
        for _ in range(50):  # the cancellation reaches the workers on this loop
            if len(log) == 3:
                break
            await asyncio.sleep(0.01)
        return len(asyncio.all_tasks()) - 1  # besides main

    left = asyncio.run(main())
    assert log == ["cancelled"] * 3
    assert left == 0
