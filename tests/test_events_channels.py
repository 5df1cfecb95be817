"""events with per-channel offsets, min_channels and require, the same chunked as in one piece."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_chunks import RUN, chunk_mb, make, pulse_at_the_end  # noqa: E402

from waveform_analysis.processing import group_events  # noqa: E402
from waveform_analysis.processing.events import event_mask, shift_times  # noqa: E402

OPTIONS = {"event_window_ns": 40, "time_offset_ns": {"0:1": -25.0}, "min_channels": 2, "require": ["0:0"]}


def _events_by_hand(peaks: np.ndarray, window: int, offsets: dict, min_channels: int, require: list) -> list:
    """Events by the definition, one peak at a time: (time, n_peaks, channels)."""
    t = peaks["time"].astype(np.int64) + np.array([int(offsets.get(f"0:{c}", 0)) for c in peaks["channel"]])
    out, cur = [], None
    for i in np.argsort(t, kind="stable"):
        if cur is None or t[i] - cur["last"] > window:
            cur = {"time": int(t[i]), "n": 0, "ch": set()}
            out.append(cur)
        cur["last"] = t[i]
        cur["n"] += 1
        cur["ch"].add(int(peaks["channel"][i]))
    need = {int(r.split(":")[1]) for r in require}
    return [(e["time"], e["n"], len(e["ch"])) for e in out if len(e["ch"]) >= min_channels and need <= e["ch"]]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return pulse_at_the_end(tmp_path_factory.mktemp("ev") / "DAQ")


def test_offsets_min_channels_and_require_equal_the_definition(root, tmp_path):
    ctx = make(root, tmp_path / "c", events=OPTIONS)
    ev, peaks = ctx.get_data(RUN, "events"), ctx.get_data(RUN, "peaks")
    want = _events_by_hand(peaks, 40, {"0:1": -25}, 2, ["0:0"])
    assert [(int(e["time"]), int(e["n_peaks"]), int(e["n_channels"])) for e in ev] == want
    assert len(want) > 10
    # moved 300 ns, a channel's pulses leave the window: no event has both channels
    apart = make(root, tmp_path / "p", events={**OPTIONS, "time_offset_ns": {"0:1": -300}})
    assert len(apart.get_data(RUN, "events")) == 0
    loose = make(root, tmp_path / "l", events={**OPTIONS, "time_offset_ns": {"0:1": -300}, "min_channels": 1})
    assert len(loose.get_data(RUN, "events")) == len(_events_by_hand(peaks, 40, {"0:1": -300}, 1, ["0:0"])) > 10


@pytest.mark.parametrize("records", [1, 2, 5])
def test_chunked_events_with_offsets_equal_the_whole_run(root, tmp_path, records):
    whole = make(root, tmp_path / "w", events=OPTIONS).get_data(RUN, "events")
    chunked = make(root, tmp_path / f"c{records}", events=OPTIONS, chunk_mb=chunk_mb(records, 120))
    np.testing.assert_array_equal(chunked.get_data(RUN, "events"), whole)


def test_event_mask_require_by_board_and_channel():
    peaks = np.zeros(6, [("time", np.int64), ("channel", np.int16), ("board", np.int16), ("area", np.float32)])
    peaks["time"] = [0, 5, 100, 104, 300, 302]
    peaks["channel"] = [0, 1, 0, 1, 0, 0]
    peaks["board"] = [0, 0, 1, 0, 0, 1]
    ev = group_events(peaks, 10)
    np.testing.assert_array_equal(event_mask(peaks, ev, 2, ["1:0"]), [False, True, True])
    np.testing.assert_array_equal(event_mask(peaks, ev, 1, ["0:1"]), [True, True, False])
    assert shift_times(peaks, {}) is peaks
    np.testing.assert_array_equal(shift_times(peaks, {"1:0": 7})["time"], [0, 5, 107, 104, 300, 309])
