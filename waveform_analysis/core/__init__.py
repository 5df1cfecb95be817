"""Framework: Context, plugins, options, cache and cancellation."""

from __future__ import annotations

from .cancellation import CancellationToken
from .context import Context
from .explain import Explanation, PlanRow
from .plugin import Option, Plugin
from .storage import CacheStorage

__all__ = [
    "CacheStorage",
    "CancellationToken",
    "Context",
    "Explanation",
    "Option",
    "Plugin",
    "PlanRow",
]
