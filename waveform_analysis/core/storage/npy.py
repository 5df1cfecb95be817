"""The ``.npy`` files of the cache: read as memory maps, written piece by piece behind a header.

A writer reserves a header sized for the largest shape, appends rows, then
fills the header in (:func:`npy_header`); structured rows have their padding
bytes zeroed (:func:`zero_padding`) so that a file's bytes, and its checksum,
depend on the data alone.
"""

from __future__ import annotations

import functools
import io
import json
import os
import threading
from typing import Any

import numpy as np

from ...errors import CacheError

__all__ = ["LARGEST_SHAPE", "descr_json", "load_npy", "npy_header", "write_piece", "zero_padding"]

# numpy parses .npy headers with ast.literal_eval, which Python 3.11 does not make
# safe to call from several threads at once (a SystemError about the AST recursion
# depth): one header at a time, so a sound entry is never taken for a corrupt one.
_HEADER_LOCK = threading.Lock()

LARGEST_SHAPE = (10**15,)  # a reserved header is sized for this many rows, then padded to fit


def load_npy(path: str | os.PathLike[str]) -> np.ndarray:
    """``np.load(path, mmap_mode="r", allow_pickle=False)``, safe to call from any thread."""
    with _HEADER_LOCK:
        return np.load(path, mmap_mode="r", allow_pickle=False)


def descr_json(dtype: np.dtype) -> Any:
    """``dtype`` as the JSON value the entry's metadata stores (numpy's descr, lists for tuples)."""
    return json.loads(json.dumps(np.lib.format.dtype_to_descr(dtype)))


def npy_header(dtype: np.dtype, shape: tuple[int, ...], size: int | None = None) -> bytes:
    """A ``.npy`` version 2.0 header for a C-ordered array, padded with spaces to ``size`` bytes.

    numpy pads its own headers the same way; a fixed size lets a writer reserve the
    header before it knows how many rows it will write, and fill it in at the end."""
    buf = io.BytesIO()
    d = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    try:
        np.lib.format.write_array_header_2_0(buf, d)
        prefix, text = buf.getvalue()[:12], buf.getvalue()[12:]
    except UnicodeEncodeError:  # field titles beyond latin-1: the utf-8 variant of the format
        np.lib.format._write_array_header(buf, d, (3, 0))
        prefix, text = buf.getvalue()[:12], buf.getvalue()[12:]
    text = text.rstrip(b" \n")
    if size is None:
        size = -(-(12 + len(text) + 1) // 64) * 64
    pad = size - 12 - len(text) - 1
    if pad < 0:  # pragma: no cover - a shape beyond LARGEST_SHAPE
        raise CacheError(f"array shape {shape} does not fit the reserved .npy header")
    return prefix[:8] + (size - 12).to_bytes(4, "little") + text + b" " * pad + b"\n"


def write_piece(f: Any, piece: np.ndarray) -> None:
    """Append the bytes of a C-contiguous array to an open file."""
    if piece.nbytes:
        f.write(memoryview(piece.reshape(-1).view(np.uint8)))


@functools.lru_cache(maxsize=64)
def _padding(dtype: np.dtype) -> tuple[tuple[int, int], ...]:
    """Byte ranges of a structured dtype that belong to no field (alignment padding)."""
    if dtype.fields is None:
        return ()
    taken = sorted((off, off + dt.itemsize) for dt, off, *_ in dtype.fields.values())
    gaps, pos = [], 0
    for a, b in taken:
        if a > pos:
            gaps.append((pos, a))
        pos = max(pos, b)
    if pos < dtype.itemsize:
        gaps.append((pos, dtype.itemsize))
    return tuple(gaps)


def zero_padding(piece: np.ndarray) -> np.ndarray:
    """``piece`` (C-contiguous) with its padding bytes zeroed.

    numpy copies structured arrays field by field and leaves padding
    uninitialised: written as it is, a cache file would hold stray bytes of
    this process's memory and differ from run to run."""
    gaps = _padding(piece.dtype)
    if not gaps or piece.size == 0:
        return piece
    if not piece.flags.writeable:
        piece = piece.copy()
    raw = piece.reshape(-1).view(np.uint8).reshape(piece.size, piece.dtype.itemsize)
    for a, b in gaps:
        raw[:, a:b] = 0
    return piece
