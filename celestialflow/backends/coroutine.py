"""Async mode: coroutines awaited on an event loop, at most ``workers`` at once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from ..tasks import invoke
from .base import Backend
from .chunk import INTERRUPTS, Outcome


class AsyncBackend(Backend):
    """Coroutines on an event loop, at most ``workers`` awaited at once.

    Without ``loop`` the back-end runs a loop of its own in a thread; with one (the
    caller's, for ``start_async``) the coroutines run there and the loop is left open.
    A chunk's tasks are awaited together, so a chunk takes about as long as its
    slowest task: chunks are not sized by duration (``target`` None), only by what
    is available."""

    name = "async"
    target = None
    first_chunk = 256

    def __init__(self, func: Callable, workers: int, loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(workers)
        self._func = func
        self._given = loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sem: asyncio.Semaphore | None = None
        self._futures: set[Any] = set()

    def open(self) -> None:
        if self._given is not None:
            self._loop = self._given
            return
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            ready.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=serve, name="celestialflow-async", daemon=True)
        self._thread.start()
        ready.wait()

    async def _one(self, args: Any) -> Any:
        if self._sem is None:  # created on the loop it serves
            self._sem = asyncio.Semaphore(self.workers)
        async with self._sem:
            try:
                return await invoke(self._func, args)
            except INTERRUPTS as exc:
                # returned, not raised: asyncio re-raises KeyboardInterrupt/SystemExit out of
                # the loop, which would kill the loop's thread and leave the run waiting
                return _Interrupted(exc)

    async def _chunk(self, args_list: Sequence[Any]) -> Outcome:
        t0 = time.perf_counter()
        outs = await asyncio.gather(*(self._one(a) for a in args_list), return_exceptions=True)
        outs = [out.exc if type(out) is _Interrupted else out for out in outs]
        results: list[Any] = []
        errors: dict[int, BaseException] = {}
        stop: BaseException | None = None
        for i, out in enumerate(outs):
            if isinstance(out, Exception):
                errors[i] = out
                results.append(None)
            elif isinstance(out, INTERRUPTS):
                stop = out
                errors[i] = out
                results.append(None)
            elif isinstance(out, BaseException):  # CancelledError: the run is being cancelled
                raise out
            else:
                results.append(out)
        if stop is not None:  # tasks after an interrupt count as not run, like in the other modes
            first = next(i for i, o in enumerate(outs) if o is stop)
            results, errors = results[:first], {i: e for i, e in errors.items() if i < first}
        return results, errors, len(results), time.perf_counter() - t0, stop

    def submit(self, payload: Sequence[Any], alone: bool = False) -> Future:
        assert self._loop is not None
        fut = asyncio.run_coroutine_threadsafe(self._chunk(payload), self._loop)
        self._futures.add(fut)
        fut.add_done_callback(self._futures.discard)
        return fut

    def close(self, cancel: bool = False) -> None:
        loop = self._loop
        if loop is None:
            return
        if cancel:
            for fut in list(self._futures):
                fut.cancel()
        if self._thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join()
            loop.close()
        self._loop = self._thread = None


class _Interrupted:
    """A task's KeyboardInterrupt or SystemExit, carried out of the event loop as a value."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
