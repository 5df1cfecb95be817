"""How a task's arguments become a call: a tuple is positional, any Mapping is keywords."""

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
