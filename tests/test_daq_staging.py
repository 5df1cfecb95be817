"""The staging: rows filled where they stay, sorted only when out of order, views when in order."""

from __future__ import annotations

import os

import numpy as np
import pytest

from waveform_analysis.daq.blocks import RecordPool
from waveform_analysis.daq.staging import RecordStaging
from waveform_analysis.dtypes import st_waveforms_dtype


def _records(times, channels):
    out = np.zeros(len(times), st_waveforms_dtype(4))
    out["time"] = times
    out["channel"] = channels
    out["wave"] = np.asarray(times)[:, None] + np.arange(4)
    return out


def _fill(staging, blocks, use_slots: bool):
    pool = RecordPool(staging.dtype)
    row = 0
    for times, channels in blocks:
        src = _records(times, channels)
        out = pool.take_for(staging, row, len(src)) if use_slots else pool.take(len(src))
        out[:] = src
        staging.put(row, out)
        pool.give(out)
        row += len(src)
    assert not any(buf.base is staging._array for buf in pool._free)  # the staging's rows stay its own


def test_interleaved_channels_come_out_in_time_order():
    blocks = [([0, 20, 40], [0, 0, 0]), ([10, 20, 30], [1, 1, 1])]
    for use_slots in (True, False):
        with RecordStaging() as staging:
            staging.begin(6, st_waveforms_dtype(4))
            _fill(staging, blocks, use_slots)
            order = staging.order()
            assert order.tolist() == [0, 3, 1, 4, 5, 2]  # the tie at 20: board, channel, file order
            out = staging.gather(order)
            assert out["time"].tolist() == [0, 10, 20, 20, 30, 40]
            assert out["channel"].tolist() == [0, 1, 0, 1, 1, 0]
            assert (out["wave"][:, 1] == out["time"] + 1).all()
            assert not np.shares_memory(out, staging._array)  # gathered: a new array
            part = staging.gather(order[[4, 0]])  # any rows, by their file row
            assert part["time"].tolist() == [30, 0]


def test_rows_in_time_order_are_not_moved_and_unset_rows_are_dropped():
    with RecordStaging() as staging:
        staging.begin(5, st_waveforms_dtype(4))
        _fill(staging, [([1, 2], [0, 0]), ([3, 4], [0, 0])], True)
        order = staging.order()
        assert order.tolist() == [0, 1, 2, 3]
        out = staging.records()
        assert out["time"].tolist() == [1, 2, 3, 4]
        assert np.shares_memory(out, staging._array)  # in time order as they lie: no copy
    with RecordStaging() as staging:
        staging.begin(5, st_waveforms_dtype(4))
        staging.put(0, _records([5, 1], [0, 0]))
        staging.put(3, _records([3, 2], [0, 0]))
        assert staging.records()["time"].tolist() == [1, 2, 3, 5]


def _scratch_staging(tmp_path, n: int, n_samples: int = 600) -> tuple[RecordStaging, np.ndarray]:
    """A staging past its budget (rows in a scratch file) holding two channels' interleaved rows."""
    staging = RecordStaging(1, tmp_path / ".entry")
    staging.begin(n, st_waveforms_dtype(n_samples))
    half = n // 2
    times = np.concatenate([np.arange(half) * 2, np.arange(n - half) * 2 + 1])  # channel 0, then 1
    src = np.zeros(n, staging.dtype)
    src["time"], src["channel"] = times, np.repeat([0, 1], [half, n - half])
    src["wave"] = (times[:, None] + np.arange(n_samples)) % 4000
    for a in range(0, n, 700):
        staging.put(a, src[a : a + 700])
    return staging, src


@pytest.mark.parametrize("backwards", [False, True])  # backwards: a row across two blocks is read last
def test_scratch_blocks_are_freed_once_every_record_in_them_is_read_for_the_last_time(tmp_path, backwards):
    staging, src = _scratch_staging(tmp_path, 6000)  # 7.3 MB of rows: four 2 MiB blocks
    with staging:
        order = staging.order()
        if backwards:
            order, src = order[::-1].copy(), src[::-1]
        used = [os.fstat(staging._fd).st_blocks]
        out = []
        for a in range(0, order.size, 3):  # small reads: a block's last row often comes a read later
            out.append(staging.gather(order[a : a + 3], last=True))
            used.append(os.fstat(staging._fd).st_blocks)
        assert (np.concatenate(out) == src[np.argsort(src["time"], kind="stable")][:: -1 if backwards else 1]).all()
        # freed as the reading goes (before the end), never more than what was read
        assert used == sorted(used, reverse=True) and used[-2] < used[0] and used[-1] == 0, used
        with pytest.raises(ValueError, match="read for the last time"):
            staging.gather(order[:3])
    assert not list(tmp_path.iterdir())  # and the scratch file is gone


def test_blocks_freed_part_by_part_on_two_threads_keep_every_record(tmp_path, monkeypatch):
    """A gather of many parts on two threads frees blocks as parts finish: none before every
    record in it has been copied, whichever thread copies it."""
    from waveform_analysis.daq import staging as staging_module
    from waveform_analysis.parallel import kernel_threads

    staging, src = _scratch_staging(tmp_path, 6000)
    monkeypatch.setattr(staging_module, "GATHER_BYTES", 50 * staging.dtype.itemsize)  # 120 parts
    with staging, kernel_threads(2):
        order = staging.order()
        out = np.concatenate([staging.gather(order[a : a + 2500], last=True) for a in (0, 2500, 5000)])
        assert (out == src[order]).all()
        assert os.fstat(staging._fd).st_blocks == 0


def test_a_row_read_twice_in_one_last_read_is_counted_once(tmp_path):
    """A block is freed when its rows are all read, not earlier: a row named twice in one
    read must not count as two of its block's rows."""
    staging, src = _scratch_staging(tmp_path, 6000)
    with staging:
        order = staging.order()
        full = os.fstat(staging._fd).st_blocks
        in_first = int(staging._count(np.arange(6000))[0])  # rows (wholly or in part) in block 0
        rows = np.arange(in_first - 1)  # all but its last row, the first of them twice
        staging.gather(np.concatenate([rows, rows[:1]]), last=True)
        assert os.fstat(staging._fd).st_blocks == full  # block 0 still holds a row not read
        staging.gather(np.array([in_first - 1]), last=True)
        assert os.fstat(staging._fd).st_blocks < full
        rest = order[~np.isin(order, np.arange(in_first))]
        assert (staging.gather(rest, last=True) == src[rest]).all()
        assert os.fstat(staging._fd).st_blocks == 0


def test_reading_rows_again_keeps_their_blocks(tmp_path):
    staging, src = _scratch_staging(tmp_path, 3000)
    with staging:
        order = staging.order()
        full = os.fstat(staging._fd).st_blocks
        first = staging.gather(order[:1000])  # not the last read: nothing is freed
        assert os.fstat(staging._fd).st_blocks == full
        assert staging.gather(order[:1000], last=True).tobytes() == first.tobytes()


@pytest.mark.parametrize("budget", [None, 1])
@pytest.mark.parametrize("in_order", [True, False])
def test_records_are_gathered_into_the_array_given(tmp_path, budget, in_order):
    staging = RecordStaging(budget, tmp_path / ".entry")
    with staging:
        staging.begin(4, st_waveforms_dtype(4))
        staging.put(0, _records([1, 2] if in_order else [2, 1], [0, 0]))
        staging.put(2, _records([3, 4], [0, 0]))
        order = staging.order()
        out = np.full(4, 7, staging.dtype)
        assert staging.gather(order, out=out) is out
        assert out["time"].tolist() == [1, 2, 3, 4]
        assert (out["wave"][:, 3] == out["time"] + 3).all()
        with pytest.raises(ValueError, match="gather into"):
            staging.gather(order, out=np.zeros(3, staging.dtype))
