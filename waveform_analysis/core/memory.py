"""Handing freed memory back to the operating system between chunks.

glibc keeps memory freed by numpy in its heaps unless the top of a heap is
free, so a process that allocates and frees a chunk's worth of arrays per
chunk keeps growing its resident size with the number of chunks, although it
uses no more. ``malloc_trim(0)`` returns those free pages; Dask's workers do
the same for their "unmanaged memory". Elsewhere (macOS, musl) it is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["trim_memory"]


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None


def trim_memory() -> None:
    """Return free heap memory to the operating system (glibc; elsewhere nothing happens)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
