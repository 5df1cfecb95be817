"""A small shared thread pool helper for the nogil kernels."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_limit: int | None = None


def limit_threads(n: int | None) -> None:
    """Cap the threads of every kernel in this process (None: back to the default).

    A batch that already runs several runs at once sets 1, so kernels do not
    oversubscribe the cores.
    """
    global _limit
    _limit = None if n is None else max(1, int(n))


def n_threads() -> int:
    if _limit is not None:
        return _limit
    env = os.environ.get("WAVEFORM_ANALYSIS_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    return max(1, os.cpu_count() or 1)


def thread_map(func: Callable[..., Any], items: Iterable[Any]) -> list[Any]:
    """``[func(x) for x in items]`` on up to ``n_threads()`` threads (serial for one item)."""
    items = list(items)
    workers = min(n_threads(), len(items))
    if workers <= 1:
        return [func(x) for x in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(func, items))
