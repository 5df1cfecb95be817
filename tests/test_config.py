"""Config keys: every one must be known; mistyped names are refused with the close match."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waveform_analysis import Context, Option, Plugin, standard_plugins
from waveform_analysis.core.config import CONTEXT_KEYS, validate_config
from waveform_analysis.errors import ConfigError


class Source(Plugin):
    provides = "source"
    version = "1"
    options = {"n": Option(default=5, type=int, minimum=0, maximum=100)}

    def compute(self, context, run_id):
        return np.arange(context.get_config(self, "n"), dtype=np.float64)


class Scaled(Plugin):
    provides = "scaled"
    depends_on = ("source",)
    version = "1"
    options = {"factor": Option(default=2.0, type=float)}

    def compute(self, context, run_id, source):
        return source * context.get_config(self, "factor")


class SourceWithOffset(Source):
    options = {**Source.options, "offset": Option(default=0.0, type=float)}


def context(tmp_path, config=None) -> Context:
    return Context(storage_dir=tmp_path / "cache", config={"data_root": str(tmp_path / "DAQ"), **(config or {})})


def standard(tmp_path, config=None) -> Context:
    ctx = context(tmp_path, config)
    ctx.register(standard_plugins())
    return ctx


# -- the examples ----------------------------------------------------------------------


def test_nested_typo_refused_at_set_config(tmp_path):
    ctx = standard(tmp_path)
    before = {k: dict(v) if isinstance(v, dict) else v for k, v in ctx.config.items()}
    with pytest.raises(ConfigError, match="did you mean 'threshold'\\?") as info:
        ctx.set_config({"peaks": {"treshold": 50}})
    assert "'treshold'" in str(info.value) and "'peaks'" in str(info.value)
    assert ctx.config == before  # nothing merged


def test_nested_typo_set_first_refused_at_register(tmp_path):
    ctx = context(tmp_path, {"peaks": {"treshold": 50}})  # no plugin yet: nothing to check against
    with pytest.raises(ConfigError, match="'treshold'.*did you mean 'threshold'\\?"):
        ctx.register(standard_plugins())
    assert ctx.plugins == {}  # the failed call registered nothing


def test_flat_typo_refused_when_data_is_asked_for(tmp_path):
    ctx = standard(tmp_path, {"treshold": 50})
    ctx.set_config({"polarity": "negative"})  # the typo may still belong to a plugin to come
    for call in (ctx.get_data, ctx.key_for, ctx.explain, ctx.is_cached):
        with pytest.raises(ConfigError, match="'treshold'.*did you mean 'threshold'\\?"):
            call("run_001", "peaks")
    with pytest.raises(ConfigError, match="treshold"):
        ctx.check_config()


def test_unknown_data_name_refused_with_suggestion(tmp_path):
    ctx = standard(tmp_path, {"peeks": {"threshold": 50}})
    with pytest.raises(ConfigError, match="no registered plugin provides 'peeks'; did you mean 'peaks'\\?"):
        ctx.get_data("run_001", "peaks")


def test_no_close_match_lists_the_options(tmp_path):
    ctx = standard(tmp_path)
    with pytest.raises(ConfigError, match="does not declare \\(its options: .*threshold") as info:
        ctx.set_config({"peaks": {"zzz": 1}})
    assert "did you mean" not in str(info.value)


def test_data_name_with_a_plain_value_is_refused(tmp_path):
    ctx = standard(tmp_path)
    with pytest.raises(ConfigError, match="'peaks' is the data name of plugin PeaksPlugin"):
        ctx.set_config({"peaks": 50})


def test_context_keys_accepted_without_their_plugins(tmp_path):
    ctx = context(tmp_path, {"daq_adapter": "v1725", "n_channels": 2})
    ctx.register(Source, Scaled)  # neither reads daq_adapter
    ctx.check_config()
    np.testing.assert_array_equal(ctx.get_data("r1", "scaled"), np.arange(5) * 2.0)
    assert set(CONTEXT_KEYS) >= {"data_root", "daq_adapter", "n_channels"}


# -- order of set_config and register ----------------------------------------------------------


def test_options_of_a_plugin_registered_later_are_not_refused_early(tmp_path):
    ctx = context(tmp_path, {"scaled": {"factor": 3.0}})
    ctx.register(Source)  # 'scaled' is not registered yet: its options wait
    ctx.set_config({"factor": 4.0, "scaled": {"factor": 3.0}})
    ctx.register(Scaled)
    assert ctx.get_config("scaled", "factor") == 3.0
    np.testing.assert_array_equal(ctx.get_data("r1", "scaled"), np.arange(5) * 3.0)


def test_options_of_a_plugin_never_registered_are_refused_at_use(tmp_path):
    ctx = context(tmp_path, {"scaled": {"factor": 3.0}})
    ctx.register(Source)
    with pytest.raises(ConfigError, match="no registered plugin provides 'scaled'"):
        ctx.get_data("r1", "source")


def test_replacement_with_other_options_in_the_same_call(tmp_path):
    ctx = context(tmp_path, {"source": {"offset": 1.5}})
    with pytest.raises(ConfigError, match="'offset'"):
        ctx.register(Source)
    ctx.register(Source, SourceWithOffset, replace=True)  # the last one for a data name wins
    assert ctx.get_config("source", "offset") == 1.5


def test_option_set_before_register_then_replaced_plugin_drops_it(tmp_path):
    ctx = context(tmp_path)
    ctx.register(SourceWithOffset)
    ctx.set_config({"source": {"offset": 1.5}})
    with pytest.raises(ConfigError, match="'offset'"):
        ctx.register(Source, replace=True)
    assert type(ctx.plugins["source"]) is SourceWithOffset


# -- values: type and range --------------------------------------------------------------------


def test_range_checked_at_set_config_and_named(tmp_path):
    ctx = context(tmp_path)
    ctx.register(Source)
    with pytest.raises(ConfigError, match="value 101 is out of the option's range \\(0 <= value <= 100\\)"):
        ctx.set_config({"source": {"n": 101}})
    with pytest.raises(ConfigError, match="value -1 is out"):
        ctx.set_config({"n": -1})
    with pytest.raises(ConfigError, match="expected type int"):
        ctx.set_config({"n": "ten"})
    ctx.set_config({"n": 100})
    assert ctx.get_config("source", "n") == 100


def test_range_definitions_checked():
    with pytest.raises(ConfigError, match="own default"):
        Option(default=-1, type=int, minimum=0).check_definition(plugin="p", name="x")
    with pytest.raises(ConfigError, match="above maximum"):
        Option(default=1, type=int, minimum=5, maximum=2).check_definition(plugin="p", name="x")
    with pytest.raises(ConfigError, match="must be numbers"):
        Option(default=1, type=int, minimum="0").check_definition(plugin="p", name="x")
    opt = Option(default=None, type=(float, type(None)), minimum=0.0)
    opt.check_definition(plugin="p", name="x")  # None is left alone
    assert opt.coerce(None, plugin="p", name="x") is None
    assert "range 0.0 <= value" in repr(opt)


@settings(max_examples=80, deadline=None)
@given(value=st.one_of(st.integers(-1000, 1000), st.floats(allow_nan=False, width=32)))
def test_range_accepts_exactly_the_inclusive_interval(value):
    opt = Option(default=0.5, type=float, minimum=0.0, maximum=1.0)
    if 0.0 <= value <= 1.0:
        assert opt.coerce(value, plugin="p", name="x") == float(value)
    else:
        with pytest.raises(ConfigError, match="range"):
            opt.coerce(value, plugin="p", name="x")


# -- the check itself, for any key -------------------------------------------------------------

PLUGINS = {p.provides: p for p in standard_plugins()}
KNOWN = set(CONTEXT_KEYS) | set(PLUGINS) | {o for p in PLUGINS.values() for o in p.options}


@settings(max_examples=150, deadline=None)
@given(key=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12))
def test_any_unknown_flat_key_is_refused_by_name(key):
    config = {"data_root": "DAQ", key: 1}
    if key in KNOWN:
        return
    validate_config(config, PLUGINS, complete=False)  # may belong to a later plugin
    with pytest.raises(ConfigError) as info:
        validate_config(config, PLUGINS, complete=True)
    assert repr(key) in str(info.value)


@settings(max_examples=150, deadline=None)
@given(data_name=st.sampled_from(sorted(PLUGINS)), opt=st.text(min_size=1, max_size=12))
def test_any_undeclared_nested_option_is_refused_by_name(data_name, opt):
    config = {data_name: {opt: None}}
    if opt in PLUGINS[data_name].options:
        return
    with pytest.raises(ConfigError) as info:
        validate_config(config, PLUGINS, complete=False)
    assert repr(opt) in str(info.value) and repr(data_name) in str(info.value)
