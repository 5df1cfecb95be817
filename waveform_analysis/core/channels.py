"""Per-channel settings: the ``channels`` table of the config and its resolution.

``config["channels"]`` maps ``"board:channel"`` (a bare ``4`` is board 0) or
``"default"`` to a dict of options that some plugin declares with
``Option(per_channel=True)``. An option resolves for one channel, in this
order, to: the channel's entry, the ``default`` entry, the plugin-level value
(``config[data_name][opt]`` or ``config[opt]``), the run's settings (where
the option has a counterpart in :class:`~waveform_analysis.daq.base.RunInfo`:
the channel's board's, on a run of several boards),
the option's default (the sample period ``dt_ns`` takes the run's settings and
board model before the plugin-level value, which is for runs that state none:
:data:`RUN_FIRST`). :func:`resolve_channel` is that rule;
:func:`per_record` applies it once per distinct (board, channel) of an array
and spreads the values over its rows, so kernels take one value per record.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError
from .plugin import Plugin

__all__ = [
    "DEFAULT_ENTRY",
    "TABLE_KEY",
    "ChannelWarning",
    "channel_groups",
    "channel_name",
    "channel_offsets",
    "channel_settings",
    "check_table",
    "lineage_options",
    "offset_bound",
    "parse_channel_key",
    "per_record",
    "resolve_channel",
    "table_of",
    "table_sets",
    "warn_absent",
]

TABLE_KEY = "channels"
DEFAULT_ENTRY = "default"

#: Options whose value, when nothing in the config sets it, comes from the run's settings:
#: option -> (RunInfo field, key inside that field or None).
RUN_SETTINGS: dict[str, tuple[str, str | None]] = {
    "calibration": ("calibration", None),
    "dt_ns": ("dt_ns", None),
    "gate_long_ns": ("gates", "gate_ns"),
    "gate_short_ns": ("gates", "short_gate_ns"),
    "polarity": ("polarity", None),
    "pre_gate_ns": ("gates", "pregate_ns"),
    "threshold": ("threshold", None),
}


#: Options whose plugin-level value only stands in for a run whose settings do not give one.
RUN_FIRST = frozenset({"dt_ns"})


class ChannelWarning(UserWarning):
    """The ``channels`` table names a channel the run does not have."""


def parse_channel_key(key: str | int) -> tuple[int, int]:
    """``(board, channel)`` of a table key: ``"board:channel"`` or a bare channel of board 0."""
    from ..processing.coincidences import parse_channel

    return parse_channel(key, TABLE_KEY)


def channel_name(board: int, channel: int) -> str:
    """The table key of (board, channel): ``"0:4"``."""
    return f"{int(board)}:{int(channel)}"


def table_sets(config: Mapping[str, Any], name: str) -> bool:
    """Whether any entry of the ``channels`` table sets option ``name``."""
    return any(name in (e or {}) for e in (config.get(TABLE_KEY) or {}).values())


def table_of(config: Mapping[str, Any]) -> dict[Any, dict[str, Any]]:
    """``{(board, channel) or "default": {option: value}}`` from the config (empty without one)."""
    raw = config.get(TABLE_KEY)
    if not raw:
        return {}
    out: dict[Any, dict[str, Any]] = {}
    for key, entry in raw.items():
        out[DEFAULT_ENTRY if key == DEFAULT_ENTRY else parse_channel_key(key)] = entry
    return out


def check_table(value: Any, plugins: Mapping[str, Plugin], *, complete: bool = True) -> None:
    """Raise ConfigError unless ``value`` is a table of per-channel options of ``plugins``.

    An option that a registered plugin declares but not per-channel is an error
    naming the channel key and the option; one that no registered plugin
    declares is an error too when ``complete`` (see
    :func:`~waveform_analysis.core.config.validate_config`).
    """
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"config key {TABLE_KEY!r} is the per-channel settings table, "
            f"{{'default': {{...}}, '0:4': {{...}}}}, got {value!r} (the partner channels of "
            "'coincidences' are its option 'partners')"
        )
    per_channel = {n: p for p in plugins.values() for n, o in p.options.items() if o.per_channel}
    declared = {n for p in plugins.values() for n in p.options}
    for key, entry in value.items():
        if key != DEFAULT_ENTRY:
            parse_channel_key(key)
        if not isinstance(entry, Mapping):
            raise ConfigError(f"config['channels'][{key!r}] must be a dict of options, got {entry!r}")
        for name, v in entry.items():
            if name in per_channel:
                opt = per_channel[name].options[name]
                opt.coerce(v, plugin=per_channel[name].provides, name=f"{name} (channels[{key!r}])")
            elif name in declared:
                raise ConfigError(
                    f"config['channels'][{key!r}] sets {name!r}, which is not a per-channel option "
                    f"(per-channel: {', '.join(sorted(per_channel)) or 'none'}); set it for all "
                    "channels at the top level of the config"
                )
            elif complete:
                raise ConfigError(
                    f"config['channels'][{key!r}] sets {name!r}, which no registered plugin declares "
                    f"(per-channel options: {', '.join(sorted(per_channel)) or 'none'})"
                )


def _plugin_level(config: Mapping[str, Any], plugin: Plugin, name: str) -> tuple[bool, Any]:
    per_plugin = config.get(plugin.provides)
    if isinstance(per_plugin, Mapping) and name in per_plugin:
        return True, per_plugin[name]
    if name in config:
        return True, config[name]
    return False, None


def _run_setting(info: Any, name: str, board: int, channel: int) -> Any:
    where = RUN_SETTINGS.get(name)
    if where is None or info is None:
        return None
    field, key = where
    value = (info.value(field, channel, board) if hasattr(info, "value")
             else getattr(info, field, None))
    if key is not None:
        value = (value or {}).get(key)
    return value


def resolve_channel(
    config: Mapping[str, Any], plugin: Plugin, name: str, board: int, channel: int, info: Any = None
) -> tuple[Any, str]:
    """``(value, where it came from)`` of option ``name`` of ``plugin`` for one channel.

    The one resolution rule of per-channel options (see the module). ``info``
    is the run's RunInfo (None: the run's settings are not consulted).
    """
    opt = plugin.options[name]
    value: Any = None
    source = ""
    table = table_of(config) if opt.per_channel else {}
    for entry, label in (((int(board), int(channel)), f"channels['{board}:{channel}']"),
                         (DEFAULT_ENTRY, "channels['default']")):
        if name in table.get(entry, {}):
            value, source = table[entry][name], label
            break
    if not source:
        found, v = _plugin_level(config, plugin, name)
        level = (v, "config") if found and v is not None else None
        run_value = _run_setting(info, name, board, channel)
        run = (run_value, "run settings") if run_value is not None else None
        first, second = (run, level) if name in RUN_FIRST else (level, run)
        value, source = first or second or (opt.default, "default")
    return opt.coerce(value, plugin=plugin.provides, name=name), source


def channel_groups(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(keys, inverse)``: the distinct ``board << 16 | channel`` of the rows of ``data``
    (sorted) and each row's index into them, as ``np.unique(..., return_inverse=True)``.

    A chunk holds a few channels: counting them over the keys' span replaces
    numpy's sort of every row (4 ms per call for 150k rows, several calls a chunk)."""
    from ..processing.rows import (
        record_channel_keys,  # one pass over the records, on the kernel threads
    )

    n = len(data)
    key = record_channel_keys(data)
    if n == 0:
        return key, np.zeros(0, np.intp)
    lo, hi = int(key.min()), int(key.max())
    if hi - lo >= 1 << 16:  # boards far apart: numpy's sort
        return np.unique(key, return_inverse=True)
    uniq = np.flatnonzero(np.bincount(key - lo, minlength=hi - lo + 1)) + lo
    index = np.zeros(hi - lo + 1, np.intp)
    index[uniq - lo] = np.arange(len(uniq))
    return uniq, index[key - lo]


def per_record(
    context: Any, plugin: Plugin, name: str, run_id: str, data: np.ndarray, info: Any = None,
    missing: Any = None, groups: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray | None:
    """Option ``name`` for every row of ``data`` (which has ``channel``, maybe ``board``).

    Resolved once per distinct (board, channel) with :func:`resolve_channel`
    and spread over the rows with one fancy index. A scalar option gives a 1-D
    array; a list option (``calibration``) a 2-D float array, one row per
    record, ``None`` values as ``[0, 1]`` (the identity), and ``None`` when
    every channel's value is ``None``. ``info``: the run's RunInfo, when the
    caller has it (else read here for the options the run's settings give);
    ``missing``: the value of a channel whose option resolves to ``None``;
    ``groups``: :func:`channel_groups` of ``data``, when the caller has them.
    """
    from ..daq.runs import run_info_for

    uniq, inverse = groups if groups is not None else channel_groups(data)
    if info is None and name in RUN_SETTINGS:
        info = run_info_for(context, run_id)[1]
    values = [resolve_channel(context.config, plugin, name, int(k >> 16), int(k & 0xFFFF), info)[0]
              for k in uniq]
    values = [missing if v is None else v for v in values]
    if any(isinstance(v, list | tuple) for v in values):
        width = max(2, *(len(v) for v in values if v is not None))
        rows = np.zeros((len(values), width))
        for i, v in enumerate(values):
            if v is None:
                rows[i, 1] = 1.0
            else:
                rows[i, : len(v)] = v
        return rows[inverse]
    if all(v is None for v in values) and values:
        return None
    return np.asarray(values)[inverse] if values else np.zeros(0, object)


def channel_settings(
    context: Any, plugin: Plugin, run_id: str, data: np.ndarray, settings: Mapping[str, Any],
    info: Any = None, missing: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``settings`` (a plugin's options by name) with each per-channel option as
    :func:`per_record` values for the rows of ``data``: the call a plugin makes per chunk
    (``info``: the run's RunInfo, read once here when an option needs it and it is None;
    ``missing``: per option, the value of channels where it resolves to None)."""
    out = dict(settings)
    names = [n for n in settings if n in plugin.options and plugin.options[n].per_channel]
    if info is None and any(n in RUN_SETTINGS for n in names):
        from ..daq.runs import run_info_for

        info = run_info_for(context, run_id)[1]
    groups = channel_groups(data) if names else None  # once for all the options
    for name in names:
        out[name] = per_record(context, plugin, name, run_id, data, info, (missing or {}).get(name), groups)
    return out


def channel_offsets(context: Any, plugin: Plugin, run_id: str, data: np.ndarray,
                    name: str = "time_offset_ns") -> dict[str, float]:
    """``{"board:channel": ns}`` of every channel of ``data`` for an offset option.

    The option's plugin-level value may be a number (every channel) or, as
    before the table, a dict ``{"board:channel": ns}`` (a bare channel is
    board 0; channels it leaves out: 0); the table's entries come first, as
    for any per-channel option (:func:`resolve_channel`). Channels offset by 0 are left out."""
    names = data.dtype.names or ()
    board = np.asarray(data["board"], np.int64) if "board" in names else np.zeros(len(data), np.int64)
    keys = np.unique((board << 16) | (np.asarray(data["channel"], np.int64) & 0xFFFF))
    out = {}
    for k in keys.tolist():
        b, c = k >> 16, k & 0xFFFF
        value = resolve_channel(context.config, plugin, name, b, c)[0]
        if isinstance(value, Mapping):
            value = {parse_channel_key(key): v for key, v in value.items()}.get((b, c), 0.0)
        if float(value):
            out[channel_name(b, c)] = float(value)
    return out


def offset_bound(config: Mapping[str, Any], plugin: Plugin, name: str = "time_offset_ns") -> float:
    """The most negative offset any channel can get from ``name`` (0 at most): the table's
    entries and the plugin-level value, whichever channels a run has."""
    values = [e[name] for e in (config.get(TABLE_KEY) or {}).values() if name in e]
    found, level = _plugin_level(config, plugin, name)
    level = level if found and level is not None else plugin.options[name].default
    values += list(level.values()) if isinstance(level, Mapping) else [level]
    return min([0.0, *(float(v) for v in values)])


def lineage_options(config: Mapping[str, Any], plugin: Plugin, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` (the plugin's resolved options) with its per-channel options' table entries.

    Only options the table sets change: a plugin none of whose per-channel
    options is in the table keeps its key, and a change to one channel's
    ``threshold`` changes the keys of the plugins declaring ``threshold`` per
    channel (and so of everything downstream), nothing else.
    """
    raw = config.get(TABLE_KEY)
    if not raw:
        return options
    out = dict(options)
    for name, opt in plugin.options.items():
        if not opt.per_channel:
            continue
        entries = {str(k): e[name] for k, e in raw.items() if name in e}
        if entries:
            out[name] = {"value": options[name], "channels": entries}
    return out


def warn_absent(config: Mapping[str, Any], run_id: str, board: np.ndarray, channel: np.ndarray) -> None:
    """Warn (:class:`ChannelWarning`) for each table key naming a channel absent from the run."""
    table = table_of(config)
    if not table:
        return
    keys = np.unique((np.asarray(board, np.int64) << 16) | (np.asarray(channel, np.int64) & 0xFFFF))
    present = {(int(k >> 16), int(k & 0xFFFF)) for k in keys}
    for entry in table:
        if entry != DEFAULT_ENTRY and entry not in present:
            warnings.warn(
                f"config['channels'] sets channel {channel_name(*entry)!r}, which run {run_id!r} "
                f"does not have (its channels: {', '.join(channel_name(*c) for c in sorted(present))})",
                ChannelWarning,
                stacklevel=2,
            )
