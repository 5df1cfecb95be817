"""A run's results made of per-segment cache entries, while the run is being taken.

Segment *k* of run *R* is computed by a copy of the Context whose ``raw_files`` lists
only the files of segment *k* (:class:`SegmentFilesPlugin`, option ``segment``). The
files' fingerprint differs per segment, so each segment's ``st_waveforms`` and target
are ordinary cache entries of run *R* under their own keys: computed once, found again
after a restart, never touched when segment *k+1* arrives. The run's live result is the
concatenation of its segments' entries in segment order (:func:`join_segments`).

Those entries are a preview. Channel noise, baseline re-judgement and time order are
run-wide in the standard chain, so when the run is complete the watcher computes the
run as a whole, the entry a batch over the finished folder makes, and the live view
switches to it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.plugin import Option
from ..plugins.raw_files import RawFilesPlugin
from .folder import segment_files

__all__ = ["SegmentFilesPlugin", "join_segments", "segment_context"]


class SegmentFilesPlugin(RawFilesPlugin):
    """``raw_files`` of one segment of a run (CSV segments past the first borrow their
    channel's header from the first: see :func:`~waveform_analysis.online.folder.segment_files`)."""

    options = {
        **RawFilesPlugin.options,
        "segment": Option(default=0, type=int, minimum=0, help="The segment whose files are listed"),
    }

    def listing(self, context, run_id: str, adapter: Any = None) -> np.ndarray:
        files = super().listing(context, run_id, adapter)
        return segment_files(context.data_root, files, context.get_config(self, "segment"))


def segment_context(context: Any, segment: int) -> Any:
    """A copy of ``context`` that computes segment ``segment`` of any run (same cache)."""
    seg = context.clone()
    seg.register(SegmentFilesPlugin(), replace=True)
    seg.set_config({"raw_files": {"segment": int(segment)}})
    return seg


def join_segments(parts: list[np.ndarray], records: list[int]) -> np.ndarray:
    """Per-segment arrays as one, in segment order; ``record_i`` shifted by the records
    of the segments before (``records[i]``: records of segment ``i``)."""
    if not parts:
        return np.zeros(0)
    out = np.concatenate(parts)
    names = out.dtype.names or ()
    if "record_i" in names:
        shift = np.repeat(np.cumsum([0, *records[:-1]]), [len(p) for p in parts])
        out["record_i"] += shift.astype(out["record_i"].dtype)
    return out
