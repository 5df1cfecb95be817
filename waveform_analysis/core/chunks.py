"""Chunks of a run: how a plugin is fed a run in pieces of records within a memory budget.

A plugin with ``chunked = True`` computes on any range of records of its
first dependency (its *record source*, ``st_waveforms`` in the standard
chain). The Context hands its :meth:`~waveform_analysis.core.plugin.Plugin.compute_chunks`
a :class:`RunChunks`, whose chunks cut every input to the same records:

* the record source: the rows of the chunk;
* an input with a ``record_i`` field, sorted by it (``peaks``): the rows of
  the chunk's records, with ``record_i`` counted from the chunk's first record;
* any other input with one row per record: the chunk's rows.

Inputs that live in the cache are read through a memory map of just the
chunk's rows, closed when the chunk is done, so a run larger than memory is
read a budget at a time. A plugin that is not chunked gets one chunk holding
its whole inputs: a run that fits in one chunk goes through the same code.
"""

from __future__ import annotations

import bisect
import mmap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PluginError

__all__ = ["Chunk", "RunChunks", "DEFAULT_CHUNK_MB"]

#: Default memory budget of one chunk of records [MiB] (config key ``chunk_mb``).
DEFAULT_CHUNK_MB = 64


@dataclass
class Chunk:
    """One piece of a run: records ``[start, stop)`` of the record source and every input cut to them.

    ``offsets[name]`` is the first row of ``inputs[name]`` within that whole
    input. ``last`` tells the run's last chunk. ``next_time`` is the ``time``
    of the first record after the chunk (None for the last chunk, or when the
    records have no time): records are in time order, so no later chunk holds
    anything that starts before it.
    """

    index: int
    start: int
    stop: int
    inputs: dict[str, Any]
    offsets: dict[str, int] = field(default_factory=dict)
    last: bool = True
    next_time: int | None = None


def _is_mapped(arr: Any) -> bool:
    """Whether ``arr`` is a whole cache file's memory map (so windows of it can be mapped alone)."""
    return (
        isinstance(arr, np.memmap)
        and isinstance(arr.base, mmap.mmap)
        and getattr(arr, "filename", None) is not None
        and arr.ndim >= 1
        and arr.flags.c_contiguous
    )


def rows_of(arr: Any, a: int, b: int) -> np.ndarray:
    """Rows ``[a, b)`` of ``arr``; for a cache file's memory map, a map of those rows alone."""
    if not _is_mapped(arr) or b <= a:
        return arr[a:b]
    row = arr.dtype.itemsize * int(np.prod(arr.shape[1:], dtype=np.int64))
    return np.memmap(
        arr.filename, dtype=arr.dtype, mode="r", offset=arr.offset + a * row,
        shape=(b - a, *arr.shape[1:]),
    )


class RunChunks:
    """The chunks of one run for one plugin (iterate for :class:`Chunk` objects).

    ``n_records`` is the record source's length; ``rows_per_chunk`` the chunk
    size in records; ``budget_bytes`` the memory budget it came from; and
    ``scratch_prefix`` a path prefix for scratch files beside the entry being
    written (None: keep everything in memory). :meth:`rows` gives a plugin
    that makes its records itself the entry's rows to make a piece in.
    """

    def __init__(
        self,
        plugin_name: str,
        inputs: dict[str, Any],
        source: str | None,
        budget_bytes: int,
        scratch_prefix: Path | None = None,
    ) -> None:
        self.plugin_name = plugin_name
        self.inputs = inputs
        self.source = source
        self.budget_bytes = int(budget_bytes)
        self.scratch_prefix = scratch_prefix
        self.slot: Callable[[int, np.dtype], np.ndarray] | None = None
        if source is None:
            self.n_records = 0
            self.rows_per_chunk = 0
            return
        src = inputs[source]
        if not isinstance(src, np.ndarray) or src.ndim < 1:
            raise PluginError(
                f"plugin {plugin_name!r} is chunked, but its first input {source!r} is not an "
                "array of records"
            )
        self.n_records = len(src)
        row = max(1, src.dtype.itemsize * int(np.prod(src.shape[1:], dtype=np.int64)))
        self.rows_per_chunk = max(1, self.budget_bytes // row)

    def rows(self, n: int, dtype: np.dtype) -> np.ndarray | None:
        """The cache entry's own next ``n`` rows of ``dtype``, mapped from its file, for a plugin
        that makes its next piece itself (the piece is then not copied again; yield it
        before asking for more); None when no entry is being written (make it anywhere)."""
        return None if self.slot is None else self.slot(n, dtype)

    def __iter__(self) -> Iterator[Chunk]:
        if self.source is None:
            yield Chunk(0, 0, 0, dict(self.inputs), dict.fromkeys(self.inputs, 0))
            return
        n, step = self.n_records, self.rows_per_chunk
        src = self.inputs[self.source]
        has_time = src.dtype.names is not None and "time" in src.dtype.names
        for i, a in enumerate(range(0, max(n, 1), step)):
            b = min(a + step, n)
            inputs, offsets = {}, {}
            for name, value in self.inputs.items():
                inputs[name], offsets[name] = self._cut(name, value, a, b)
            next_time = int(src["time"][b]) if b < n and has_time else None
            yield Chunk(i, a, b, inputs, offsets, b >= n, next_time)

    def _cut(self, name: str, value: Any, a: int, b: int) -> tuple[Any, int]:
        if name == self.source:
            return rows_of(value, a, b), a
        if isinstance(value, np.ndarray) and value.dtype.names and "record_i" in value.dtype.names:
            rec = value["record_i"]
            lo = bisect.bisect_left(rec, a)  # a few reads of a memory map, not all of it
            hi = bisect.bisect_left(rec, b, lo)
            part = np.array(rows_of(value, lo, hi))
            if part.size and (np.any(np.diff(part["record_i"]) < 0)):
                raise PluginError(
                    f"plugin {self.plugin_name!r} is chunked, but its input {name!r} is not "
                    "sorted by record_i"
                )
            part["record_i"] -= a
            return part, lo
        if isinstance(value, np.ndarray) and value.ndim >= 1 and len(value) == self.n_records:
            return rows_of(value, a, b), a
        raise PluginError(
            f"plugin {self.plugin_name!r} is chunked, but its input {name!r} has neither one row "
            f"per record of {self.source!r} nor a record_i field; set chunked = False on it"
        )

    def fields(self, *names: str) -> dict[str, np.ndarray]:
        """Whole-run copies of some fields of the record source, read a chunk's rows at a time
        (split between the kernel threads).

        For run-wide statistics (a channel's noise) that a per-chunk
        computation needs before its first chunk."""
        from ..parallel import n_threads, thread_map

        src = self.inputs[self.source]
        out = {name: np.empty(self.n_records, src.dtype[name]) for name in names}
        step = max(1, self.rows_per_chunk // n_threads())  # a chunk's rows mapped at a time

        def copy(a: int) -> None:  # a cache miss per record and field: on the kernel threads
            b = min(a + step, self.n_records)
            part = rows_of(src, a, b)
            for name in names:
                out[name][a:b] = part[name]

        thread_map(copy, range(0, self.n_records, step))
        return out
