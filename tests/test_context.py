"""Context behaviour with toy plugins: keys, cache hits, isolation, errors, copies."""

from __future__ import annotations

import pickle
from collections import Counter

import networkx as nx
import numpy as np
import pytest

from waveform_analysis import Context, Option, Plugin
from waveform_analysis.errors import CacheError, ConfigError, PluginError

CALLS: Counter = Counter()


class Source(Plugin):
    provides = "source"
    version = "1"
    options = {
        "n": Option(default=5, type=int),
        "threads": Option(default=1, type=int, track=False),
    }

    def compute(self, context, run_id):
        CALLS["source"] += 1
        return np.arange(context.get_config(self, "n"), dtype=np.float64)


class Double(Plugin):
    provides = "double"
    depends_on = ("source",)
    version = "1"
    options = {"factor": Option(default=2.0, type=float)}

    def compute(self, context, run_id, source):
        CALLS["double"] += 1
        return source * context.get_config(self, "factor")


class Sneaky(Plugin):
    provides = "sneaky"
    depends_on = ("source",)

    def compute(self, context, run_id, source):
        return context.get_data(run_id, "double")


class Declared(Plugin):
    provides = "declared"
    depends_on = ("source",)

    def compute(self, context, run_id, source):
        again = context.get_data(run_id, "source")
        return np.asarray(again) + 1


class Boom(Plugin):
    provides = "boom"
    depends_on = ("source",)

    def compute(self, context, run_id, source):
        raise ZeroDivisionError("boom in plugin")


class NotArray(Plugin):
    provides = "notarray"

    def compute(self, context, run_id):
        return {"a": 1}


class ObjectArray(Plugin):
    provides = "objects"

    def compute(self, context, run_id):
        return np.array([{"a": 1}, None], dtype=object)


class Anything(Plugin):
    provides = "anything"
    save_to_cache = False

    def compute(self, context, run_id):
        return {"a": 1}


class Empty(Plugin):
    provides = "empty"
    depends_on = ("source",)

    def compute(self, context, run_id, source):
        return np.zeros(0, dtype=[("x", "i8"), ("y", "f4")])


PLUGINS = [Source, Double, Sneaky, Declared, Boom, NotArray, ObjectArray, Anything, Empty]


@pytest.fixture(autouse=True)
def _reset_calls():
    CALLS.clear()


def make(tmp_path, **kw):
    kw.setdefault("storage_dir", tmp_path / "store")
    config = {"data_root": str(tmp_path / "DAQ"), **kw.pop("config", {})}
    c = Context(config=config, **kw)
    c.register(PLUGINS)
    return c


def npy_files(tmp_path):
    return sorted(p.name for p in (tmp_path / "store").rglob("*") if p.is_file())


def test_get_data_computes_once_and_returns_memmap(tmp_path):
    c = make(tmp_path)
    d = c.get_data("r1", "double")
    np.testing.assert_array_equal(d, np.arange(5) * 2.0)
    assert isinstance(d, np.memmap)
    assert not d.flags.writeable
    c.get_data("r1", "double")
    assert CALLS == {"source": 1, "double": 1}


def test_cache_hit_in_a_second_context(tmp_path):
    make(tmp_path).get_data("r1", "double")
    CALLS.clear()
    c2 = make(tmp_path)
    np.testing.assert_array_equal(c2.get_data("r1", "double"), np.arange(5) * 2.0)
    assert CALLS == {}  # neither double nor its upstream recomputed


def test_files_layout_and_metadata(tmp_path):
    import json

    c = make(tmp_path)
    c.get_data("r1", "double")
    key = c.key_for("r1", "double")
    assert len(key) >= 20
    folder = tmp_path / "store" / "r1"
    meta = json.loads((folder / f"double-{key}.json").read_text())
    assert meta["key"] == key and meta["data_name"] == "double"
    assert meta["version"] == "1" and meta["options"] == {"factor": 2.0}
    assert meta["shape"] == [5]
    assert meta["file_size"] == (folder / f"double-{key}.npy").stat().st_size
    assert "created" in meta and "dtype" in meta


def test_key_stability_and_sensitivity(tmp_path):
    c = make(tmp_path)
    k = c.key_for("r1", "double")
    assert k == make(tmp_path).key_for("r1", "double")
    assert k == c.key_for("r1", "double")
    # untracked option: same key
    c.set_config({"threads": 4})
    assert c.key_for("r1", "double") == k
    # tracked option of the plugin
    c.set_config({"double": {"factor": 3.0}})
    k_factor = c.key_for("r1", "double")
    assert k_factor != k
    # tracked option upstream
    c.set_config({"double": {"factor": 2.0}, "source": {"n": 6}})
    assert c.key_for("r1", "double") not in (k, k_factor)
    # version
    c.set_config({"source": {"n": 5}})
    assert c.key_for("r1", "double") == k
    v2 = type("DoubleV2", (Double,), {"version": "2"})
    c.register(v2, replace=True)
    assert c.key_for("r1", "double") != k


def test_option_change_recomputes_and_keeps_both_entries(tmp_path):
    c = make(tmp_path)
    a = np.array(c.get_data("r1", "double"))
    c.set_config({"factor": 10.0})
    b = np.array(c.get_data("r1", "double"))
    np.testing.assert_array_equal(b, a * 5)
    assert CALLS == {"source": 1, "double": 2}
    c.set_config({"factor": 2.0})
    np.testing.assert_array_equal(c.get_data("r1", "double"), a)
    assert CALLS["double"] == 2


def test_hidden_read_refused(tmp_path):
    c = make(tmp_path)
    with pytest.raises(PluginError, match="does not declare"):
        c.get_data("r1", "sneaky")
    assert not any(n.startswith("sneaky") for n in npy_files(tmp_path))
    # a declared dependency may be read through the context too
    np.testing.assert_array_equal(c.get_data("r1", "declared"), np.arange(5) + 1.0)
    # and outside compute anything goes again
    c.get_data("r1", "double")


def test_original_exception_propagates_and_nothing_cached(tmp_path):
    c = make(tmp_path)
    with pytest.raises(ZeroDivisionError) as info:
        c.get_data("r1", "boom")
    assert type(info.value) is ZeroDivisionError
    assert str(info.value) == "boom in plugin"
    assert any("Boom" in n and "'r1'" in n for n in getattr(info.value, "__notes__", []))
    assert not any(n.startswith("boom") for n in npy_files(tmp_path))
    assert not c.is_cached("r1", "boom")
    # the upstream that succeeded stays cached
    assert c.is_cached("r1", "source")


def test_non_array_result_is_a_cache_error(tmp_path):
    c = make(tmp_path)
    with pytest.raises(CacheError, match=r"NotArray.*builtins\.dict"):
        c.get_data("r1", "notarray")


def test_object_dtype_refused_never_pickled(tmp_path):
    c = make(tmp_path)
    with pytest.raises(CacheError, match="Python objects"):
        c.get_data("r1", "objects")
    assert not any(n.startswith("objects") for n in npy_files(tmp_path))


def test_unsaved_plugin_may_return_anything(tmp_path):
    c = make(tmp_path)
    assert c.get_data("r1", "anything") == {"a": 1}
    assert npy_files(tmp_path) == []


def test_zero_length_result_is_valid(tmp_path):
    c = make(tmp_path)
    e = c.get_data("r1", "empty")
    assert e.shape == (0,) and e.dtype.names == ("x", "y")
    assert make(tmp_path).get_data("r1", "empty").shape == (0,)


def test_clear_cache_for(tmp_path):
    c = make(tmp_path)
    c.get_data("r1", "double")
    c.get_data("r2", "double")
    c.clear_cache_for("r1", "double")
    assert not c.is_cached("r1", "double")
    assert c.is_cached("r1", "source")
    assert c.is_cached("r2", "double")
    c.get_data("r1", "double")
    assert CALLS == {"source": 2, "double": 3}
    c.clear_cache_for("r1")
    assert not c.is_cached("r1", "source")
    assert not (tmp_path / "store" / "r1").exists()
    assert c.is_cached("r2", "double")


def test_release_drops_memory_only(tmp_path):
    c = make(tmp_path)
    c.get_data("r1", "double")
    c.release("r1")
    assert "r1" not in c._resolver.memory
    c.get_data("r1", "double")
    assert CALLS == {"source": 1, "double": 1}


def test_readonly_writes_nothing(tmp_path):
    c = make(tmp_path, readonly=True)
    d = c.get_data("r1", "double")
    np.testing.assert_array_equal(d, np.arange(5) * 2.0)
    assert npy_files(tmp_path) == []
    c.get_data("r1", "double")
    assert CALLS == {"source": 1, "double": 1}  # kept in memory
    # a readonly context reads what a writer cached, and never deletes
    make(tmp_path).get_data("r2", "double")
    CALLS.clear()
    ro = make(tmp_path, readonly=True)
    ro.get_data("r2", "double")
    assert CALLS == {}
    ro.clear_cache_for("r2")
    assert make(tmp_path).is_cached("r2", "double")


def test_explain_and_plan(tmp_path):
    c = make(tmp_path)
    ex = c.explain("r1", "double")
    assert [r.data_name for r in ex.rows] == ["source", "double"]
    assert [r.status for r in ex.rows] == ["compute", "compute"]
    assert ex["double"].options == {"factor": 2.0}
    assert ex["double"].key == c.key_for("r1", "double")
    text = str(ex)
    assert "double" in text and ex["double"].key in text and "factor=2.0" in text
    assert c.plan("r1", "double") == ["source", "double"]
    assert c.preview("r1", "double").to_dicts() == ex.to_dicts()
    c.get_data("r1", "double")
    c2 = make(tmp_path)
    assert c2.plan("r1", "double") == []
    assert [r.status for r in c2.explain("r1", "double")] == ["skip", "cached"]
    c2.set_config({"factor": 7.0})
    assert c2.plan("r1", "double") == ["double"]
    assert c2.explain("r1", "double")["source"].status == "cached"


def test_lineage_and_to_dot(tmp_path):
    c = make(tmp_path)
    g = c.lineage("declared")
    assert isinstance(g, nx.DiGraph)
    assert set(g.edges) == {("source", "declared")}
    dot = c.to_dot("double")
    assert dot.startswith("digraph")
    assert '"source" -> "double"' in dot
    assert "factor=2.0" in dot
    assert dot == c.to_dot("double")  # deterministic


def test_pickle_roundtrip_keeps_config_and_plugins(tmp_path):
    c = make(tmp_path, config={"factor": 3.0})
    c.get_data("r1", "double")
    c2 = pickle.loads(pickle.dumps(c))
    assert c2._resolver.memory == {}
    assert c2.config == c.config and set(c2.plugins) == set(c.plugins)
    CALLS.clear()
    np.testing.assert_array_equal(c2.get_data("r1", "double"), np.arange(5) * 3.0)
    assert CALLS == {}


def test_clone_is_independent(tmp_path):
    c = make(tmp_path)
    c2 = c.clone(storage_dir=tmp_path / "other", config={"factor": 5.0})
    assert c2.plugins["double"] is not c.plugins["double"]
    assert c2.get_config("double", "factor") == 5.0
    assert c.get_config("double", "factor") == 2.0
    c2.get_data("r1", "double")
    assert not c.is_cached("r1", "double")
    assert c.clone(readonly=True).readonly
    with pytest.raises(TypeError):
        c.clone(bogus=1)


def test_storage_dir_defaults_to_env(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVEFORM_ANALYSIS_STORAGE_DIR", str(tmp_path / "envcache"))
    c = Context()
    assert c.storage_dir == tmp_path / "envcache"
    assert c.config["data_root"] == "DAQ"


def test_storage_inside_data_root_warns(tmp_path):
    from loguru import logger

    messages = []
    sink = logger.add(messages.append, level="WARNING")
    try:
        Context(storage_dir=tmp_path / "DAQ" / "cache", config={"data_root": str(tmp_path / "DAQ")})
        assert any("is inside data_root" in str(m) for m in messages)
        messages.clear()
        c = Context(storage_dir=tmp_path / "cache", config={"data_root": str(tmp_path / "DAQ")})
        assert messages == []
        c.set_config({"data_root": str(tmp_path)})
        assert any("is inside data_root" in str(m) for m in messages)
    finally:
        logger.remove(sink)


def test_relative_data_root_resolves_against_cwd(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    c = Context(storage_dir=tmp_path / "cache", config={"data_root": "DAQ"})
    assert c.data_root == tmp_path / "a" / "DAQ"
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "b")
    assert c.data_root == tmp_path / "b" / "DAQ"


@pytest.mark.parametrize("bad", ["", "a/b", "..", 3])
def test_bad_run_id(tmp_path, bad):
    with pytest.raises(ConfigError):
        make(tmp_path).get_data(bad, "source")


def test_threads_sharing_a_context_compute_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    c = make(tmp_path)
    with ThreadPoolExecutor(4) as pool:
        out = list(pool.map(lambda _: np.array(c.get_data("r1", "double")), range(8)))
    for o in out:
        np.testing.assert_array_equal(o, np.arange(5) * 2.0)
    assert CALLS == {"source": 1, "double": 1}


def test_readonly_can_be_switched(tmp_path):
    c = make(tmp_path)
    c.readonly = True
    c.get_data("r1", "double")
    assert npy_files(tmp_path) == []
    c.readonly = False
    c.release("r1")
    c.get_data("r1", "double")
    assert npy_files(tmp_path) != []


def test_to_dot_parses_as_graphviz(tmp_path):
    pydot = pytest.importorskip("pydot")
    c = make(tmp_path)
    (graph,) = pydot.graph_from_dot_data(c.to_dot("declared"))
    names = {n.get_name().strip('"') for n in graph.get_nodes()} - {"node"}
    assert names == {"source", "declared"}
    assert len(graph.get_edges()) == 1


class ReadsThroughContext(Plugin):
    provides = "through_context"
    depends_on = ("source",)

    def compute(self, context, run_id):
        return np.asarray(context.get_data(run_id, "source")) * 3


def test_compute_may_read_declared_inputs_through_the_context(tmp_path):
    c = make(tmp_path)
    c.register(ReadsThroughContext)
    np.testing.assert_array_equal(c.get_data("r1", "through_context"), np.arange(5) * 3.0)
