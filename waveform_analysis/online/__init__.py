"""Online processing: a DAQ folder processed while the digitizer is still writing it.

:class:`Watcher` (also ``Context.watch`` and ``waveform-analysis watch``) processes each
run once it is complete and, with ``segments=True``, each closed segment of a run still
being written, so spectra and rates grow while the data are taken. The modules:
:mod:`.folder` (what the folder holds: runs, closed segments, finished runs),
:mod:`.segments` (a run's results as per-segment cache entries), :mod:`.events`
(inotify through ``watchdog``, else polling), :mod:`.state` (the table of runs),
:mod:`.watcher` (the loop) and :mod:`.live_view` (the live page's panels). See docs/online.md.
"""

from __future__ import annotations

from .live_view import open_watch_dashboard, watch_panels
from .segments import SegmentFilesPlugin, join_segments, segment_context
from .state import RunStatus
from .watcher import Watcher

__all__ = ["RunStatus", "SegmentFilesPlugin", "Watcher", "join_segments", "open_watch_dashboard", "segment_context",
           "watch_panels"]
