"""The staging: rows filled where they stay, sorted only when out of order, views when in order."""

from __future__ import annotations

import numpy as np

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
