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


def record_channel_keys(st_waveforms: np.ndarray) -> np.ndarray:
    """:func:`channel_keys` of records (board 0 for records without a ``board`` field)."""
    names = st_waveforms.dtype.names
    from ._peaks_kernels import key_column

    # one pass over the records' two fields, read in place (numpy: a pass per field and step);
    # a record's fields share a cache line, so the pass waits on memory: on the kernel threads
    out = np.empty(len(st_waveforms), np.int64)
    has_board = "board" in names
    channel = st_waveforms["channel"]
    board = st_waveforms["board"] if has_board else channel
    thread_map(lambda b: key_column(channel[b[0]:b[1]], board[b[0]:b[1]], has_board, out[b[0]:b[1]]),
               row_parts(len(out), 20_000))
    return out
