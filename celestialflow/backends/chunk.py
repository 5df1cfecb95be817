"""A chunk: tasks run one after another in a worker, failures kept per task.

:func:`call_chunk` is the *call* form (the worker only calls ``func(*args)``;
the thread accounting for the chunk runs ``get_args`` and ``process_result``), and
:func:`run_fused` the *fused* form (the worker runs the stage's whole per-task
pipeline). Both end in an :data:`Outcome`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..tasks import invoke

#: A chunk's outcome: results of the tasks that ran (None where one failed), the
#: failures by index, how many tasks ran (fewer than given when the chunk was
#: cancelled or interrupted), the seconds the worker spent, and the
#: KeyboardInterrupt/SystemExit that stopped it (or None).
Outcome = tuple[list[Any], dict[int, BaseException], int, float, BaseException | None]

EXECUTION_MODES = ("serial", "thread", "process", "async", "dask")


class Finished:
    """The future of a chunk that ran inside ``submit``: already done, so it costs no lock.

    It answers the part of :class:`concurrent.futures.Future` the runner uses."""

    __slots__ = ("_outcome",)

    def __init__(self, outcome: Outcome) -> None:
        self._outcome = outcome

    def done(self) -> bool:
        return True

    def result(self, timeout: float | None = None) -> Outcome:
        return self._outcome

    def add_done_callback(self, fn: Callable[[Any], None]) -> None:
        fn(self)

#: Which exceptions a task may raise that stop the run instead of failing the task.
INTERRUPTS = (KeyboardInterrupt, SystemExit)


def call_chunk(func: Callable, args_list: Sequence[Any], cancel: threading.Event | None = None) -> Outcome:
    """Call ``func`` once per argument tuple (or kwargs mapping), keeping failures per index.

    The loop of :func:`run_fused` with the call written out: a ``partial(invoke,
    func)`` there costs a Python call per task (measured: 1.4-1.7 M trivial tasks/s
    on 2 threads fell to 1.0-1.4 M)."""
    results: list[Any] = []
    errors: dict[int, BaseException] = {}
    append = results.append
    t0 = time.perf_counter()
    stop: BaseException | None = None
    for i, args in enumerate(args_list):
        if cancel is not None and cancel.is_set():
            break
        try:
            append(func(*args) if type(args) is tuple else invoke(func, args))
        except Exception as exc:  # one task's failure is that task's, not the chunk's
            errors[i] = exc
            append(None)
        except INTERRUPTS as exc:
            stop = exc
            break
    return results, errors, len(results), time.perf_counter() - t0, stop


def run_fused(call: Callable[[Any], Any], tasks: Sequence[Any], cancel: threading.Event | None = None) -> Outcome:
    """Run ``call(task)`` over a chunk (in the fused form ``call`` is the whole per-task pipeline).

    Stops before the next task once ``cancel`` is set, and at a KeyboardInterrupt
    or SystemExit raised by a task (returned, not raised, so the caller decides)."""
    results: list[Any] = []
    errors: dict[int, BaseException] = {}
    append = results.append
    t0 = time.perf_counter()
    stop: BaseException | None = None
    if cancel is None:  # nothing to check between tasks: the loop runs in C
        n = len(tasks)
        while len(results) < n:
            try:
                # extend keeps what was appended before an exception: its index is len(results)
                results.extend(map(call, tasks[len(results) :] if results else tasks))
            except Exception as exc:
                errors[len(results)] = exc
                append(None)
            except INTERRUPTS as exc:
                stop = exc
                break
        return results, errors, len(results), time.perf_counter() - t0, stop
    for i, task in enumerate(tasks):
        if cancel.is_set():
            break
        try:
            append(call(task))
        except Exception as exc:  # one task's failure is that task's, not the chunk's
            errors[i] = exc
            append(None)
        except INTERRUPTS as exc:
            stop = exc
            break
    return results, errors, len(results), time.perf_counter() - t0, stop
