"""Dependency resolution and cache keys.

The key of a data item is a sha256 over its data name, its plugin's version,
the values of the plugin's tracked options, the keys of everything upstream
and the plugin's fingerprint (for ``raw_files``: relative names, sizes and
modification times of the input files). Nothing in it depends on where the
data folder is mounted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import networkx as nx

from celestialflow.errors import annotate

from ..errors import PluginError, UnknownDataError
from .plugin import Plugin

__all__ = ["KEY_LENGTH", "dependency_order", "lineage_graph", "make_key", "plugin_fingerprint"]

KEY_LENGTH = 32  # hex digits of sha256 kept in keys and file names


def _chain(path: list[str]) -> str:
    return " -> ".join(path)


def dependency_order(plugins: Mapping[str, Plugin], target: str) -> list[str]:
    """Data names needed for ``target``, dependencies first, ``target`` last.

    Raises UnknownDataError when nothing provides ``target`` and PluginError
    naming the chain for an unknown dependency or a cycle.
    """
    if target not in plugins:
        known = ", ".join(sorted(plugins)) or "none registered"
        raise UnknownDataError(f"no plugin provides {target!r} (known data: {known})")
    order: list[str] = []
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        if name in on_path:
            cycle = path[path.index(name) :] + [name]
            raise PluginError(f"dependency cycle: {_chain(cycle)}")
        plugin = plugins.get(name)
        if plugin is None:
            raise PluginError(f"no plugin provides {name!r}, needed by {_chain(path + [name])}")
        path.append(name)
        on_path.add(name)
        for dep in plugin.depends_on:
            visit(dep)
        path.pop()
        on_path.discard(name)
        done.add(name)
        order.append(name)

    visit(target)
    return order


def lineage_graph(plugins: Mapping[str, Plugin], target: str) -> nx.DiGraph:
    """Directed graph dependency -> dependent over the lineage of ``target``."""
    order = dependency_order(plugins, target)
    g = nx.DiGraph(name=target)
    for name in order:
        p = plugins[name]
        g.add_node(name, plugin=type(p).__name__, version=p.version)
    for name in order:
        for dep in plugins[name].depends_on:
            g.add_edge(dep, name)
    return g


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=repr)


def make_key(
    data_name: str,
    version: str,
    tracked_options: Mapping[str, Any],
    upstream_keys: Mapping[str, str],
    fingerprint: str,
) -> str:
    material = {
        "data_name": data_name,
        "version": version,
        "options": dict(tracked_options),
        "upstream": dict(upstream_keys),
        "fingerprint": fingerprint or "",
    }
    return hashlib.sha256(_canonical(material).encode()).hexdigest()[:KEY_LENGTH]


def compute_keys(
    plugins: Mapping[str, Plugin],
    order: list[str],
    options_of: Callable[[Plugin], dict[str, Any]],
    fingerprint_of: Callable[[Plugin], str],
) -> dict[str, str]:
    """Key of every name in ``order`` (which must list dependencies first)."""
    keys: dict[str, str] = {}
    for name in order:
        p = plugins[name]
        opts = options_of(p)
        tracked = {k: v for k, v in opts.items() if p.options[k].track}
        upstream = {d: keys[d] for d in p.depends_on}
        keys[name] = make_key(name, p.version, tracked, upstream, fingerprint_of(p))
    return keys


def plugin_fingerprint(context: Any, plugin: Any, run_id: str) -> str:
    """``plugin.fingerprint`` as a string, with the keys of its :meth:`~.plugin.Plugin.run_inputs`;
    an error there is blamed on that plugin."""
    try:
        extra = "".join(f"|{name}:{context.key_for(run_id, name)}"
                        for name in plugin.run_inputs(context, run_id))
        return str(plugin.fingerprint(context, run_id) or "") + extra
    except Exception as exc:  # e.g. the run's files are missing: that plugin is the one failing
        annotate(exc, wa_plugin=plugin.provides)
        raise
