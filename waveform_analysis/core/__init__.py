"""Framework: Context, plugins, options, cache and cancellation.

``context`` declares (configuration, plugin registry, keys, ``explain``) and
hands the finding and computing of data to ``resolver``; ``plugin`` is the
base class (``provides``, ``depends_on``, ``options``, ``version``,
``dtype``); ``lineage`` makes the cache keys; ``storage/`` is the disk cache
(``npy`` files, ``entry`` writes, ``verify``); ``chunks`` cuts a run into
pieces within a memory budget; ``catalog`` and ``explain`` describe what is
there. ``data/`` is the batch machinery.
"""

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
