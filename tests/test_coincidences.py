"""Coincidence pairs and their delta_t equal those computed from the raw time stamps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from waveform_analysis.errors import ConfigError
from waveform_analysis.processing.coincidences import COINCIDENCES_DTYPE, find_coincidences

TRIGGER_FIELDS = [("time", np.int64), ("timestamp", np.int64), ("board", np.int16),
                  ("channel", np.int16), ("energy", np.float32), ("energy_calibrated", np.float64)]


def _triggers(stamps_ps: dict[tuple[int, int], np.ndarray]) -> np.ndarray:
    """Triggers as a reader lays them out: channel after channel, each in time order."""
    parts = []
    for (board, channel), ps in stamps_ps.items():
        t = np.zeros(len(ps), TRIGGER_FIELDS)
        t["timestamp"], t["time"] = ps, ps // 1000
        t["board"], t["channel"] = board, channel
        t["energy"] = np.arange(len(ps)) + 100 * channel
        t["energy_calibrated"] = np.where(np.arange(len(ps)) % 2 == 0, np.nan, 2.0 * t["energy"])
        parts.append(t)
    return np.concatenate(parts)


def _tof(n: int = 2000, offset_ps: int = 37_512, seed: int = 1) -> np.ndarray:
    """A start detector (0:0) and a stop detector (0:1) seeing the same particles later, plus noise."""
    rng = np.random.default_rng(seed)
    start = np.cumsum(rng.integers(5_000_000, 40_000_000, n))  # ps, about 50 kHz
    tof = offset_ps + rng.normal(0, 800, n).astype(np.int64)
    stop = np.sort(np.concatenate([start + tof, rng.integers(0, start[-1], n // 4)]))
    noise = np.sort(rng.integers(0, start[-1], n // 3))
    return _triggers({(0, 0): start, (0, 1): stop, (1, 3): noise})


def _brute(tr: np.ndarray, window_ns: float, reference, offsets=None, partners=None) -> set:
    """Every pair by the definition, O(n^2): the oracle."""
    t = tr["timestamp"].astype(np.int64).copy()
    names = [f"{b}:{c}" for b, c in zip(tr["board"], tr["channel"])]
    for name, off in (offsets or {}).items():
        t[np.array(names) == name] += int(round(off * 1000))
    out = set()
    for i in range(len(tr)):
        for j in range(len(tr)):
            if names[i] == names[j] or abs(t[j] - t[i]) >= window_ns * 1000:
                continue
            if partners is not None and names[j] not in partners:
                continue
            if reference == "all":
                # each pair once, the lower (board, channel) as reference: delta_t keeps one
                # sign convention per channel pair
                if partners is not None and names[i] not in partners:
                    continue
                if (tr["board"][i], tr["channel"][i]) > (tr["board"][j], tr["channel"][j]):
                    continue
            elif names[i] != reference:
                continue
            out.add((i, j, (t[j] - t[i]) / 1000.0))
    return out


@pytest.mark.parametrize(
    ("reference", "partners", "offsets"),
    [("0:0", None, None), ("0:0", ["0:1"], {"0:1": -37.5}), ("all", None, {"1:3": 12.25}),
     ("all", ["0:0", "1:3"], None), ("all", None, {"0:1": -60.0}), (1, None, None)],
)
def test_pairs_and_delta_t_equal_the_brute_force_pairs(reference, partners, offsets):
    tr = _tof(300)
    got = find_coincidences(tr, 50.0, reference, partners, offsets)
    assert got.dtype == COINCIDENCES_DTYPE
    ref_name = "0:1" if reference == 1 else reference
    want = _brute(tr, 50.0, ref_name, offsets, partners)
    assert {(int(r), int(i), float(d)) for r, i, d in zip(got["ref_index"], got["index"], got["delta_t"])} == want
    assert len(got) == len(want) > 0
    np.testing.assert_array_equal(got["time"], tr["time"][got["ref_index"]])
    np.testing.assert_array_equal(got["channel"], tr["channel"][got["index"]])
    np.testing.assert_array_equal(got["ref_board"], tr["board"][got["ref_index"]])


def test_all_pairs_take_the_lower_channel_as_reference_whichever_came_first():
    """A time-of-flight histogram per channel pair needs one sign convention: with "all", a
    stop detector firing before its start detector is a negative delta_t of the same pair,
    not a pair of its own with the channels swapped."""
    tr = _triggers({(0, 0): np.array([1_000_000, 5_000_000]), (0, 1): np.array([998_000, 5_003_000])})
    got = find_coincidences(tr, 10.0, "all")
    assert set(zip(got["ref_channel"].tolist(), got["channel"].tolist())) == {(0, 1)}
    np.testing.assert_allclose(np.sort(got["delta_t"]), [-2.0, 3.0])
    assert np.all(np.diff(got["time"]) >= 0)  # still in the references' time order


def test_delta_t_keeps_the_picosecond_stamp_and_the_offset_centres_the_tof_peak():
    tr = _tof(3000)
    raw = find_coincidences(tr, 100.0, "0:0", ["0:1"])
    assert np.any(raw["delta_t"] % 1 != 0)  # fine time survives: not rounded to whole ns
    assert abs(np.median(raw["delta_t"]) - 37.512) < 0.2
    shifted = find_coincidences(tr, 100.0, "0:0", ["0:1"], {"0:1": -37.512})
    assert abs(np.median(shifted["delta_t"])) < 0.2
    assert np.all(np.diff(shifted["ref_index"]) >= 0) or np.all(np.diff(shifted["time"]) >= 0)


def test_energy_is_calibrated_where_known_else_the_firmware_energy():
    tr = _tof(200)
    got = find_coincidences(tr, 100.0, "0:0", ["0:1"])
    for row in got[:20]:
        for idx, field in ((row["ref_index"], "ref_energy"), (row["index"], "energy")):
            cal = tr["energy_calibrated"][idx]
            assert row[field] == (cal if np.isfinite(cal) else tr["energy"][idx])


def test_no_triggers_no_pairs_and_bad_options_are_named():
    assert len(find_coincidences(_triggers({(0, 0): np.zeros(0, np.int64)}), 10.0)) == 0
    tr = _tof(10)
    with pytest.raises(ConfigError, match="'reference'.*'x:y'"):
        find_coincidences(tr, 10.0, "x:y")
    with pytest.raises(ConfigError, match="window_ns"):
        find_coincidences(tr, 0.0)


def test_the_plugin_passes_its_options_to_the_kernel_and_caches_by_them(tmp_path):
    from waveform_analysis import Context, Plugin
    from waveform_analysis.plugins import CoincidencesPlugin

    tr = _tof(500)

    class Triggers(Plugin):  # the run's triggers, as a reader would give them
        provides = "triggers"
        version = "0"

        def compute(self, context, run_id):
            return tr

    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(tmp_path / "DAQ")})
    ctx.register(Triggers, CoincidencesPlugin)
    opts = {"window_ns": 60, "reference": "0:0", "partners": ["0:1"], "time_offset_ns": {"0:1": -37.5}}
    ctx.set_config({"coincidences": opts})
    got = ctx.get_data("run_1", "coincidences")
    want = find_coincidences(tr, 60.0, "0:0", ["0:1"], {"0:1": -37.5})
    np.testing.assert_array_equal(got, want)
    key = ctx.key_for("run_1", "coincidences")
    ctx.set_config({"coincidences": {"time_offset_ns": {"0:1": -37.0}}})
    assert ctx.key_for("run_1", "coincidences") != key


REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
LEGEND_BIN = REALDATA / "legend-testdata" / "compass_test_data.BIN"


@pytest.mark.skipif(not LEGEND_BIN.is_file(), reason="../shared/realdata is absent")
def test_real_compass_pulser_pairs_equal_those_from_the_raw_timestamps():
    """legend-testdata's CoMPASS BIN (DT5730, ch0 and ch1 in one file, a pulser on both):
    the pairs and delta_t equal the ones computed from the file's own TIMETAGs (ps)."""
    raw = LEGEND_BIN.read_bytes()
    assert int.from_bytes(raw[:2], "little") == 0xCAED  # energy, energy short, waveform
    n_samples = int.from_bytes(raw[2 + 21 : 2 + 25], "little")
    event = np.dtype([("board", "<u2"), ("channel", "<u2"), ("timetag", "<u8"), ("energy", "<u2"),
                      ("energy_short", "<u2"), ("flags", "<u4"), ("code", "u1"), ("n", "<u4"),
                      ("wave", "<u2", (n_samples,))])
    ev = np.frombuffer(raw, event, offset=2)
    assert np.all(ev["n"] == n_samples) and set(ev["channel"].tolist()) == {0, 1}
    tr = np.zeros(len(ev), TRIGGER_FIELDS)
    tr["timestamp"] = ev["timetag"].astype(np.int64)
    tr["time"] = tr["timestamp"] // 1000
    tr["board"], tr["channel"], tr["energy"] = ev["board"], ev["channel"], ev["energy"]
    tr["energy_calibrated"] = np.nan
    got = find_coincidences(tr, 100.0, "0:0")
    want = _brute(tr, 100.0, "0:0")
    assert {(int(r), int(i), float(d)) for r, i, d in zip(got["ref_index"], got["index"], got["delta_t"])} == want
    assert len(got) >= 45  # the pulser fires both channels together
    np.testing.assert_array_equal(got["energy"], ev["energy"][got["index"]])


def test_coincidences_of_a_written_two_detector_run_with_a_known_offset(tmp_path):
    """A start detector (channel 0) and a stop detector (channel 1) 37.512 ns later, written as
    CoMPASS BIN list mode: the standard chain's coincidences equal the pairs of the file's time
    tags, and the channel offset moves the time-of-flight peak to 0."""
    from waveform_analysis import Context, standard_plugins
    from waveform_analysis.synthetic import synthesize, write_compass_bin

    st, _ = synthesize(n_channels=2, n_waveforms=400, n_samples=64, seed=7)
    st["timestamp"][st["channel"] == 1] += 37_512  # ps: the flight time
    order = np.argsort(st["timestamp"], kind="stable")
    st = st[order]
    st["time"] = st["timestamp"] // 1000
    raw = tmp_path / "DAQ" / "tof_run" / "RAW"
    raw.mkdir(parents=True)
    write_compass_bin(raw, st, run_name="tof_run", samples=False)
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(tmp_path / "DAQ"), "dt_ns": 2.0})
    ctx.register(standard_plugins())
    ctx.set_config({"coincidences": {"window_ns": 100, "reference": "0:0"}})
    tr = ctx.get_data("tof_run", "triggers")
    got = ctx.get_data("tof_run", "coincidences")
    want = _brute(tr, 100.0, "0:0")
    assert {(int(r), int(i), float(d)) for r, i, d in zip(got["ref_index"], got["index"], got["delta_t"])} == want
    assert np.sum(np.isclose(got["delta_t"], 37.512)) == 400
    ctx.set_config({"coincidences": {"time_offset_ns": {"0:1": -37.512}}})
    shifted = ctx.get_data("tof_run", "coincidences")
    assert np.sum(np.abs(shifted["delta_t"]) < 1e-9) == 400
