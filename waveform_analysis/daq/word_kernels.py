"""Little-endian words read from a byte buffer inside the readers' numba kernels.

Every binary CAEN format is little-endian; the kernels walk a ``uint8`` buffer and
read a header word at a byte offset with these (inlined, so no call is left).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["u16", "u32"]


@numba.njit(cache=True, nogil=True, inline="always")
def u16(buf, p):
    """The little-endian u16 at byte ``p`` of ``buf``, as int64."""
    return np.int64(buf[p]) | (np.int64(buf[p + 1]) << 8)


@numba.njit(cache=True, nogil=True, inline="always")
def u32(buf, p):
    """The little-endian u32 at byte ``p`` of ``buf``, as int64."""
    return (
        np.int64(buf[p])
        | (np.int64(buf[p + 1]) << 8)
        | (np.int64(buf[p + 2]) << 16)
        | (np.int64(buf[p + 3]) << 24)
    )
