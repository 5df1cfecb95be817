"""A task: how its arguments become a call, and its key in dedup sets and result dicts.

A tuple is positional arguments and any Mapping keywords (:func:`invoke`); list,
dict and set tasks are keyed by a hashable stand-in (:func:`make_hashable`), and
a task that cannot be made hashable by its identity (:class:`UnhashableKey`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def invoke(func: Callable[..., Any], args: Any) -> Any:
    """Call ``func`` with ``args``: ``func(**args)`` for a Mapping, else ``func(*args)``."""
    if type(args) is tuple:  # the common case first: no ABC check
        return func(*args)
    if isinstance(args, Mapping):
        return func(**args)
    return func(*args)


def unpack(task: Any) -> Any:
    """The call arguments of ``task`` when a manager unpacks tasks: a Mapping as is, else a tuple."""
    if type(task) is tuple or isinstance(task, Mapping):
        return task
    return tuple(task)


def make_hashable(value: Any) -> Any:
    """A hashable stand-in for ``value``: lists/tuples become tuples, dicts tuples of items,
    sets frozensets, recursively. Hashable values come back unchanged."""
    try:
        hash(value)
        return value
    except TypeError:
        pass
    if isinstance(value, dict):
        items = [(make_hashable(k), make_hashable(v)) for k, v in value.items()]
        try:
            items.sort()
        except TypeError:  # keys of mixed types keep insertion order
            pass
        return tuple(items)
    if isinstance(value, (list, tuple)):
        return tuple(make_hashable(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(make_hashable(v) for v in value)
    if hasattr(value, "tobytes") and hasattr(value, "shape"):  # numpy arrays
        return (type(value).__name__, value.shape, str(getattr(value, "dtype", "")), value.tobytes())
    raise TypeError(f"task of type {type(value).__name__} cannot be made hashable: {value!r:.80}")


class UnhashableKey:
    """Key of a result or error dict for a task that cannot be made hashable (compared by identity)."""

    __slots__ = ("task",)

    def __init__(self, task: Any) -> None:
        self.task = task

    def __repr__(self) -> str:
        return f"UnhashableKey({self.task!r:.60})"


def store(target: dict[Any, Any], task: Any, value: Any) -> None:
    """``target[task] = value`` with a hashable stand-in for list/dict tasks."""
    try:
        target[task] = value
    except TypeError:
        try:
            target[make_hashable(task)] = value
        except TypeError:
            target[UnhashableKey(task)] = value


def check_picklable(obj: Any, what: str, hint: str = "define it at module level") -> None:
    """Raise :class:`~celestialflow.errors.NotPicklableError` when ``obj`` cannot be pickled.

    The one check for everything bound for another process: the message names
    ``what`` is sent, the part of it that fails (an attribute, a closure variable,
    an item) when one can be found, the pickling error, and ``hint``."""
    import pickle

    from .errors import NotPicklableError

    try:
        pickle.dumps(obj)
    except Exception as exc:
        part = _unpicklable_part(obj)
        where = f" ({part} does not pickle)" if part else ""
        raise NotPicklableError(
            f"{what} cannot be pickled{where}: {type(exc).__name__}: {exc}; {hint}"
        ) from exc


def _unpicklable_part(obj: Any) -> str | None:
    """The first attribute, closure variable or item of ``obj`` that does not pickle (one level)."""
    import pickle

    parts: list[tuple[str, Any]] = []
    if getattr(obj, "__closure__", None):
        names = obj.__code__.co_freevars
        parts += [(f"closure variable {n!r}", c.cell_contents) for n, c in zip(names, obj.__closure__)
                  if _has_contents(c)]
    if isinstance(obj, (list, tuple)):
        parts += [(f"item {i}", v) for i, v in enumerate(obj)]
    elif isinstance(obj, dict):
        parts += [(f"key {k!r}", v) for k, v in obj.items()]
    elif hasattr(obj, "__dict__") and not callable(getattr(obj, "__code__", None)):
        parts += [(f"attribute {k!r}", v) for k, v in vars(obj).items()]
    for label, value in parts:
        try:
            pickle.dumps(value)
        except Exception:
            name = getattr(value, "__qualname__", None) or type(value).__name__
            return f"{label}, a {name}" if name != label else label
    return None


def _has_contents(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def unhashable_error(task: Any) -> TypeError:
    """The error of a task that the duplicate check cannot key."""
    return TypeError(
        f"task of type {type(task).__name__} cannot be made hashable for the duplicate "
        f"check; pass enable_duplicate_check=False to run such tasks"
    )


def admit(batch: list[Any], seen: set[Any]) -> tuple[list[Any], int, list[Any]]:
    """Dedup: the tasks of ``batch`` not in ``seen`` (added to it), how many were duplicates,
    and the tasks that cannot be made hashable (neither admitted nor counted)."""
    try:  # the common case in C: all hashable, none seen, no repeats within the batch
        keys = set(batch)
    except TypeError:
        pass
    else:
        if len(keys) == len(batch) and seen.isdisjoint(keys):
            seen |= keys
            return batch, 0, []
    fresh: list[Any] = []
    unhashable: list[Any] = []
    for task in batch:
        try:
            if task in seen:
                continue
            seen.add(task)
        except TypeError:
            try:
                key = make_hashable(task)
            except TypeError:
                unhashable.append(task)
                continue
            if key in seen:
                continue
            seen.add(key)
        fresh.append(task)
    return fresh, len(batch) - len(fresh) - len(unhashable), unhashable
