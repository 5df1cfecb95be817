"""Async mode: coroutines awaited on an event loop, at most ``workers`` at once.

The loop runs ``workers`` long-lived worker coroutines (started when work comes,
ended when none is left) that take the next task from one queue shared by every
chunk in flight and await it. A task therefore costs one await: no ``Task``, no
semaphore, no ``gather`` per task. Chunks reach the loop through an inbox that
wakes the loop once for everything submitted since it last looked, not once per
chunk. A chunk's future is set when its last task ends.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from typing import Any

from ..tasks import invoke
from .base import Backend
from .chunk import INTERRUPTS, Outcome


class AsyncBackend(Backend):
    """Coroutines on an event loop, at most ``workers`` awaited at once; see the module docstring.

    Without ``loop`` the back-end runs a loop of its own in a thread; with one (the
    caller's, for ``start_async``) the coroutines run there and the loop is left open.
    A chunk ends with its slowest task, so chunks are not sized by duration
    (``target`` None), only by what is available."""

    name = "async"
    target = None
    first_chunk = 256

    def __init__(self, func: Callable, workers: int, loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(workers)
        self._func = func
        self._given = loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._futures: set[Future] = set()  # chunk futures not yet set
        self._lock = threading.Lock()
        self._inbox: list[tuple[Future, Sequence[Any]]] = []  # submitted, not yet on the loop
        self._woken = False  # a drain of the inbox is scheduled on the loop
        self._queue: deque[tuple[_Chunk, int]] = deque()  # on the loop: tasks waiting for a worker
        self._workers: set[asyncio.Task] = set()
        self._active = 0  # workers started and not yet returned (their tasks may linger in the set)

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

    def submit(self, payload: Sequence[Any], alone: bool = False) -> Future:
        loop = self._loop
        assert loop is not None
        fut: Future = Future()
        self._futures.add(fut)
        fut.add_done_callback(self._futures.discard)
        with self._lock:
            self._inbox.append((fut, payload))
            wake, self._woken = not self._woken, True
        if wake:
            loop.call_soon_threadsafe(self._drain)
        return fut

    def _drain(self) -> None:
        """On the loop: queue the submitted chunks' tasks and start the workers they need."""
        with self._lock:
            inbox, self._inbox = self._inbox, []
            self._woken = False
        queue = self._queue
        for fut, payload in inbox:
            if fut.cancelled():
                continue
            chunk = _Chunk(fut, payload)
            if not payload:
                chunk.finish()
                continue
            queue.extend((chunk, i) for i in range(len(payload)))
        loop = self._loop
        assert loop is not None
        for _ in range(min(self.workers - self._active, len(queue))):
            self._active += 1
            task = loop.create_task(self._work())
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)

    async def _work(self) -> None:
        """A worker: await queued tasks one after another until none is left."""
        queue, func = self._queue, self._func
        me = asyncio.current_task()
        assert me is not None
        try:
            while queue:
                chunk, i = queue.popleft()
                args = chunk.args[i]
                try:
                    value = await (func(*args) if type(args) is tuple else invoke(func, args))
                except asyncio.CancelledError as exc:
                    if me.cancelling():  # this worker is being cancelled (the run was): stop
                        raise
                    chunk.fail(exc)  # a task cancelled itself: the chunk fails as a whole
                    continue
                except (Exception, *INTERRUPTS) as exc:  # KeyboardInterrupt/SystemExit: kept, not raised
                    chunk.error(i, exc)
                    continue
                except BaseException as exc:  # noqa: BLE001 - anything else fails the chunk as a whole
                    chunk.fail(exc)
                    continue
                chunk.result(i, value)
        finally:
            self._active -= 1

    def _abandon(self) -> None:
        """On the loop: drop the queued tasks and cancel the running ones."""
        self._queue.clear()
        for task in list(self._workers):
            task.cancel()

    def close(self, cancel: bool = False) -> None:
        loop = self._loop
        if loop is None:
            return
        if cancel:
            for fut in list(self._futures):
                fut.cancel()
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._abandon)
        if self._thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join()
            loop.close()
        self._loop = self._thread = None


class _Chunk:
    """One submitted chunk on the loop: its tasks' outcomes as they end, and its future."""

    __slots__ = ("fut", "args", "results", "errors", "left", "t0", "failed")

    def __init__(self, fut: Future, args: Sequence[Any]) -> None:
        self.fut = fut
        self.args = args
        self.results: list[Any] = [None] * len(args)
        self.errors: dict[int, BaseException] = {}
        self.left = len(args)
        self.t0 = time.perf_counter()
        self.failed: BaseException | None = None

    def result(self, i: int, value: Any) -> None:
        self.results[i] = value
        self.left -= 1
        if not self.left:
            self.finish()

    def error(self, i: int, exc: BaseException) -> None:
        self.errors[i] = exc
        self.left -= 1
        if not self.left:
            self.finish()

    def fail(self, exc: BaseException) -> None:
        if self.failed is None:
            self.failed = exc
        self.left -= 1
        if not self.left:
            self.finish()

    def finish(self) -> None:
        try:
            if self.failed is not None:
                self.fut.set_exception(self.failed)
            else:
                self.fut.set_result(self.outcome())
        except InvalidStateError:  # cancelled meanwhile: the run is being stopped
            pass

    def outcome(self) -> Outcome:
        results, errors = self.results, self.errors
        stop: BaseException | None = None
        if errors:
            interrupted = [i for i, e in errors.items() if isinstance(e, INTERRUPTS)]
            if interrupted:  # tasks after an interrupt count as not run, like in the other modes
                first = min(interrupted)
                stop = errors[first]
                results = results[:first]
                errors = {i: e for i, e in errors.items() if i < first}
        return results, errors, len(results), time.perf_counter() - self.t0, stop
