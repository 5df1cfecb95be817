"""Threads for the numeric kernels: how many, and a map over them.

The numba kernels release the GIL, so a wrapper cuts its records into parts
and runs them with :func:`thread_map` on up to :func:`n_threads` threads.
That number is the ``WAVEFORM_ANALYSIS_THREADS`` environment variable (else
the CPU count), lowered by every :func:`kernel_threads` block in force in
this process: a batch that already runs several runs at once holds
``kernel_threads(1)`` for its duration, so the kernels do not oversubscribe
the cores, and the limit is back as it was when the block ends.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["kernel_threads", "limit_threads", "n_threads", "row_parts", "thread_limit", "thread_map"]

ENV_VAR = "WAVEFORM_ANALYSIS_THREADS"

_lock = threading.Lock()
_caps: list[int] = []  # one entry per kernel_threads block in force, any thread
_limit: int | None = None  # this process's own setting (limit_threads); None: the environment
_worker = threading.local()  # .busy: this thread runs a part of a thread_map


def limit_threads(n: int | None) -> None:
    """Set this process's kernel threads for its lifetime (None: back to the default).

    For a worker process that runs one run at a time for the whole batch;
    code that caps the kernels for a while uses :func:`kernel_threads`.
    """
    global _limit
    _limit = None if n is None else max(1, int(n))


@contextmanager
def kernel_threads(n: int | None) -> Iterator[None]:
    """Kernel threads of this process capped at ``n`` inside the block (None: no cap).

    Blocks may overlap (two threads each running a batch) and nest: the
    smallest cap in force applies, and each block removes only its own cap
    when it ends, on every exit path (an error, Ctrl-C).
    """
    if n is None:
        yield
        return
    cap = max(1, int(n))
    with _lock:
        _caps.append(cap)
    try:
        yield
    finally:
        with _lock:
            _caps.remove(cap)


def thread_limit() -> int | None:
    """The :func:`limit_threads` setting, lowered by the :func:`kernel_threads` caps in
    force; None when neither applies (the environment or the CPU count decides)."""
    with _lock:
        caps = [*_caps] if _limit is None else [*_caps, _limit]
    return min(caps) if caps else None


def n_threads() -> int:
    """How many threads a kernel wrapper may use now (at least 1).

    1 inside a part of a :func:`thread_map` that runs on several threads: the
    map already keeps the threads busy (a reader parsing blocks in parallel
    whose callback runs a kernel wrapper), and a pool per part would only
    cost thread starts and oversubscribe the cores."""
    if getattr(_worker, "busy", False):
        return 1
    base = _limit if _limit is not None else _default_threads()
    with _lock:
        return min([base, *_caps])


def _default_threads() -> int:
    env = os.environ.get(ENV_VAR)
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    return max(1, os.cpu_count() or 1)


def thread_map(func: Callable[..., Any], items: Iterable[Any]) -> list[Any]:
    """``[func(x) for x in items]`` on up to :func:`n_threads` threads (serial for one item).

    The calling thread takes parts too, beside ``n - 1`` threads started for the call
    (a pool's start and shutdown cost about 4 x as much), each taking the next part
    until none is left. An error stops the taking of parts and, once the started
    threads are done, is raised (the first part's in order, where several failed).
    """
    items = list(items)
    workers = min(n_threads(), len(items))
    if workers <= 1:
        return [func(x) for x in items]
    results: list[Any] = [None] * len(items)
    errors: list[tuple[int, BaseException]] = []
    order = iter(range(len(items)))
    lock = threading.Lock()

    def drain() -> None:
        was = getattr(_worker, "busy", False)
        _worker.busy = True
        try:
            while not errors:
                with lock:
                    i = next(order, None)
                if i is None:
                    return
                try:
                    results[i] = func(items[i])
                except BaseException as e:  # noqa: BLE001 - raised in the caller below
                    with lock:
                        errors.append((i, e))
        finally:
            _worker.busy = was

    threads = [threading.Thread(target=drain, daemon=True) for _ in range(workers - 1)]
    for t in threads:
        t.start()
    try:
        drain()
    finally:
        for t in threads:
            t.join()
    if errors:
        raise min(errors, key=lambda e: e[0])[1]
    return results


def row_parts(n: int, min_rows: int = 2000) -> list[tuple[int, int]]:
    """``(lo, hi)`` bounds cutting ``n`` records into parts for :func:`thread_map`.

    A few parts per thread, so that a thread slowed by other load does not
    hold up the rest, and no part under ``min_rows`` records (one part below
    ``2 x min_rows``), so that a small call does not pay for threads."""
    parts = max(1, min(4 * n_threads(), n // min_rows)) if n >= 2 * min_rows else 1
    edges = [n * i // parts for i in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))
