"""The adapter interface: one subclass per digitizer file format, and what it says about a run.

An adapter does four things, each a method below:

* **recognise** a run from its files (:meth:`DAQAdapter.detect`: names, header
  word, first bytes; cheap, no full read), so that ``daq_adapter="auto"``
  (the default, :data:`waveform_analysis.daq.DEFAULT_ADAPTER`) picks the
  format per run (:func:`waveform_analysis.daq.detect_adapter`);
* **list** the run's files (:meth:`DAQAdapter.list_files`, a ``RAW_FILES_DTYPE``
  table, the input of every cache key);
* **describe** the run (:meth:`DAQAdapter.run_info`, a :class:`RunInfo`: the
  format and version, board model and serial, ADC bits, the sample period
  ``dt_ns``, record length, pre-trigger, polarity, gates, energy calibration,
  start and stop time, whether the run holds waveforms, and where each value
  came from). The sample period is never a silent default: settings files,
  then the board model, then the user's ``dt_ns`` option; with none of them
  :func:`resolve_dt` raises a :class:`ConfigError` naming the run and
  ``dt_ns``;
* **read** the run (:meth:`DAQAdapter.read_into`) block by block into a sink
  (:class:`~waveform_analysis.daq.staging.RecordStaging`, or any object with
  ``begin(n_rows, dtype)`` and ``put(row0, rows)``). A run with waveforms
  (``RunInfo.has_waveforms``) gives records of ``st_waveforms_dtype(n)``; a
  list-mode run (firmware energy, time and flags per trigger, no samples)
  gives rows of ``TRIGGERS_DTYPE``. The ``triggers`` plugin turns records into
  trigger rows on the way in, so row *i* of ``triggers`` is record *i* of
  ``st_waveforms`` (both sorted by the staging's (time, board, channel) with
  file order breaking ties).

Fields an adapter fills: ``time`` (ns; plus ``RunInfo.time_offset_ns``, the
run's start since the Unix epoch when it is known), ``timestamp`` (ps, as in
the file), ``board``, ``channel``, ``flags`` (0 where the format has none),
``dt`` (``RunInfo.dt_ns``), ``length``, ``wave``, and the firmware energies it
has (listed in ``RunInfo.energy_fields``: the plugins set the others to NaN).
``baseline``, ``baseline_rms`` and ``saturated`` are the ``st_waveforms``
plugin's; ``pileup``, ``saturated`` and ``fake`` of a trigger the ``triggers``
plugin's (from ``flags``).

A built-in format is a package ``daq/<family>/``: the adapter in its
``__init__``, ``layout.py`` (constants and kernel error codes, imported by
both), the reader, ``kernels.py`` (numba, imported on the first read); it
is registered in ``daq/__init__.py`` (registration order is detection
order), takes the board's sample period and ADC bits from
:mod:`.models` (``family(model)``, ``drs4_dt_ns``), reads with
:mod:`.blocks` (``open_listed``, ``read_exact``, buffer pools), and has a
writer in ``synthetic/<family>.py`` registered with
``waveform_analysis.synthetic.register_format`` (its name also in the CLI's
``GENERATE_FORMATS``).

A third-party adapter needs only ``name``, :meth:`list_files` and :meth:`read`
(all records in memory); the defaults of the rest describe a run with
waveforms whose sample period is the class's ``sample_ns`` (None: the
``dt_ns`` option). Register an instance with
:func:`waveform_analysis.daq.register_adapter`.
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..dtypes import RAW_FILES_DTYPE
from ..errors import ConfigError, NoDataError, RunNotFoundError

ENERGY_FIELDS = ("energy", "energy_short", "energy_calibrated")
#: What a board's settings give (per board in ``RunInfo.boards`` on runs of several boards).
BOARD_FIELDS = ("model", "serial", "adc_bits", "dt_ns", "record_length", "pretrigger_samples",
                "polarity", "threshold", "gates", "calibration")


@dataclass
class RunInfo:
    """What the files and settings of one run say, with where each value came from.

    ``sources`` maps a field name to a short phrase (``"settings.xml
    <sampleTime>"``, ``"board model DT5725 (x725 family)"``, ``"option dt_ns"``);
    a field absent from it was not found. ``channels`` holds per-channel
    overrides of the board-level values, ``{channel: {field: value}}``, as
    CoMPASS writes them (:meth:`value`). ``files`` names the settings files read.

    A run of several boards whose settings differ has ``boards``: per value of
    the records' ``board`` field, that board's own fields (:data:`BOARD_FIELDS`,
    those found) and its ``channels`` and ``sources``; the run-level fields are
    then the first board's. :meth:`value` and :meth:`for_board` resolve a
    record's settings by its board, so every per-record rule (the readers'
    ``dt``, the calibration, the per-channel options of core/channels.py) takes
    its own board's values.
    """

    format: str
    version: str | None = None
    encoding: str | None = None  # "csv", "bin", ...: how the records are stored
    folder: str | None = None  # the run's data folder read (e.g. "RAW")
    model: str | None = None
    serial: int | None = None
    adc_bits: int | None = None
    dt_ns: float | None = None
    record_length: int | None = None  # samples
    pretrigger_samples: int | None = None
    polarity: str | None = None  # "negative" or "positive"
    threshold: float | None = None  # trigger threshold in ADC (LSB) above the baseline
    gates: dict[str, float] = field(default_factory=dict)  # gate_ns, short_gate_ns, pregate_ns
    calibration: tuple[float, ...] | None = None  # energy_calibrated = c0 + c1 E + c2 E^2
    energy_unit: str | None = None  # the calibration's unit ("keV", "MeV") where the settings say
    start_time: str | None = None  # ISO 8601 with its UTC offset
    stop_time: str | None = None
    time_offset_ns: int = 0  # added to every ``time``: the start since the epoch, when known
    has_waveforms: bool = True
    energy_fields: tuple[str, ...] = ()  # firmware energies the files hold
    channels: dict[int, dict[str, Any]] = field(default_factory=dict)
    boards: dict[int, dict[str, Any]] = field(default_factory=dict)  # several boards: see above
    sources: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def set(self, name: str, value: Any, source: str) -> None:
        """Set ``name`` to ``value`` (None: leave it) and record ``source``."""
        if value is None:
            return
        setattr(self, name, value)
        self.sources[name] = source

    def value(self, name: str, channel: int | None = None, board: int | None = None) -> Any:
        """``name`` for ``channel`` of ``board``: the channel's override when the settings give
        one, else its board's value (the run's when the run has one board's settings)."""
        if board is not None and int(board) in self.boards:
            return self.for_board(board).value(name, channel)
        if channel is not None and name in self.channels.get(int(channel), {}):
            return self.channels[int(channel)][name]
        return getattr(self, name)

    def for_board(self, board: int) -> RunInfo:
        """This RunInfo as board ``board``'s alone: its fields, channels and sources at the run
        level (itself when the run has no per-board settings or none for ``board``)."""
        entry = self.boards.get(int(board))
        if entry is None:
            return self
        fields = {k: entry.get(k) for k in BOARD_FIELDS}
        fields["gates"] = dict(entry.get("gates") or {})
        return dataclasses.replace(
            self, **fields, channels=entry.get("channels", {}), boards={},
            sources={**{k: v for k, v in self.sources.items() if k not in BOARD_FIELDS},
                     **entry.get("sources", {})},
        )

    def by_board(self, board: np.ndarray) -> list[tuple[RunInfo, np.ndarray | None]]:
        """``(board's RunInfo, its rows of board)`` per board among ``board`` (rows None: all
        rows, the run having one board's settings): how a per-record rule splits a block."""
        if not self.boards:
            return [(self, None)]
        board = np.asarray(board)
        uniq = np.unique(board)
        if uniq.size == 1:
            return [(self.for_board(int(uniq[0])), None)]
        return [(self.for_board(int(b)), np.flatnonzero(board == b)) for b in uniq]

    def per_row(self, name: str, board: np.ndarray) -> Any:
        """``name`` for every row of ``board``: one value when the rows share it, else one per
        row (each row its board's)."""
        parts = self.by_board(board)
        if len(parts) == 1:
            return getattr(parts[0][0], name)
        out = np.empty(len(board), np.asarray(getattr(parts[0][0], name)).dtype)
        for info, rows in parts:
            out[rows] = getattr(info, name)
        return out

    @property
    def time_reference(self) -> str:
        """What ``time`` counts from."""
        if self.time_offset_ns:
            return "Unix epoch (ns since 1970-01-01 UTC; run start from " + self.sources.get(
                "start_time", "the run's files") + ")"
        return "start of the run's acquisition (the digitizer's time tags; start time unknown)"

    def to_dict(self) -> dict[str, Any]:
        """Every field, plus ``time_reference``, as plain Python values."""
        out = dataclasses.asdict(self)
        out["channels"] = {int(k): dict(v) for k, v in self.channels.items()}
        out["boards"] = {int(b): {**v, "channels": {int(k): dict(c) for k, c in
                                                    v.get("channels", {}).items()}}
                         for b, v in self.boards.items()}
        out["time_reference"] = self.time_reference
        return out

    @property
    def calibrated(self) -> bool:
        """Whether the settings give an energy calibration (for the run or any channel)."""
        return self.calibration is not None or any(
            "calibration" in c for c in self.channels.values()
        ) or any(self.for_board(b).calibrated for b in self.boards)

    def calibration_rows(self, channel: np.ndarray, uncalibrated: float | None = None
                         ) -> np.ndarray | None:
        """One calibration row per record of ``channel`` (each channel's coefficients; a
        channel without any: NaN, or the identity with ``uncalibrated=1.0``); None when the
        settings give no calibration."""
        if not self.calibrated:
            return None
        from ..processing.calibration import calibration_rows

        return calibration_rows(channel, lambda ch: self.value("calibration", ch), uncalibrated)

    def calibrate(self, rows: np.ndarray) -> None:
        """``energy_calibrated = c0 + c1 E + c2 E^2`` of ``rows`` from their ``energy``, with
        each channel's coefficients (NaN for a channel without any); no-op without a calibration
        or when the files hold the calibrated energy themselves."""
        if not self.calibrated or self.sources.get("energy_calibrated") == "files":
            return
        from ..processing.calibration import calibrate

        for info, sel in self.by_board(rows["board"]):
            part = rows if sel is None else rows[sel]
            got = calibrate(part["energy"], info.calibration_rows(part["channel"]))
            if sel is None:
                rows["energy_calibrated"] = got
            else:
                rows["energy_calibrated"][sel] = got

    def fill_absent(self, rows: np.ndarray) -> None:
        """Set the energy fields of ``rows`` the format does not hold to NaN."""
        names = rows.dtype.names or ()
        for name in ENERGY_FIELDS:
            if name in names and name not in self.energy_fields:
                rows[name] = np.nan


def resolve_dt(info: RunInfo, run_id: str, dt_ns: float | None) -> RunInfo:
    """Give ``info`` its sample period: its own (settings, model), else the ``dt_ns`` option.

    Without either, a :class:`ConfigError` naming the run and the option: a
    wrong time base would silently scale every time and width."""
    if info.dt_ns is None and dt_ns is not None:
        info.set("dt_ns", float(dt_ns), "option dt_ns")
    if info.dt_ns is None:
        what = f"model {info.model}" if info.model else "no board model"
        raise ConfigError(
            f"run {run_id!r}: the sample period is not known ({info.format} files with {what}, "
            "no settings stating it); set the option dt_ns (e.g. config={'dt_ns': 4.0}, or "
            "--set dt_ns=4 on the command line) or board_model"
        )
    if not (isinstance(info.dt_ns, int | float) and math.isfinite(info.dt_ns) and info.dt_ns > 0):
        raise ConfigError(f"run {run_id!r}: sample period dt_ns={info.dt_ns!r} must be > 0")
    info.dt_ns = float(info.dt_ns)
    return info


class DAQAdapter(abc.ABC):
    """Reads one digitizer format into the standard records (see the module docstring).

    ``name`` is the ``daq_adapter`` value; ``aliases`` other names it answers
    to; ``sample_ns`` the format's fixed sample period, if it has one (a
    board-specific format leaves it None and states it in :meth:`run_info`).
    """

    name: str = ""
    aliases: tuple[str, ...] = ()
    sample_ns: float | None = None
    #: what :meth:`detect` looks for, for the error of a folder no adapter recognises
    looks_for: str = ""

    def detect(self, run_dir: Path) -> str | None:
        """A short description of the run's format (``"CoMPASS 2.x BIN in RAW"``) when this
        adapter reads ``run_dir``, else None. Looks at names and first bytes only."""
        return None

    @abc.abstractmethod
    def list_files(self, data_root: Path, run_id: str) -> np.ndarray:
        """Files of ``run_id`` as ``RAW_FILES_DTYPE``, ordered by (board, channel, segment).

        ``path`` is relative to ``data_root`` (posix). Raises
        :class:`RunNotFoundError` when the run or its data folder is missing and
        :class:`NoDataError` when it holds no matching file. An adapter that
        reads several folders takes a ``folder`` keyword (the ``daq_folder``
        option, ``"raw"`` by default).
        """

    def run_info(
        self, data_root: Path, run_id: str, files: np.ndarray, dt_ns: float | None = None
    ) -> RunInfo:
        """What the run's files and settings say (:class:`RunInfo`), ``dt_ns`` resolved.

        The default: the adapter's name, waveforms, ``sample_ns`` as the format's period."""
        info = RunInfo(format=self.name)
        if self.sample_ns is not None:
            info.set("dt_ns", float(self.sample_ns), f"format {self.name}")
        return resolve_dt(info, run_id, dt_ns)

    def settings_files(self, data_root: Path, run_id: str, files: np.ndarray) -> list[Path]:
        """The settings files :meth:`run_info` reads (their changes invalidate the cache)."""
        return []

    def read(self, data_root: Path, files: np.ndarray, run_id: str) -> np.ndarray:
        """All records of ``files`` as ``st_waveforms_dtype(n)``, sorted by time then channel.

        The default gathers :meth:`read_into` in memory; an adapter implements
        one of the two."""
        return read_sorted(self, data_root, files, run_id)

    def read_into(
        self, data_root: Path, files: np.ndarray, run_id: str, sink: Any, info: RunInfo | None = None
    ) -> None:
        """Put the rows of ``files`` into ``sink`` block by block, in any order.

        Call ``sink.begin(n_rows, dtype)`` once, then ``sink.put(row0, rows)``
        for disjoint row ranges (from any thread; rows never put are dropped).
        ``dtype`` is ``st_waveforms_dtype(n)`` for a run with waveforms and
        ``TRIGGERS_DTYPE`` for a list-mode one. ``info`` is :meth:`run_info`'s
        (None: the adapter finds it). The default reads the whole run with
        :meth:`read` and puts it at once.
        """
        if type(self).read is DAQAdapter.read:
            raise NotImplementedError(f"adapter {self.name!r} implements neither read nor read_into")
        records = self.read(data_root, files, run_id)
        sink.begin(len(records), records.dtype)
        sink.put(0, records)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


def read_run(adapter: DAQAdapter, data_root: Path, files: np.ndarray, run_id: str, sink: Any,
             info: RunInfo) -> None:
    """``adapter.read_into(..., info=info)``; an adapter written before ``info`` existed gets
    the call without it."""
    if "info" in inspect.signature(adapter.read_into).parameters:
        adapter.read_into(data_root, files, run_id, sink, info=info)
    else:
        adapter.read_into(data_root, files, run_id, sink)


def check_has_waveforms(info: RunInfo, run_id: str) -> None:
    """A :class:`NoDataError` for ``st_waveforms`` of a list-mode run, pointing to ``triggers``."""
    if not info.has_waveforms:
        raise NoDataError(
            f"run {run_id!r} has no waveforms: its {info.format} files"
            f"{' (' + info.encoding + ')' if info.encoding else ''} hold one energy, time and "
            "flags per trigger (list mode), no samples; get 'triggers' instead of 'st_waveforms' "
            "(and the data built on it)"
        )


def run_dir(data_root: Path | str, run_id: str) -> Path:
    """``<data_root>/<run_id>``, or :class:`RunNotFoundError` naming it."""
    path = Path(data_root) / str(run_id)
    if not path.is_dir():
        raise RunNotFoundError(f"run {run_id!r}: run folder {path} does not exist")
    return path


def raw_dir(data_root: Path | str, run_id: str) -> Path:
    """``<data_root>/<run_id>/RAW``, or :class:`RunNotFoundError` naming what is missing."""
    raw = run_dir(data_root, run_id) / "RAW"
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
