"""Phase timers for the benchmarks' child processes: wrapped chain functions and numba's loads.

:func:`install` (before the first ``get_data``) wraps the reader, the baseline
phases, saturation, channel noise, hit finding, the staging's puts and
gathers and the cache writes, and numba's ``Dispatcher.compile`` (a
kernel's first call: its load from numba's cache, or a compile when its
signature was not cached). Times add up per
phase, whichever thread ran them; nested phases (the end windows run inside
the reader's callbacks) are inclusive.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any


def install() -> tuple[dict[str, float], dict[str, float], list[str]]:
    """``(phases, kernel_loads, compiled)``, filled as the process runs."""
    import numba.core.dispatcher as nd

    phases: dict[str, float] = defaultdict(float)
    loads: dict[str, float] = {}
    compiled: list[str] = []
    original = nd.Dispatcher.compile

    def compile(self, sig):  # noqa: ANN001 - numba's own signature
        t = time.perf_counter()
        misses = sum(self._cache_misses.values())
        hits = sum(self._cache_hits.values())
        out = original(self, sig)
        key = self.py_func.__module__.rsplit(".", 1)[-1] + "." + self.py_func.__qualname__
        if sum(self._cache_misses.values()) > misses:
            compiled.append(key)
        if sum(self._cache_hits.values()) > hits or key in compiled:
            # the call that loaded it (another thread's first call waits for it, not counted)
            loads[key] = loads.get(key, 0.0) + time.perf_counter() - t
        return out

    nd.Dispatcher.compile = compile

    def timed(owner: Any, name: str, key: str) -> None:
        f = getattr(owner, name)

        def wrap(*a, **k):
            t, c = time.perf_counter(), time.process_time()
            try:
                return f(*a, **k)
            finally:
                phases[key] += time.perf_counter() - t
                phases["cpu:" + key] += time.process_time() - c  # every thread's, meanwhile

        setattr(owner, name, wrap)

    from waveform_analysis.core.storage import entry
    from waveform_analysis.daq import base, staging
    from waveform_analysis.plugins import st_waveforms
    from waveform_analysis.processing import baselines, features, hits, noise

    timed(base, "read_run", "read")
    timed(staging.RecordStaging, "put", "staging_put")  # inside read: rows to memory or the scratch file
    timed(staging.RecordStaging, "gather", "staging_gather")  # rows back in time order, chunk by chunk
    timed(baselines, "end_window_stats", "bl_end_windows")
    timed(baselines, "channel_levels", "bl_levels")
    timed(baselines, "finish_baselines", "bl_finish")
    timed(st_waveforms, "saturated", "saturation")
    timed(hits, "find_peaks", "hits")
    timed(noise, "noise_from", "noise")
    timed(features, "basic_features", "features")
    timed(entry.EntryWriter, "append", "cache_append")
    timed(entry.EntryWriter, "commit", "cache_commit")
    timed(entry, "file_checksum", "checksum")
    timed(entry.os, "fsync", "fsync")
    return phases, loads, compiled
