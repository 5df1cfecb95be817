"""Plugins and their options: the unit of computation a Context chains together.

A plugin declares what it ``provides``, what it ``depends_on``, its
``options`` and a ``version``, and implements ``compute``. The Context feeds
``compute`` the data of every declared dependency (and nothing else) and
caches the result under a key built from all of the above.
"""

from __future__ import annotations

import functools
import inspect
import numbers
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..errors import ConfigError, PluginError

__all__ = ["Option", "Plugin", "call_compute", "dtype_mismatch"]


def _type_names(types: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in types)


class Option:
    """One configurable parameter of a plugin.

    ``type`` is a type or a tuple of types (``None``: anything). An ``int``
    is accepted where ``float`` is asked (and stored as ``float``, so that
    ``15`` and ``15.0`` give the same cache key). ``choices`` restricts the
    value to a fixed set; ``minimum`` / ``maximum`` bound a number (inclusive;
    ``None`` is left alone, for options that allow it). Options with ``track=False`` do not enter the
    cache key (use it only for settings that cannot change the result, such
    as a number of threads). ``per_channel=True`` lets the config's ``channels``
    table set the option per (board, channel) (:mod:`waveform_analysis.core.channels`);
    the plugin then reads one value per record with
    :func:`~waveform_analysis.core.channels.per_record`.
    """

    __slots__ = ("default", "type", "help", "track", "choices", "minimum", "maximum", "per_channel")

    def __init__(
        self,
        default: Any = None,
        type: type | tuple[type, ...] | None = None,  # noqa: A002 - mirrors the contract
        help: str = "",  # noqa: A002
        track: bool = True,
        choices: tuple[Any, ...] | list[Any] | None = None,
        minimum: float | None = None,
        maximum: float | None = None,
        per_channel: bool = False,
    ) -> None:
        self.default = default
        self.type = type
        self.help = help
        self.track = track
        self.choices = tuple(choices) if choices is not None else None
        self.minimum = minimum
        self.maximum = maximum
        self.per_channel = bool(per_channel)

    @property
    def types(self) -> tuple[type, ...] | None:
        """The accepted types as a tuple (``None``: any type)."""
        if self.type is None:
            return None
        return self.type if isinstance(self.type, tuple) else (self.type,)

    def coerce(self, value: Any, *, plugin: str, name: str) -> Any:
        """``value`` checked against ``type``, ``choices`` and the range (ConfigError otherwise)."""
        types = self.types
        if types is not None:
            value = _coerce(value, types, plugin=plugin, name=name)
        if self.choices is not None and value not in self.choices:
            raise ConfigError(
                f"plugin {plugin!r}, option {name!r}: value {value!r} is not one of "
                f"{list(self.choices)!r}"
            )
        if value is not None and (self.minimum is not None or self.maximum is not None):
            self._check_range(value, plugin=plugin, name=name)
        return value

    def _check_range(self, value: Any, *, plugin: str, name: str) -> None:
        where = f"plugin {plugin!r}, option {name!r}: value {value!r}"
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise ConfigError(f"{where} is not a number, and the option has a range ({self._range()})")
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            raise ConfigError(f"{where} is out of the option's range ({self._range()})")

    def _range(self) -> str:
        lo = "" if self.minimum is None else f"{self.minimum!r} <= "
        hi = "" if self.maximum is None else f" <= {self.maximum!r}"
        return f"{lo}value{hi}"

    def check_definition(self, *, plugin: str, name: str) -> None:
        """Raise ConfigError when this option is ill-defined (bad type, default of the wrong type)."""
        types = self.types
        if types is not None and not all(isinstance(t, type) for t in types):
            raise ConfigError(
                f"plugin {plugin!r}, option {name!r}: type must be a type or a tuple of types, "
                f"got {self.type!r}"
            )
        for bound in (self.minimum, self.maximum):
            if bound is not None and (not isinstance(bound, numbers.Real) or isinstance(bound, bool)):
                raise ConfigError(
                    f"plugin {plugin!r}, option {name!r}: minimum and maximum must be numbers, "
                    f"got {bound!r}"
                )
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ConfigError(
                f"plugin {plugin!r}, option {name!r}: minimum {self.minimum!r} is above "
                f"maximum {self.maximum!r}"
            )
        try:
            self.coerce(self.default, plugin=plugin, name=name)
        except ConfigError as exc:
            raise ConfigError(f"{exc} (the option's own default)") from None

    def __repr__(self) -> str:
        t = _type_names(self.types) if self.types else "any"
        extra = f", range {self._range()}" if self.minimum is not None or self.maximum is not None else ""
        return f"Option(default={self.default!r}, type={t}, track={self.track}{extra})"


def _coerce(value: Any, types: tuple[type, ...], *, plugin: str, name: str) -> Any:
    if isinstance(value, types) and not (isinstance(value, bool) and bool not in types):
        return value
    if not isinstance(value, bool):
        if int in types and isinstance(value, numbers.Integral):
            return int(value)
        if float in types and isinstance(value, numbers.Real):
            try:
                return float(value)
            except OverflowError:
                pass
    raise ConfigError(
        f"plugin {plugin!r}, option {name!r}: value {value!r} ({type(value).__name__}) "
        f"is not of the expected type {_type_names(types)}"
    )


class Plugin:
    """Base class of every plugin.

    Subclasses set the class attributes below and implement :meth:`compute`,
    which receives each dependency's data as a keyword argument named after
    it and returns a numpy array (structured or plain). A plugin with
    ``save_to_cache = False`` is recomputed when needed (it is kept in memory
    only) and may return any object.
    """

    provides: str = ""
    depends_on: tuple[str, ...] = ()
    options: dict[str, Option] = {}
    #: Former option names -> their new names: setting an old name is a ConfigError saying so.
    renamed_options: dict[str, str] = {}
    version: str = "0.0.0"
    save_to_cache: bool = True
    #: Whether ``compute`` gives the right answer on any range of records of the
    #: first dependency (see :mod:`waveform_analysis.core.chunks`): then a run is fed
    #: to it a memory budget at a time, and a ``record_i`` field of its result is
    #: shifted to count from the run's first record. Off by default: ``compute``
    #: sees the whole run, as a plugin written without chunks expects.
    chunked: bool = False
    #: The layout of this plugin's data (None: known only from the data). Every
    #: piece is checked against it (:func:`dtype_mismatch`), and ``data_info``
    #: shows it without computing anything. A field with a shape per record
    #: (``wave``) may differ in length from run to run.
    dtype: np.dtype | None = None

    def fingerprint(self, context: Any, run_id: str) -> str:
        """Extra key material (e.g. a digest of the input files); empty by default."""
        return ""

    def run_inputs(self, context: Any, run_id: str) -> tuple[str, ...]:
        """Data this plugin also reads for ``run_id`` beyond ``depends_on`` (none by default):
        an input only some runs have, such as charges from waveforms a list-mode run lacks.
        ``get_data`` allows them and their keys enter this plugin's key; they must not
        depend on this plugin."""
        return ()

    def compute(self, context: Any, run_id: str, **inputs: Any) -> Any:
        """Compute this plugin's data for ``run_id``; each dependency arrives under its own name.

        Return a numpy array (structured or plain) unless ``save_to_cache`` is
        False; read options with ``context.get_config(self, name)``.
        """
        raise NotImplementedError(f"{type(self).__name__}.compute is not implemented")

    def compute_chunks(self, context: Any, run_id: str, chunks: Any) -> Iterator[Any]:
        """Yield this plugin's data for ``run_id`` as consecutive pieces (rows, in order).

        The Context calls this and appends the pieces to the cache entry, so
        no piece needs to outlive the next. ``chunks`` is a
        :class:`~waveform_analysis.core.chunks.RunChunks`: one chunk with the
        whole inputs unless ``chunked`` is set. The default calls
        :meth:`compute` per chunk; override it to carry state from chunk to
        chunk (``events``: an event open at a chunk's end) or to produce a
        large result from a small input in pieces (``st_waveforms``).
        """
        return self.each_chunk(chunks, lambda chunk: call_compute(self, context, run_id, chunk.inputs))

    def each_chunk(self, chunks: Any, compute: Callable[[Any], Any]) -> Iterator[Any]:
        """``compute(chunk)`` for each chunk, a ``record_i`` field shifted to count from
        the run's first record: the chunk loop of :meth:`compute_chunks`, for an
        override that prepares something over the whole run first (``peaks``: the
        channels' noise) and then computes chunk by chunk."""
        for chunk in chunks:
            out = compute(chunk)
            if chunk.start and isinstance(out, np.ndarray) and out.dtype.names and "record_i" in out.dtype.names:
                if not out.flags.writeable:
                    out = out.copy()
                out["record_i"] += chunk.start
            yield out

    def __repr__(self) -> str:
        return f"<{type(self).__name__} provides={self.provides!r} version={self.version!r}>"


def dtype_mismatch(declared: np.dtype, actual: np.dtype) -> str | None:
    """Why data of dtype ``actual`` does not have the layout ``declared`` (None: it does).

    Fields must match by name, order and base type; the length of a per-record
    shape may differ (the samples of a record), its number of axes may not."""
    declared, actual = np.dtype(declared), np.dtype(actual)
    if declared.names is None or actual.names is None:
        return None if declared == actual else f"dtype {actual}, declared {declared}"
    if declared.names != actual.names:
        return f"fields {actual.names}, declared {declared.names}"
    for name in declared.names:
        want, got = declared.fields[name][0], actual.fields[name][0]
        if want.base != got.base or len(want.shape) != len(got.shape):
            return f"field {name!r} of type {got}, declared {want}"
    return None


def call_compute(plugin: Plugin, context: Any, run_id: str, inputs: dict[str, Any]) -> Any:
    """``plugin.compute(context, run_id, **inputs)``, passing only the inputs its signature names.

    A plugin that reads a declared dependency through ``context.get_data``
    instead of a parameter need not list it in its signature.
    """
    compute = plugin.compute
    names = _parameters(getattr(compute, "__func__", compute))
    if names is not None:
        inputs = {k: v for k, v in inputs.items() if k in names}
    return compute(context, run_id, **inputs)


@functools.lru_cache(maxsize=256)
def _parameters(func: Any) -> frozenset[str] | None:
    """Keyword names ``func`` accepts, or None when it takes ``**kwargs``."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return frozenset(p.name for p in params)


def as_plugin(obj: Any) -> Plugin:
    """An instance from a Plugin instance or class; PluginError for anything else."""
    if isinstance(obj, type) and issubclass(obj, Plugin):
        try:
            return obj()
        except TypeError as exc:
            raise PluginError(
                f"cannot instantiate plugin class {obj.__name__} without arguments ({exc}); "
                "register an instance instead"
            ) from None
    if isinstance(obj, Plugin):
        return obj
    raise PluginError(f"expected a Plugin subclass or instance, got {obj!r}")


def validate_plugin(plugin: Plugin) -> None:
    """Check the declarations of ``plugin``; normalise ``depends_on`` to a tuple on the instance."""
    cls = type(plugin).__name__
    provides = plugin.provides
    if not isinstance(provides, str) or not provides:
        raise PluginError(f"plugin {cls} must set 'provides' to a non-empty string")
    deps = plugin.depends_on
    if isinstance(deps, str):
        deps = (deps,)
    try:
        deps = tuple(deps)
    except TypeError:
        raise PluginError(
            f"plugin {cls} ({provides!r}): depends_on must be a tuple of data names, got {deps!r}"
        ) from None
    if not all(isinstance(d, str) and d for d in deps):
        raise PluginError(
            f"plugin {cls} ({provides!r}): depends_on must hold non-empty strings, got {deps!r}"
        )
    if len(set(deps)) != len(deps):
        raise PluginError(f"plugin {cls} ({provides!r}): depends_on lists a name twice: {deps!r}")
    if deps != plugin.depends_on:
        plugin.depends_on = deps
    version = plugin.version
    if isinstance(version, int | float) and not isinstance(version, bool):
        plugin.version = str(version)  # a numeric version is read as its text
    elif not isinstance(version, str) or not version:
        raise PluginError(f"plugin {cls} ({provides!r}): version must be a non-empty string")
    options = plugin.options
    if not isinstance(options, dict):
        raise ConfigError(f"plugin {cls} ({provides!r}): options must be a dict of Option")
    for name, opt in options.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ConfigError(f"plugin {provides!r}: option name {name!r} is not an identifier")
        if not isinstance(opt, Option):
            raise ConfigError(
                f"plugin {provides!r}, option {name!r}: expected an Option, got {opt!r}"
            )
        opt.check_definition(plugin=provides, name=name)
