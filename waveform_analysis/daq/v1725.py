"""CAEN V1725 raw binary reader (DAW firmware).

Layout: ``<data_root>/<run>/RAW/*_b<board>_seg<n>.bin``, little-endian events.
Event header, four 32-bit words (16 bytes):

* word 0: bits 28-31 = ``0xA`` (event marker), bits 0-27 = event size in
  32-bit words including this header;
* word 1: bits 0-7 = channel mask [7:0] (byte 4), bits 8-23 = pattern,
  bits 24-26 reserved, bits 27-31 = board id;
* word 2: bits 0-23 = event counter, bits 24-31 = channel mask [15:8] (byte 11);
* word 3: trigger time tag (low 32 bits of the 4 ns tick counter).

Then, for each channel set in the mask in increasing channel order, a 12-byte
channel header followed by int16 samples:

* bytes 0-3: bits 0-21 = channel block size in 32-bit words including the
  header, bit 30 (bit 6 of byte 3) = truncation flag;
* bytes 4-9: 48-bit timestamp in 4 ns ticks;
* bytes 10-11: 16-bit baseline computed by the firmware (not used here);
* then ``2 * size - 6`` int16 samples.

The reader walks the headers with a numba kernel (validating every size and
mask) and then copies the samples into the sorted output with a second kernel.
The kernels live in :mod:`._v1725_kernels`, imported on the first ``read``, so
that listing files does not import numba.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..dtypes import st_waveforms_dtype
from ..errors import FormatError, NoDataError
from ._threads import n_threads, thread_map
from .base import DAQAdapter, make_file_table, raw_dir

EVENT_MARKER = 0xA
EVENT_HEADER_BYTES = 16
CHANNEL_HEADER_BYTES = 12
TICK_NS = 4

_NAME_RE = re.compile(r"_b(\d+)_seg(\d+)\.bin$", re.IGNORECASE)

ERR_MARKER = 1
ERR_EVENT_SIZE = 2
ERR_CHANNEL_SIZE = 3
ERR_MASK = 4
ERR_TRAILING = 5

_MESSAGES = {
    ERR_MARKER: "bad event header: marker is not 0xA",
    ERR_EVENT_SIZE: "bad event header: event size is too small or runs past the end of the file",
    ERR_CHANNEL_SIZE: "bad channel header: size is too small or runs past the end of the event",
    ERR_MASK: "bad event header: channel mask does not match the event size",
    ERR_TRAILING: "truncated event header at the end of the file",
}

def _kernels():
    """The numba kernels (imported, and loaded from numba's cache, on first use)."""
    from . import _v1725_kernels

    return _v1725_kernels


class V1725Adapter(DAQAdapter):
    """CAEN V1725 raw binary, DAW firmware (see docs/formats.md)."""

    name = "v1725"
    sample_ns = TICK_NS

    def list_files(self, data_root: Path, run_id: str) -> np.ndarray:
        raw = raw_dir(data_root, run_id)
        entries = []
        for p in raw.iterdir():
            m = _NAME_RE.search(p.name)
            if p.is_file() and m:
                entries.append((int(m.group(1)), -1, int(m.group(2)), p))
        return make_file_table(data_root, run_id, raw, entries, "*_b<board>_seg<n>.bin")

    def read(self, data_root: Path, files: np.ndarray, run_id: str) -> np.ndarray:
        data_root = Path(data_root)
        if len(files) == 0:
            raise NoDataError(f"run {run_id!r}: no files to read")
        k = _kernels()
        files = files[np.lexsort((files["segment"], files["channel"], files["board"]))]
        rels = [str(f["path"]) for f in files]

        def scan(rel):
            buf = np.fromfile(data_root / rel, dtype=np.uint8)
            e = np.empty(0, np.int64)
            code, off, count = k._walk(buf, False, e, e, e, e, e)
            if code:
                raise FormatError(
                    f"run {run_id!r}: file {rel}, byte offset {off}: {_MESSAGES[int(code)]}"
                )
            meta = [np.empty(count, np.int64) for _ in range(5)]
            k._walk(buf, True, *meta)
            return buf, meta

        scanned = thread_map(scan, rels)
        counts = [m[0].size for _, m in scanned]
        total = sum(counts)
        if total == 0:
            raise NoDataError(f"run {run_id!r}: the binary files hold no records")
        board = np.concatenate([m[0] for _, m in scanned])
        channel = np.concatenate([m[1] for _, m in scanned])
        ticks = np.concatenate([m[2] for _, m in scanned])
        nsamp = np.concatenate([m[4] for _, m in scanned])
        order = np.lexsort((channel, ticks))
        dest = np.empty(total, np.int64)
        dest[order] = np.arange(total)
        n_samples = int(nsamp.max())
        out = np.empty(total, dtype=st_waveforms_dtype(n_samples))
        out["time"] = ticks[order] * TICK_NS
        out["timestamp"] = ticks[order] * (TICK_NS * 1000)
        out["board"] = board[order]
        out["channel"] = channel[order]
        out["baseline"] = 0.0
        out["dt"] = TICK_NS
        out["length"] = nsamp[order]
        wave = out["wave"]
        if n_samples and nsamp.min() < n_samples:
            wave[...] = 0
        # copy samples: split each file's records across threads
        jobs = []
        start = 0
        per = max(1, total // (2 * n_threads()) + 1)
        for (buf, meta), cnt in zip(scanned, counts, strict=True):
            buf16 = buf[: buf.size - (buf.size & 1)].view(np.int16)
            d = dest[start : start + cnt]
            for lo in range(0, cnt, per):
                jobs.append((buf16, meta[3], meta[4], d, lo, min(cnt, lo + per)))
            start += cnt
        thread_map(lambda j: k._copy_waves(*j, wave), jobs)
        return out
