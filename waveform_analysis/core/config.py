"""Context configuration: defaults, merging and per-plugin option resolution.

An option ``opt`` of the plugin providing ``name`` resolves, in this order, to
``config[name][opt]``, then ``config[opt]``, then the option's default, and is
type-checked against its :class:`~waveform_analysis.core.plugin.Option`.

Every key of a config must mean something: a context setting
(:data:`CONTEXT_KEYS`), an option some registered plugin declares (flat), or
the data name of a registered plugin holding a dict of that plugin's options.
:func:`validate_config` enforces it. Plugins may be registered after the config
is set, so it runs in two strengths: *partial* (at ``set_config`` and
``register``) rejects only what the plugins registered so far already decide
(an option nested under their data name that they do not declare, a value of
the wrong type); *complete* (whenever data or keys are asked for) also rejects
flat keys and data names that no registered plugin knows.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..daq import DEFAULT_ADAPTER
from ..errors import ConfigError
from .channels import TABLE_KEY, check_table
from .plugin import Plugin

__all__ = [
    "CONTEXT_KEYS",
    "DEFAULT_CONFIG",
    "STORAGE_ENV",
    "validate_config",
    "default_storage_dir",
    "merge_config",
    "resolve_option",
    "resolve_options",
]

DEFAULT_CONFIG: dict[str, Any] = {"data_root": "DAQ", "daq_adapter": DEFAULT_ADAPTER}
STORAGE_ENV = "WAVEFORM_ANALYSIS_STORAGE_DIR"

#: Config keys the Context itself reads (or accepts), whichever plugins are registered.
CONTEXT_KEYS: dict[str, str] = {
    "data_root": "folder holding the runs (<data_root>/<run>/RAW)",
    "daq_adapter": "digitizer file format ('auto': recognised per run), read by raw_files and its readers",
    "n_channels": "accepted for the seed user guide's examples; nothing reads it",
    "channels": "per-channel settings, {'default': {...}, 'board:channel': {...}} (core/channels.py)",
    "chunk_mb": "memory budget of one chunk of records, MiB (default 64); results do not depend on it",
}


def default_storage_dir() -> Path:
    """``$WAVEFORM_ANALYSIS_STORAGE_DIR`` if set, else ``~/.cache/waveform_analysis``."""
    env = os.environ.get(STORAGE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "waveform_analysis"


def merge_config(base: dict[str, Any], update: dict[str, Any] | None) -> dict[str, Any]:
    """A new dict: ``base`` updated by ``update``; nested dicts (per-plugin options) merge per key,
    the ``channels`` table per channel and option."""
    if update is None:
        return dict(base)
    if not isinstance(update, dict):
        raise ConfigError(f"config must be a dict, got {type(update).__name__}")
    out = dict(base)
    for k, v in update.items():
        if not isinstance(k, str):
            raise ConfigError(f"config keys must be strings, got {k!r}")
        if k == TABLE_KEY and isinstance(v, dict) and isinstance(out.get(k), dict):
            # the channels table merges per channel, then per option
            out[k] = {**out[k], **{ch: {**out[k].get(ch, {}), **e} if isinstance(e, dict) else e
                                   for ch, e in v.items()}}
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        elif isinstance(v, dict):
            out[k] = dict(v)
        else:
            out[k] = v
    return out


def resolve_option(config: dict[str, Any], plugin: Plugin, name: str) -> Any:
    """The value of option ``name`` of ``plugin`` under ``config`` (checked)."""
    opt = plugin.options.get(name)
    if opt is None:
        known = ", ".join(sorted(plugin.options)) or "none"
        raise ConfigError(
            f"plugin {plugin.provides!r} has no option {name!r} (its options: {known})"
        )
    per_plugin = config.get(plugin.provides)
    if isinstance(per_plugin, dict) and name in per_plugin:
        value = per_plugin[name]
    elif name in config:
        value = config[name]
    else:
        value = opt.default
    return opt.coerce(value, plugin=plugin.provides, name=name)


def resolve_options(config: dict[str, Any], plugin: Plugin) -> dict[str, Any]:
    """All options of ``plugin`` resolved under ``config``, in declaration order."""
    return {name: resolve_option(config, plugin, name) for name in plugin.options}


def validate_config(config: Mapping[str, Any], plugins: Mapping[str, Plugin], *, complete: bool) -> None:
    """Raise ConfigError for a key of ``config`` no plugin in ``plugins`` declares, or a bad value.

    ``plugins`` maps data names to the registered plugins. With
    ``complete=False`` a flat key or a data name that none of them knows is
    left alone (its plugin may be registered later); with ``complete=True`` it
    is an error. Values are checked against every plugin's options (type,
    choices, range) in both strengths. The message names the key and the
    closest known name: ``did you mean 'threshold'?``.
    """
    declared: set[str] = set()
    for p in plugins.values():
        declared.update(p.options)
    for key, value in config.items():
        plugin = plugins.get(key)
        if key == TABLE_KEY:
            check_table(value, plugins, complete=complete)
        elif plugin is not None and isinstance(value, dict):
            for opt in value:
                if opt in plugin.renamed_options:
                    raise ConfigError(
                        f"config[{key!r}][{opt!r}]: the option is now {plugin.renamed_options[opt]!r}"
                        f" (config[{TABLE_KEY!r}] is the per-channel settings table)"
                    )
                if opt not in plugin.options:
                    raise ConfigError(_unknown_nested(key, opt, plugin))
        elif key in declared or key in CONTEXT_KEYS:
            continue
        elif plugin is not None:
            raise ConfigError(
                f"config key {key!r} is the data name of plugin {type(plugin).__name__}: "
                f"its value must be a dict of that plugin's options, got {value!r}"
            )
        elif complete:
            raise ConfigError(_unknown_key(key, value, plugins, declared))
    for p in plugins.values():
        resolve_options(config, p)


def _unknown_nested(data_name: str, opt: str, plugin: Plugin) -> str:
    known = sorted(plugin.options)
    return (
        f"config[{data_name!r}] sets option {opt!r}, which plugin {type(plugin).__name__} "
        f"({data_name!r}) does not declare{_did_you_mean(opt, known)} "
        f"(its options: {', '.join(known) or 'none'})"
    )


def _unknown_key(key: str, value: Any, plugins: Mapping[str, Plugin], declared: set[str]) -> str:
    if isinstance(value, dict):  # meant as the options of one plugin: suggest data names first
        hint = _did_you_mean(key, plugins) or _did_you_mean(key, declared | set(CONTEXT_KEYS))
        return (
            f"config key {key!r} holds a dict of options, but no registered plugin provides "
            f"{key!r}{hint} (registered data: {', '.join(sorted(plugins)) or 'none'})"
        )
    hint = _did_you_mean(key, declared | set(CONTEXT_KEYS)) or _did_you_mean(key, plugins)
    return (
        f"config key {key!r} is not an option of any registered plugin, nor a context setting "
        f"({', '.join(CONTEXT_KEYS)}){hint}"
    )


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``candidates`` (empty when none is close)."""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def resolve_data_root(config: dict[str, Any]) -> Path:
    """``config['data_root']`` as an absolute path (relative paths against the current directory)."""
    root = config.get("data_root", DEFAULT_CONFIG["data_root"])
    if not isinstance(root, str | os.PathLike):
        raise ConfigError(f"config 'data_root' must be a path, got {root!r}")
    return Path(os.path.abspath(Path(root).expanduser()))


def check_storage_outside(storage_dir: Path, data_root: Path) -> None:
    """Warn when the cache folder lies inside the raw-data tree.

    The defaults never put it there; a user who does it on purpose is warned,
    not stopped: the adapters only read ``<data_root>/<run>/RAW``.
    """
    s = Path(os.path.abspath(storage_dir))
    d = Path(os.path.abspath(data_root))
    try:
        s = s.resolve()
        d = d.resolve()
    except OSError:
        pass
    if s == d or s.is_relative_to(d):
        from loguru import logger

        logger.warning(
            "storage_dir {} is inside data_root {}; keeping the cache outside the raw-data tree "
            "is safer (a shared or read-only data folder, backups of raw data)",
            s,
            d,
        )
