"""Plugin declarations, registration and option resolution."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waveform_analysis import Context, Option, Plugin
from waveform_analysis.errors import ConfigError, PluginError, UnknownDataError


class Source(Plugin):
    provides = "source"
    version = "1"
    options = {
        "n": Option(default=5, type=int, help="length"),
        "scale": Option(default=1.0, type=float),
        "mode": Option(default="a", type=str, choices=("a", "b")),
    }

    def compute(self, context, run_id):
        return np.arange(context.get_config(self, "n")) * context.get_config(self, "scale")


class Double(Plugin):
    provides = "double"
    depends_on = ("source",)
    version = "1"
    options = {"scale": Option(default=2.0, type=float)}

    def compute(self, context, run_id, source):
        return source * context.get_config(self, "scale")


class OtherSource(Source):
    version = "2"


@pytest.fixture
def ctx(tmp_path):
    c = Context(storage_dir=tmp_path / "store", config={"data_root": str(tmp_path / "DAQ")})
    c.register(Source, Double())
    return c


def test_register_instances_classes_and_lists(tmp_path):
    c = Context(storage_dir=tmp_path / "s")
    c.register([Source, [Double()]])
    assert set(c.plugins) == {"source", "double"}


def test_duplicate_provides_is_an_error_unless_replace(ctx):
    with pytest.raises(PluginError, match="already provided by Source"):
        ctx.register(OtherSource)
    ctx.register(Source)  # the very same class again: fine
    ctx.register(OtherSource, replace=True)
    assert type(ctx.plugins["source"]) is OtherSource


def test_same_call_duplicate_is_an_error(tmp_path):
    c = Context(storage_dir=tmp_path / "s")
    with pytest.raises(PluginError):
        c.register(Source, OtherSource)
    assert c.plugins == {}  # nothing half-registered


@pytest.mark.parametrize(
    "attrs, error",
    [
        ({"provides": ""}, PluginError),
        ({"provides": 3}, PluginError),
        ({"depends_on": (1,)}, PluginError),
        ({"depends_on": ("a", "a")}, PluginError),
        ({"version": None}, PluginError),
        ({"version": ""}, PluginError),
        ({"options": {"x": 3}}, ConfigError),
        ({"options": {"x": Option(default="a", type=int)}}, ConfigError),
        ({"options": {"x": Option(default=1, type="int")}}, ConfigError),
        ({"options": {"x": Option(default="c", type=str, choices=("a", "b"))}}, ConfigError),
        ({"options": {"not valid": Option(default=1)}}, ConfigError),
    ],
)
def test_bad_declarations(tmp_path, attrs, error):
    cls = type("Bad", (Plugin,), {"provides": "bad", **attrs})
    c = Context(storage_dir=tmp_path / "s")
    with pytest.raises(error):
        c.register(cls)


def test_not_a_plugin(tmp_path):
    with pytest.raises(PluginError):
        Context(storage_dir=tmp_path / "s").register(object())


def test_numeric_version_is_read_as_text(tmp_path):
    cls = type("V", (Plugin,), {"provides": "v", "version": 2})
    c = Context(storage_dir=tmp_path / "s")
    c.register(cls)
    assert c.plugins["v"].version == "2"


def test_depends_on_string_is_normalised(tmp_path):
    cls = type("One", (Plugin,), {"provides": "one", "depends_on": "source"})
    c = Context(storage_dir=tmp_path / "s")
    c.register(Source, cls)
    assert c.plugins["one"].depends_on == ("source",)


def test_unknown_dependency_reported_at_first_use_with_chain(tmp_path):
    top = type("Top", (Plugin,), {"provides": "top", "depends_on": ("mid",)})
    mid = type("Mid", (Plugin,), {"provides": "mid", "depends_on": ("missing",)})
    c = Context(storage_dir=tmp_path / "s")
    c.register(top, mid)  # no error yet
    for call in (c.get_data, c.key_for, c.explain):
        with pytest.raises(PluginError, match="top -> mid -> missing"):
            call("run", "top")


def test_cycle_reported_with_chain(tmp_path):
    a = type("A", (Plugin,), {"provides": "a", "depends_on": ("b",)})
    b = type("B", (Plugin,), {"provides": "b", "depends_on": ("a",)})
    c = Context(storage_dir=tmp_path / "s")
    c.register(a, b)
    with pytest.raises(PluginError, match="cycle: a -> b -> a"):
        c.get_data("run", "a")
    with pytest.raises(PluginError, match="cycle"):
        c.to_dot("a")


def test_unknown_data_name(ctx):
    with pytest.raises(UnknownDataError, match="nope"):
        ctx.get_data("run", "nope")
    with pytest.raises(KeyError):
        ctx.get_data("run", "nope")


def test_option_precedence(ctx):
    assert ctx.get_config("double", "scale") == 2.0
    ctx.set_config({"scale": 3.0})
    assert ctx.get_config("double", "scale") == 3.0
    assert ctx.get_config("source", "scale") == 3.0
    ctx.set_config({"double": {"scale": 4.0}})
    assert ctx.get_config("double", "scale") == 4.0
    assert ctx.get_config(Double, "scale") == 4.0
    assert ctx.get_config(ctx.plugins["double"], "scale") == 4.0
    assert ctx.get_config("source", "scale") == 3.0


def test_set_config_merges_per_plugin_dicts(ctx):
    ctx.set_config({"source": {"n": 3}})
    ctx.set_config({"source": {"scale": 0.5}})
    assert ctx.get_config("source", "n") == 3
    assert ctx.get_config("source", "scale") == 0.5
    assert ctx.config["data_root"].endswith("DAQ")


def test_int_accepted_for_float_and_same_key(ctx):
    k1 = ctx.key_for("run", "double")
    ctx.set_config({"double": {"scale": 2}})
    assert ctx.get_config("double", "scale") == 2.0
    assert isinstance(ctx.get_config("double", "scale"), float)
    assert ctx.key_for("run", "double") == k1


def test_huge_int_for_float_is_a_config_error():
    with pytest.raises(ConfigError):
        Option(default=1.0, type=float).coerce(10**400, plugin="p", name="x")


@pytest.mark.parametrize(
    "config", [{"source": {"n": "five"}}, {"n": 2.5}, {"n": True}, {"mode": "c"}]
)
def test_option_type_errors_name_plugin_option_value_and_type(ctx, config, tmp_path):
    ((opt, value),) = config["source"].items() if "source" in config else config.items()
    before = dict(ctx.config)
    with pytest.raises(ConfigError) as info:  # refused at once: the plugin is registered
        ctx.set_config(config)
    assert ctx.config == before
    # set before the plugin exists: refused when it is registered
    late = Context(storage_dir=tmp_path / "late", config=config)
    with pytest.raises(ConfigError) as late_info:
        late.register(Source)
    assert "source" not in late.plugins
    for msg in (str(info.value), str(late_info.value)):
        assert "'source'" in msg
        assert repr(opt) in msg and repr(value) in msg


def test_type_error_message_names_expected_type(ctx):
    with pytest.raises(ConfigError, match="expected type float"):
        ctx.set_config({"double": {"scale": "big"}})
    ctx.config["double"] = {"scale": "big"}  # edited by hand: still caught when used
    with pytest.raises(ConfigError, match="expected type float"):
        ctx.get_config("double", "scale")
    with pytest.raises(ConfigError, match="expected type float"):
        ctx.get_data("run", "double")


def test_unknown_option(ctx):
    with pytest.raises(ConfigError, match="no option 'nope'"):
        ctx.get_config("source", "nope")


def test_seed_guide_config_keys_accepted(tmp_path):
    c = Context(storage_dir=tmp_path / "s", config={"data_root": "DAQ", "n_channels": 2})
    assert c.config["n_channels"] == 2
    assert c.config["daq_adapter"] == "auto"  # each run's format recognised (issue 17)


def test_standard_plugin_options():
    from waveform_analysis import standard_plugins

    ps = {p.provides: p for p in standard_plugins()}
    assert list(ps) == [
        "raw_files", "st_waveforms", "triggers", "peaks", "basic_features", "events",
    ]
    assert ps["st_waveforms"].options["baseline_samples"].default == 40
    assert ps["peaks"].options["polarity"].default == "negative"
    assert "threshold" in ps["peaks"].options
    assert ps["raw_files"].save_to_cache is False


@settings(max_examples=60, deadline=None)
@given(
    a=st.floats(allow_nan=False, allow_infinity=False, width=64),
    b=st.floats(allow_nan=False, allow_infinity=False, width=64),
)
def test_key_is_a_function_of_the_option_value(tmp_path_factory, a, b):
    tmp = tmp_path_factory.mktemp("k")
    c = Context(storage_dir=tmp / "s", config={"data_root": str(tmp / "DAQ")})
    c.register(Source, Double)
    c.set_config({"double": {"scale": a}})
    ka = c.key_for("run", "double")
    assert ka == c.key_for("run", "double")
    c.set_config({"double": {"scale": b}})
    kb = c.key_for("run", "double")
    assert (ka == kb) == (a == b and str(a) == str(b))
    assert len(ka) >= 20 and all(ch in "0123456789abcdef" for ch in ka)


@settings(max_examples=60, deadline=None)
@given(
    value=st.one_of(st.integers(), st.floats(allow_nan=False), st.text(), st.booleans(), st.none())
)
def test_option_coercion_accepts_exactly_numbers_for_float(value):
    opt = Option(default=1.0, type=float)
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(value, int) and ok:
        try:
            float(value)
        except OverflowError:
            ok = False
    if ok:
        out = opt.coerce(value, plugin="p", name="x")
        assert isinstance(out, float) and out == float(value)
    else:
        with pytest.raises(ConfigError):
            opt.coerce(value, plugin="p", name="x")
