"""The per-channel settings table: resolution order, lineage keys, checks, TOML, peaks per channel."""

from __future__ import annotations

import numpy as np
import pytest

from waveform_analysis import Context, standard_plugins
from waveform_analysis.core.channels import ChannelWarning, channel_groups, resolve_channel
from waveform_analysis.daq.base import RunInfo
from waveform_analysis.errors import ConfigError
from waveform_analysis.processing.hits import find_peaks
from waveform_analysis.synthetic import generate_run

RUN = "run_001"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ch") / "DAQ"
    generate_run(root, RUN, n_channels=2, n_waveforms=150, n_samples=200, seed=3)
    return root


def _ctx(data, tmp_path, config=None) -> Context:
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(data), **(config or {})})
    ctx.register(standard_plugins())
    return ctx


def test_resolution_order_channel_default_plugin_run_option(data, tmp_path):
    ctx = _ctx(data, tmp_path)
    bf = ctx.plugins["basic_features"]
    info = RunInfo(format="x", gates={"gate_ns": 200.0}, channels={1: {"gates": {"gate_ns": 150.0}}})

    def gate(config, channel):
        return resolve_channel(config, bf, "gate_long_ns", 0, channel, info)

    assert gate({}, 0) == (200.0, "run settings")
    assert gate({}, 1) == (150.0, "run settings")  # the run's own per-channel value
    assert gate({}, 1) == gate({}, 1)
    assert gate({}, 2) == (200.0, "run settings")
    assert resolve_channel({}, bf, "gate_long_ns", 0, 0, None) == (None, "default")
    plugin_level = {"basic_features": {"gate_long_ns": 400}}
    assert gate(plugin_level, 1) == (400.0, "config")
    table = {**plugin_level, "channels": {"default": {"gate_long_ns": 500}, "4": {"gate_long_ns": 600}}}
    assert gate(table, 1) == (500.0, "channels['default']")
    assert gate(table, 4) == (600.0, "channels['0:4']")  # a bare 4 is board 0
    assert resolve_channel(table, bf, "gate_long_ns", 1, 4, info) == (500.0, "channels['default']")


def test_show_config_names_where_each_channel_value_comes_from(data, tmp_path):
    ctx = _ctx(data, tmp_path, {"threshold": 20.0, "channels": {"0:1": {"threshold": 90.0}}})
    table = ctx.show_config("peaks")
    rows = [r for r in table if r["option"] == "threshold"]
    by_channel = {r.get("channel"): r for r in rows}
    assert by_channel["0:1"]["current"].startswith("90.0") and by_channel["0:1"]["source"] == "channels['0:1']"
    assert by_channel["*"]["current"].startswith("20.0") and by_channel["*"]["source"] == "config"
    assert "channels['0:1']" in str(table)


def test_lineage_changes_only_downstream_of_the_changed_option(data, tmp_path):
    base = _ctx(data, tmp_path, {"channels": {"0:1": {"threshold": 30.0}}})
    other = _ctx(data, tmp_path, {"channels": {"0:1": {"threshold": 40.0}}})
    plain = _ctx(data, tmp_path)
    for name in ("raw_files", "st_waveforms", "triggers", "coincidences"):
        assert base.key_for(RUN, name) == other.key_for(RUN, name) == plain.key_for(RUN, name), name
    for name in ("peaks", "basic_features", "events"):
        assert base.key_for(RUN, name) != other.key_for(RUN, name), name
        assert base.key_for(RUN, name) != plain.key_for(RUN, name), name
    # a table entry of an option only basic_features reads leaves peaks' key alone
    gates = _ctx(data, tmp_path, {"channels": {"0:1": {"gate_long_ns": 120.0}}})
    assert gates.key_for(RUN, "peaks") == plain.key_for(RUN, "peaks")
    assert gates.key_for(RUN, "basic_features") != plain.key_for(RUN, "basic_features")


def test_a_channel_the_run_lacks_is_a_warning_naming_it(data, tmp_path):
    ctx = _ctx(data, tmp_path, {"channels": {"1:7": {"threshold": 30.0}}})
    with pytest.warns(ChannelWarning, match=r"'1:7'.*run_001"):
        ctx.get_data(RUN, "peaks")


def test_non_per_channel_option_in_the_table_is_a_config_error(data, tmp_path):
    with pytest.raises(ConfigError, match=r"'0:1'.*'merge_gap'.*not a per-channel option"):
        _ctx(data, tmp_path, {"channels": {"0:1": {"merge_gap": 3}}})
    ctx = _ctx(data, tmp_path)
    with pytest.raises(ConfigError, match="'nonsense'"):
        ctx.set_config({"channels": {"default": {"nonsense": 1}}})
        ctx.key_for(RUN, "peaks")
    with pytest.raises(ConfigError, match="threshold"):
        _ctx(data, tmp_path, {"channels": {"0:1": {"threshold": "high"}}})
    with pytest.raises(ConfigError, match="'x:y'"):
        _ctx(data, tmp_path, {"channels": {"x:y": {"threshold": 3.0}}})


def test_coincidences_channels_option_is_now_partners(data, tmp_path):
    with pytest.raises(ConfigError, match="now 'partners'"):
        _ctx(data, tmp_path, {"coincidences": {"channels": ["0:1"]}})
    with pytest.raises(ConfigError, match="partners"):
        _ctx(data, tmp_path, {"channels": ["0:1"]})
    ctx = _ctx(data, tmp_path, {"coincidences": {"partners": ["0:1"], "reference": "0:0"}})
    assert set(ctx.get_data(RUN, "coincidences")["channel"].tolist()) <= {1}


def test_two_channels_with_their_own_threshold_and_polarity(data, tmp_path):
    """Each channel's peaks equal those of a run-wide setting equal to that channel's."""
    table = _ctx(data, tmp_path / "a", {"channels": {"0:0": {"threshold": 25.0}, "0:1": {"threshold": 150.0}}})
    got = table.get_data(RUN, "peaks")
    for channel, threshold in ((0, 25.0), (1, 150.0)):
        want = _ctx(data, tmp_path / f"t{channel}", {"threshold": threshold}).get_data(RUN, "peaks")
        np.testing.assert_array_equal(got[got["channel"] == channel], want[want["channel"] == channel])
    # pulses are negative: read channel 1 as positive and it finds nothing, channel 0 is unchanged
    flipped = _ctx(data, tmp_path / "b", {"threshold": 60.0, "channels": {"0:1": {"polarity": "positive"}}})
    plain = _ctx(data, tmp_path / "c", {"threshold": 60.0})
    f, p = flipped.get_data(RUN, "peaks"), plain.get_data(RUN, "peaks")
    assert (p["channel"] == 1).sum() > 50 and (f["channel"] == 1).sum() == 0
    np.testing.assert_array_equal(f[f["channel"] == 0], p[p["channel"] == 0])
    bf, bp = flipped.get_data(RUN, "basic_features"), plain.get_data(RUN, "basic_features")
    ch1 = bp["channel"] == 1  # basic_features reads the same polarity: heights of noise only
    assert np.median(bf["height"][ch1]) < 0.2 * np.median(bp["height"][ch1])
    np.testing.assert_array_equal(bf[~ch1], bp[~ch1])


def test_find_peaks_takes_one_threshold_and_polarity_per_record(data, tmp_path):
    st = _ctx(data, tmp_path).get_data(RUN, "st_waveforms")
    st = np.array(st)
    ch1 = st["channel"] == 1
    mirrored = st.copy()
    valid = np.arange(st["wave"].shape[1]) < st["length"][:, None]
    wave = mirrored["wave"][ch1].astype(np.float64)
    mirrored["wave"][ch1] = np.where(valid[ch1], np.rint(2 * st["baseline"][ch1, None] - wave), wave)
    polarity = np.where(ch1, "positive", "negative")
    threshold = np.where(ch1, 80.0, 30.0)
    got = find_peaks(mirrored, threshold=threshold, polarity=polarity)
    for channel, thr in ((0, 30.0), (1, 80.0)):
        want = find_peaks(st, threshold=thr)
        want = want[want["channel"] == channel]
        mine = got[got["channel"] == channel]
        # the mirror rounds a fractional baseline, so edges may move by a sample or two
        np.testing.assert_array_equal(mine["record_i"], want["record_i"])
        assert np.abs(mine["position"].astype(int) - want["position"]).max() <= 2
    with pytest.raises(ConfigError, match="polarity"):
        find_peaks(st, polarity=np.full(len(st), "up"))


def test_toml_channels_table_through_the_cli(data, tmp_path):
    from click.testing import CliRunner

    from waveform_analysis.cli import main

    cfg = tmp_path / "opts.toml"
    cfg.write_text('threshold = 25.0\n\n[channels."0:1"]\nthreshold = 150.0\n')
    r = CliRunner().invoke(main, ["run", str(data), RUN, "--cache", str(tmp_path / "c"), "--config",
                                  str(cfg), "--workers", "1"])
    assert r.exit_code == 0, r.output
    from waveform_analysis.cli.common import make_context

    ctx = make_context(data, tmp_path / "c", cfg, "compass")
    assert ctx.config["channels"] == {"0:1": {"threshold": 150.0}}
    assert ctx.is_cached(RUN, "peaks")
    assert ctx.get_config("peaks", "threshold") == 25.0
    bad = tmp_path / "bad.toml"
    bad.write_text('[channels."0:1"]\nmerge_gap = 3\n')
    r = CliRunner().invoke(main, ["run", str(data), RUN, "--cache", str(tmp_path / "c"), "--config", str(bad)])
    assert r.exit_code != 0 and "not a per-channel option" in r.output


def test_time_offsets_from_the_table_equal_the_offset_dict(data, tmp_path):
    """events and coincidences: offsets from the table (and a default) as from the old dict."""
    opts = {"event_window_ns": 40, "coincidences": {"window_ns": 500.0, "reference": "0:0"}}
    table = _ctx(data, tmp_path / "a", {**opts, "channels": {"default": {"time_offset_ns": 5.0},
                                                             "0:1": {"time_offset_ns": -30.0}}})
    old = _ctx(data, tmp_path / "b", {**opts, "time_offset_ns": {"0:0": 5.0, "1": -30.0}})
    for name in ("events", "coincidences"):
        got, want = table.get_data(RUN, name), old.get_data(RUN, name)
        assert len(want) > 0
        np.testing.assert_array_equal(got, want)
    assert table.key_for(RUN, "peaks") == old.key_for(RUN, "peaks")
    none = _ctx(data, tmp_path / "c", opts).get_data(RUN, "coincidences")
    assert not np.array_equal(none["delta_t"], table.get_data(RUN, "coincidences")["delta_t"])


def test_set_config_merges_the_table_per_channel_and_option(data, tmp_path):
    ctx = _ctx(data, tmp_path, {"channels": {"0:1": {"threshold": 30.0}}})
    ctx.set_config({"channels": {"0:1": {"polarity": "positive"}, "default": {"threshold": 9.0}}})
    assert ctx.config["channels"] == {"0:1": {"threshold": 30.0, "polarity": "positive"},
                                      "default": {"threshold": 9.0}}


def test_an_empty_chunk_gets_empty_settings(data, tmp_path):
    from waveform_analysis.core.channels import channel_settings

    ctx = _ctx(data, tmp_path, {"channels": {"0:1": {"threshold": 30.0}}})
    st = ctx.get_data(RUN, "st_waveforms")[:0]
    out = channel_settings(ctx, ctx.plugins["peaks"], RUN, st, {"threshold": None, "polarity": None})
    assert len(find_peaks(st, **out)) == 0


@pytest.mark.parametrize("boards", [(0,), (0, 3), (0, 2), (1, 30000)])
def test_channel_groups_are_numpys_unique_with_inverse(boards):
    rng = np.random.default_rng(5)
    rows = np.zeros(5000, [("board", np.int16), ("channel", np.int16)])
    rows["board"] = rng.choice(boards, rows.size).astype(np.int16)
    rows["channel"] = rng.choice([0, 1, 7, 15, 300], rows.size)
    for data in (rows, rows[:0], rows[:1], rows[["channel"]]):
        keys, inverse = channel_groups(data)
        board = data["board"].astype(np.int64) if "board" in data.dtype.names else np.zeros(len(data), np.int64)
        want = np.unique((board << 16) | data["channel"].astype(np.int64), return_inverse=True)
        assert np.array_equal(keys, want[0]) and np.array_equal(inverse, want[1])


@pytest.mark.parametrize("n, step", [(7, 1), (45000, 1), (45000, 3)])  # 45000: parts on threads
def test_a_record_read_once_for_its_board_and_channel_gives_the_same_keys(n, step):
    """board and channel read in one pass over the records (the key channel_groups counts)
    give the keys of the two fields read apart, signed boards and channels past 2^15 included."""
    from waveform_analysis.dtypes import st_waveforms_dtype
    from waveform_analysis.parallel import kernel_threads
    from waveform_analysis.processing.rows import record_channel_keys

    rng = np.random.default_rng(n + step)
    data = np.zeros(n, st_waveforms_dtype(12))
    data["board"] = rng.integers(-3, 6, n)
    data["channel"] = rng.integers(-5, 1 << 15, n)
    data = data[::step]
    want = (data["board"].astype(np.int64) << 16) | (data["channel"].astype(np.int64) & 0xFFFF)
    for threads in (1, 2):
        with kernel_threads(threads):
            assert np.array_equal(record_channel_keys(data), want)
    apart = np.zeros(3, [("board", np.int16), ("x", np.int8), ("channel", np.int16)])  # not side by side
    apart["board"], apart["channel"] = [-1, 0, 2], [5, -1, 7]
    assert record_channel_keys(apart).tolist() == [(-1 << 16) | 5, 0xFFFF, (2 << 16) | 7]
