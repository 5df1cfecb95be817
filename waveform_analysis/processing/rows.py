"""How the kernels see a run's records: wave rows in place, and one key per channel."""

from __future__ import annotations

import numpy as np

from ..parallel import row_parts, thread_map

__all__ = ["channel_keys", "contiguous_rows", "flat_rows", "record_channel_keys"]


def contiguous_rows(st_waveforms: np.ndarray) -> np.ndarray:
    """The ``wave`` field as a 2-D array whose rows are C-contiguous (no copy when possible).

    A field of a structured array is strided; viewing the records as int16
    rows and slicing the wave columns gives rows numba can vectorise over.
    """
    wave = st_waveforms["wave"]
    if wave.ndim == 1:
        wave = wave[:, None]
    offset = st_waveforms.dtype.fields["wave"][1]
    item = st_waveforms.dtype.itemsize
    if (
        st_waveforms.flags.c_contiguous
        and item % 2 == 0
        and offset % 2 == 0
        and st_waveforms.dtype.fields["wave"][0].base == np.dtype(np.int16)
    ):
        flat = st_waveforms.view(np.int16).reshape(len(st_waveforms), item // 2)
        return flat[:, offset // 2 : offset // 2 + wave.shape[1]]
    return np.ascontiguousarray(wave)


def flat_rows(st_waveforms: np.ndarray) -> tuple[np.ndarray, int, int]:
    """``(flat, stride, offset)``: record ``r``'s samples are ``flat[offset + r * stride:][:n]``.

    ``flat`` is one C-contiguous int16 array (the records viewed in place when
    possible): a kernel that slices it gets rows numba knows are contiguous
    and vectorises reductions over, which a row of :func:`contiguous_rows`'
    strided 2-D view is not."""
    rows = contiguous_rows(st_waveforms)
    if rows.flags.c_contiguous:
        return rows.reshape(-1), rows.shape[1], 0
    item = st_waveforms.dtype.itemsize // 2
    return st_waveforms.view(np.int16).reshape(-1), item, st_waveforms.dtype.fields["wave"][1] // 2


def channel_keys(board: np.ndarray, channel: np.ndarray) -> np.ndarray:
    """One int64 per record naming its (board, channel), for per-channel statistics."""
    return (np.asarray(board).astype(np.int64) << 16) | (np.asarray(channel).astype(np.int64) & 0xFFFF)


_PAIR = np.dtype("<i2")  # board and channel side by side: one 4-byte read per record


def record_channel_keys(st_waveforms: np.ndarray) -> np.ndarray:
    """:func:`channel_keys` of records (board 0 for records without a ``board`` field).

    Records a cache line or more apart cost a memory access each, so the pass over them
    waits on memory: where ``board`` and ``channel`` are neighbouring 16-bit fields (the
    record dtypes of this package) both are read in one access as one 32-bit word, on the
    kernel threads; otherwise a pass per field."""
    fields = st_waveforms.dtype.fields or {}
    if "board" not in fields:
        return np.asarray(st_waveforms["channel"], np.int64) & 0xFFFF
    (btype, at), (ctype, cat) = fields["board"][:2], fields["channel"][:2]
    if not (btype == ctype == _PAIR and cat == at + 2 and st_waveforms.ndim == 1 and np.little_endian):
        return channel_keys(st_waveforms["board"], st_waveforms["channel"])
    word = np.dtype({"names": ["pair"], "formats": ["<u4"], "offsets": [at],
                     "itemsize": st_waveforms.dtype.itemsize})
    pairs = st_waveforms.view(word)["pair"]
    out = np.empty(len(st_waveforms), np.int64)

    def fill(part: tuple[int, int]) -> None:
        lo, hi = part
        v = pairs[lo:hi].astype(np.int64)  # the one pass over the records
        board = v & 0xFFFF
        board -= (board & 0x8000) << 1  # signed, as the field
        out[lo:hi] = (board << 16) | (v >> 16)

    thread_map(fill, row_parts(len(out), 20_000))
    return out
