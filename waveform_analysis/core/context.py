"""The Context: registers plugins, resolves their options and dependencies, caches results.

Typical use::

    from waveform_analysis import Context, standard_plugins

    ctx = Context(config={"data_root": "DAQ", "peaks": {"threshold": 20.0}})
    ctx.register(standard_plugins())
    peaks = ctx.get_data("run_001", "peaks")

Results are cached on disk (see :mod:`waveform_analysis.core.storage`) under a
key that covers everything that can change them (see
:mod:`waveform_analysis.core.lineage`), and returned as read-only memory maps.
The Context declares (configuration, plugins, keys, ``explain``); how one
data name is found or computed is :mod:`waveform_analysis.core.resolver`.
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import networkx as nx

from ..errors import ConfigError, PluginError, UnknownDataError
from .channels import lineage_options
from .chunks import DEFAULT_CHUNK_MB
from .config import (
    DEFAULT_CONFIG,
    check_storage_outside,
    default_storage_dir,
    merge_config,
    resolve_data_root,
    resolve_option,
    resolve_options,
    validate_config,
)
from .explain import Explanation, explain_plan
from .lineage import compute_keys, dependency_order, lineage_graph, plugin_fingerprint
from .manyruns import ManyRuns, Runner
from .plugin import Plugin, as_plugin, validate_plugin
from .resolver import Resolver
from .storage import CacheStorage, check_run_id

__all__ = ["Context"]

_UNPICKLED = ("_lock", "_resolver", "runner")  # runner: any callable; copies take the default


class Context(ManyRuns):
    """Plugins, configuration and a cache, for any number of runs.

    ``storage_dir`` defaults to ``$WAVEFORM_ANALYSIS_STORAGE_DIR`` or
    ``~/.cache/waveform_analysis`` and must lie outside ``data_root``.
    ``config`` holds ``data_root`` (default ``"DAQ"``), ``daq_adapter``
    (default ``"vx2730"``) and plugin options, as ``config[provides][option]``
    or ``config[option]``. With ``readonly=True`` the disk cache is read but
    never written: new results stay in memory. With ``verify_cache=True``
    every load from the disk cache re-reads the entry and compares it with its
    stored checksum (a mismatch is treated as a corrupt entry: a warning naming
    it, then recomputation). It is off by default because it reads every cached
    byte instead of memory-mapping only what is used; ``waveform-analysis cache
    DIR verify`` checks a whole cache on demand. ``runner`` computes the uncached runs of
    :meth:`get_array`, :meth:`get_df` and :meth:`export` in one call (default: a batch on
    all cores; ``False``: each run as it is read; see :mod:`.manyruns`).

    An option no registered plugin declares is a ConfigError that names it
    and the closest known one; see :meth:`check_config` for when it is raised.
    """

    def __init__(
        self,
        storage_dir: str | Path | None = None,
        config: dict[str, Any] | None = None,
        *,
        readonly: bool = False,
        verify_cache: bool = False,
        runner: Runner | bool | None = None,
    ) -> None:
        self.runner = runner
        self.config: dict[str, Any] = merge_config(DEFAULT_CONFIG, config)
        storage = Path(storage_dir).expanduser() if storage_dir else default_storage_dir()
        # absolute now, so that a change of directory (or a worker process) uses the same cache
        self._storage_dir = Path(os.path.abspath(storage))
        self.storage = CacheStorage(
            self._storage_dir, readonly=bool(readonly), verify=bool(verify_cache)
        )
        self._plugins: dict[str, Plugin] = {}
        check_storage_outside(self._storage_dir, self.data_root)
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.RLock()  # the plugin registry
        self._resolver = Resolver(self)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in _UNPICKLED}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.runner = None
        self._init_runtime()

    def clone(self, **overrides: Any) -> Context:
        """An independent Context: same config and plugins (fresh copies), empty memory.

        Keywords: ``storage_dir``, ``readonly``, ``verify_cache``, ``runner``, ``config``
        (merged into the copy's config).
        """
        unknown = set(overrides) - {"storage_dir", "readonly", "verify_cache", "runner", "config"}
        if unknown:
            raise TypeError(f"clone() got unexpected keyword(s): {', '.join(sorted(unknown))}")
        new = Context(
            storage_dir=overrides.get("storage_dir", self._storage_dir),
            config=merge_config(self.config, overrides.get("config")),
            readonly=overrides.get("readonly", self.readonly),
            verify_cache=overrides.get("verify_cache", self.verify_cache),
            runner=overrides.get("runner", self.runner),
        )
        new._plugins = {name: copy.deepcopy(p) for name, p in self._plugins.items()}
        return new

    def __repr__(self) -> str:
        ro = ", readonly" if self.readonly else ""
        return (
            f"<Context storage_dir={str(self._storage_dir)!r} plugins={sorted(self._plugins)}{ro}>"
        )

    def _repr_html_(self) -> str:
        """In Jupyter: the registered plugins (data, version, inputs, options set) and the cache."""
        from .html import table

        rows = []
        for name in sorted(self._plugins):
            p = self._plugins[name]
            changed = {
                k: v for k, v in ((k, self.get_config(p, k)) for k in p.options) if v != p.options[k].default
            }
            rows.append((name, type(p).__name__, p.version, ", ".join(p.depends_on) or "-",
                         ", ".join(f"{k}={v!r}" for k, v in changed.items()) or "defaults"))
        note = f"cache {self._storage_dir}; data_root {self.data_root}" + (" (read-only)" if self.readonly else "")
        return table("Context", ("data", "plugin", "version", "depends on", "options"), rows, note)

    @property
    def storage_dir(self) -> Path:
        """The cache folder: one sub-folder per run, one ``.npy`` and ``.json`` per data name and key."""
        return self._storage_dir

    @property
    def readonly(self) -> bool:
        """Read the disk cache but never write or delete there (new results stay in memory)."""
        return self.storage.readonly

    @readonly.setter
    def readonly(self, value: bool) -> None:
        self.storage.readonly = bool(value)

    @property
    def verify_cache(self) -> bool:
        """Whether loads from the disk cache compare each entry with its stored checksum."""
        return self.storage.verify_on_load

    @verify_cache.setter
    def verify_cache(self, value: bool) -> None:
        self.storage.verify_on_load = bool(value)

    @property
    def data_root(self) -> Path:
        """``config['data_root']`` as an absolute path (relative: against the current directory)."""
        return resolve_data_root(self.config)

    def set_config(self, config: dict[str, Any]) -> None:
        """Merge ``config`` into the current one (per-plugin dicts are merged per option).

        Checked against the plugins registered so far (ConfigError, and the
        config stays as it was): an option nested under their data name that
        they do not declare, or a value of the wrong type or range. Flat keys
        and data names no plugin knows yet wait for :meth:`check_config`.
        """
        merged = merge_config(self.config, config)
        validate_config(merged, self._plugins, complete=False)
        check_storage_outside(self._storage_dir, resolve_data_root(merged))
        self.config = merged

    def check_config(self) -> None:
        """Raise ConfigError for any config key that no registered plugin or the Context uses.

        Keys: ``data_root``, ``daq_adapter``, an option of a registered plugin
        (flat), or a registered data name holding a dict of its plugin's
        options. Values are checked by type, choices and range. It runs on
        every ``get_data``, ``key_for``, ``explain`` and ``is_cached``, by
        which time every plugin in use is registered; ``set_config`` and
        ``register`` check what the plugins registered so far decide.
        """
        validate_config(self.config, self._plugins, complete=True)

    def get_config(self, plugin: Plugin | type[Plugin] | str, option: str) -> Any:
        """The resolved value of ``option`` for ``plugin`` (instance, class or data name)."""
        if isinstance(plugin, str):
            plugin = self._plugin(plugin)
        elif not (
            isinstance(plugin, Plugin) or (isinstance(plugin, type) and issubclass(plugin, Plugin))
        ):
            raise PluginError(
                f"get_config expects a plugin, plugin class or data name, got {plugin!r}"
            )
        return resolve_option(self.config, plugin, option)

    @property
    def plugins(self) -> dict[str, Plugin]:
        """Registered plugins by the data name they provide (a copy of the registry)."""
        return dict(self._plugins)

    def register(self, *plugins: Any, replace: bool = False) -> None:
        """Register plugin instances or classes (or lists of them).

        A data name already provided by another plugin class is a PluginError
        unless ``replace=True``; registering the same class again is allowed.
        Unknown dependencies and cycles are reported at first use. Options set
        in the config under a data name registered here must be options of
        its plugin (ConfigError otherwise, and nothing is registered): to
        replace a plugin by one with other options, register the replacement
        in the same call, or set its options after registering it.
        """
        new: dict[str, Plugin] = {}
        for obj in _flatten(plugins):
            p = as_plugin(obj)
            validate_plugin(p)
            name = p.provides
            existing = new.get(name) or self._plugins.get(name)
            if existing is not None and not replace and type(existing) is not type(p):
                raise PluginError(
                    f"{name!r} is already provided by {type(existing).__name__}; cannot register "
                    f"{type(p).__name__} for it (pass replace=True to override)"
                )
            new[name] = p
        validate_config(self.config, {**self._plugins, **new}, complete=False)
        with self._lock:
            for name in new:
                if name in self._plugins:
                    self._resolver.forget(name=name)
            self._plugins.update(new)

    def _plugin(self, name: str) -> Plugin:
        try:
            return self._plugins[name]
        except KeyError:
            known = ", ".join(sorted(self._plugins)) or "none registered"
            raise UnknownDataError(f"no plugin provides {name!r} (known data: {known})") from None

    def list_runs(self) -> Any:
        """Runs under ``data_root`` the configured adapter reads: folder, files, channels, size, cached."""
        from .catalog import list_runs

        return list_runs(self)

    def run_info(self, run_id: str) -> dict[str, Any]:
        """What the run's files and settings say: format, model, ``dt_ns``, record length,
        polarity, gates, calibration, start/stop time ..., and where each value came from
        (``sources``); see :class:`waveform_analysis.daq.RunInfo`."""
        from ..daq.runs import run_info_for

        adapter, info = run_info_for(self, str(run_id))
        out = info.to_dict()
        out["adapter"] = adapter.name
        return out

    def data_info(self, data_name: str, run_id: str | None = None) -> Any:
        """Fields of ``data_name`` with numpy type, unit and description (prints as a table)."""
        from .catalog import data_info

        return data_info(self, data_name, run_id)

    def show_config(self, data_name: str | None = None, run_id: str | None = None) -> Any:
        """Options of the plugin providing ``data_name`` (or of all): default, current value, help;
        a per-channel option per channel, with where each value comes from (``run_id``: the
        run's settings too)."""
        from .catalog import show_config

        return show_config(self, data_name, run_id)

    def lineage(self, data_name: str) -> nx.DiGraph:
        """The plugins ``data_name`` depends on, as a graph dependency -> dependent."""
        return lineage_graph(self._plugins, data_name)

    def _keys(self, run_id: str, data_name: str) -> tuple[list[str], dict[str, str]]:
        self.check_config()
        order = dependency_order(self._plugins, data_name)
        keys = compute_keys(
            self._plugins,
            order,
            lambda p: lineage_options(self.config, p, resolve_options(self.config, p)),
            lambda p: plugin_fingerprint(self, p, run_id),
        )
        return order, keys

    def key_for(self, run_id: str, data_name: str) -> str:
        """The cache key of ``data_name`` for ``run_id`` under the current config."""
        run_id = check_run_id(run_id)
        return self._keys(run_id, data_name)[1][data_name]

    def to_dot(self, data_name: str) -> str:
        """Graphviz DOT text of the lineage of ``data_name`` (one node per plugin)."""
        from celestialflow.dot import dot_source

        g = self.lineage(data_name)
        attrs = {}
        for name in g.nodes:
            p = self._plugins[name]
            lines = [name, f"{type(p).__name__} v{p.version}"]
            for opt, value in resolve_options(self.config, p).items():
                lines.append(f"{opt}={value!r}")
            attrs[name] = {"label": "\n".join(lines)}
            if name == data_name:
                attrs[name]["penwidth"] = "2"
        return dot_source(g, name=f"lineage_{data_name}", node_attrs=attrs, rankdir="LR")

    def is_cached(self, run_id: str, data_name: str) -> bool:
        """Whether ``data_name`` of ``run_id`` is available without computing it."""
        run_id = check_run_id(run_id)
        key = self._keys(run_id, data_name)[1][data_name]
        return self._resolver.status(run_id, data_name, key) != "compute"

    def explain(self, run_id: str, data_name: str) -> Explanation:
        """Which plugins ``get_data(run_id, data_name)`` would run, with keys and options."""
        run_id = check_run_id(run_id)
        order, keys = self._keys(run_id, data_name)
        return explain_plan(self, run_id, data_name, order, keys)

    preview = explain

    def plan(self, run_id: str, data_name: str) -> list[str]:
        """Data names ``get_data(run_id, data_name)`` would compute, dependencies first."""
        return self.explain(run_id, data_name).to_compute

    def get_data(self, run_id: str, data_name: str) -> Any:
        """``data_name`` of ``run_id``: from memory, from the disk cache, or computed."""
        run_id = check_run_id(run_id)
        current = self._resolver.current_plugin()
        if current is not None:
            if data_name not in (*current.depends_on, *current.run_inputs(self, run_id)):
                raise PluginError(
                    f"plugin {type(current).__name__} ({current.provides!r}) asked for "
                    f"{data_name!r}, which it does not declare in depends_on "
                    f"{tuple(current.depends_on)!r}"
                )
        _, keys = self._keys(run_id, data_name)
        return self._resolver.get(run_id, data_name, keys)

    @property
    def chunk_bytes(self) -> int:
        """The memory budget of one chunk of records, from ``config['chunk_mb']`` (MiB, default 64)."""
        value = self.config.get("chunk_mb", DEFAULT_CHUNK_MB)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ConfigError(f"config 'chunk_mb' must be a positive number of MiB, got {value!r}")
        return max(1, int(value * (1 << 20)))

    def watch(self, target: str = "peaks", *, background: bool = False, idle_exit: float | None = None,
              dashboard: bool | int | str = False, **options: Any) -> Any:
        """Process the runs of ``data_root`` as the digitizer writes them; returns the Watcher.

        Blocks until Ctrl-C (or ``idle_exit`` seconds with every run done), unless
        ``background=True``: then it returns at once and ``watcher.stop()`` ends it.
        ``options``: ``segments``, ``settle``, ``poll``, ``interval``, ``workers``,
        ``executor`` (see :class:`waveform_analysis.online.Watcher` and docs/online.md).
        ``dashboard``: also serve a live page of the runs' states, spectra and rates
        (True, a port or ``"host:port"``; 127.0.0.1 by default), at ``watcher.dashboard.url``.
        """
        from ..online import Watcher, open_watch_dashboard

        watcher = Watcher(self, target, **options)
        if dashboard is not False:
            watcher.dashboard = open_watch_dashboard(watcher, dashboard)
        if background:
            watcher.start(idle_exit=idle_exit)
        else:
            watcher.run(idle_exit=idle_exit)
        return watcher

    def release(self, run_id: str) -> None:
        """Drop this Context's in-memory references to ``run_id`` (the disk cache stays)."""
        self._resolver.release(run_id)

    def clear_cache_for(self, run_id: str, data_name: str | None = None) -> None:
        """Forget ``data_name`` (or everything) of ``run_id``, in memory and on disk.

        A read-only Context only forgets what it holds in memory.
        """
        run_id = check_run_id(run_id)
        self._resolver.forget(run_id, data_name)
        self.storage.delete(run_id, data_name)


def _flatten(items: Iterable[Any]) -> Iterable[Any]:
    for item in items:
        if isinstance(item, list | tuple | set | frozenset):
            yield from _flatten(item)
        else:
            yield item
