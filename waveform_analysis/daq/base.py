"""The adapter interface: one subclass per digitizer file format."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any

import numpy as np

from ..dtypes import RAW_FILES_DTYPE
from ..errors import NoDataError, RunNotFoundError


class DAQAdapter(abc.ABC):
    """Reads one digitizer format into the standard records.

    Subclasses set ``name`` (the ``daq_adapter`` config value) and
    ``sample_ns`` and implement :meth:`list_files` and :meth:`read`.
    Register an instance with :func:`waveform_analysis.daq.register_adapter`.
    """

    name: str = ""
    sample_ns: int = 1

    @abc.abstractmethod
    def list_files(self, data_root: Path, run_id: str) -> np.ndarray:
        """Files of ``run_id`` as ``RAW_FILES_DTYPE``, ordered by (board, channel, segment).

        ``path`` is relative to ``data_root`` (posix). Raises
        :class:`RunNotFoundError` when the run or its RAW folder is missing and
        :class:`NoDataError` when RAW holds no matching file. An adapter that
        reads several folders takes a ``folder`` keyword (the ``daq_folder``
        option, ``"raw"`` by default).
        """

    @abc.abstractmethod
    def read(self, data_root: Path, files: np.ndarray, run_id: str) -> np.ndarray:
        """All records of ``files`` as ``st_waveforms_dtype(n)``, sorted by time then channel.

        Every field is filled except ``baseline`` (0.0) and ``saturated``
        (False), which the ``st_waveforms`` plugin computes; ``flags`` is 0
        where the format has none. An adapter that implements
        :meth:`read_into` implements this as ``read_sorted(self, ...)``.
        """

    def read_into(self, data_root: Path, files: np.ndarray, run_id: str, sink: Any) -> None:
        """Put the records of ``files`` into ``sink`` block by block, in any order.

        ``sink`` is a :class:`~waveform_analysis.daq.staging.RecordStaging`:
        call ``sink.begin(n_rows, dtype)`` once, then ``sink.put(row0, records)``
        for disjoint row ranges (from any thread; rows never put are dropped).
        Fields are filled as for :meth:`read`; the sink sorts by time. This is
        what lets ``st_waveforms`` read a run larger than memory. The default
        reads the whole run with :meth:`read` and puts it at once.
        """
        records = self.read(data_root, files, run_id)
        sink.begin(len(records), records.dtype)
        sink.put(0, records)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} sample_ns={self.sample_ns}>"


def raw_dir(data_root: Path | str, run_id: str) -> Path:
    """``<data_root>/<run_id>/RAW``, or :class:`RunNotFoundError` naming what is missing."""
    run_dir = Path(data_root) / str(run_id)
    if not run_dir.is_dir():
        raise RunNotFoundError(f"run {run_id!r}: run folder {run_dir} does not exist")
    raw = run_dir / "RAW"
    if not raw.is_dir():
        raise RunNotFoundError(f"run {run_id!r}: RAW folder {raw} does not exist")
    return raw


def make_file_table(
    data_root: Path | str,
    run_id: str,
    raw: Path,
    entries: list[tuple[int, int, int, Path]],
    pattern: str,
) -> np.ndarray:
    """Build the sorted ``RAW_FILES_DTYPE`` table from (board, channel, segment, path).

    ``size`` is -1 (read each file to its end): the ``raw_files`` plugin records the
    sizes it fingerprints, so that the readers stop where the cache key says."""
    if not entries:
        raise NoDataError(f"run {run_id!r}: no files matching {pattern} in {raw}")
    entries = sorted(entries, key=lambda e: (e[0], e[1], e[2], e[3].name))
    out = np.zeros(len(entries), dtype=RAW_FILES_DTYPE)
    root = Path(data_root)
    for i, (board, channel, segment, path) in enumerate(entries):
        out[i] = (channel, board, segment, path.relative_to(root).as_posix(), -1, 0)
    return out


def read_sorted(adapter: DAQAdapter, data_root: Path, files: np.ndarray, run_id: str) -> np.ndarray:
    """:meth:`DAQAdapter.read` for an adapter that implements ``read_into``: all records in memory."""
    from .staging import RecordStaging

    with RecordStaging() as staging:
        adapter.read_into(data_root, files, run_id, staging)
        return staging.records()
