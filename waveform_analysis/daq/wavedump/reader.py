"""The ``wavedump`` adapter: WaveDump binary and ASCII runs, with the run's WaveDump config.

Settings, each with where it came from (:meth:`WaveDumpAdapter.run_settings`):

* sample period: x742 from the config's ``DRS4_FREQUENCY``; other boards from
  the family named in the config, run folder or file names
  (:func:`~waveform_analysis.daq.boards.board_from_name`); else the adapter's
  ``dt_ns``; else a :class:`ConfigError` naming the run and ``dt_ns``;
* trigger time tag tick: the family's (8 ns when no family is known);
* sample type: float32 on x742 (``TR_`` files, an x742 model, or samples that
  read as floats of at least 2 ADC), else u16;
* record length, pre-trigger samples and polarity from the config; a record
  length that differs from the files' is a warning (the files win).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

from ...errors import ConfigError, NoDataError
from .. import blockscan as bs
from ..base import DAQAdapter, read_sorted
from ..blockscan import EventFormat, FileScan
from ..boards import Board, board_from_name
from .config import WaveDumpConfig, find_config, read_config
from .files import PATTERN, file_kind, is_fast_trigger, list_files, run_folder
from .layout import HEADER_BYTES, MESSAGES, SAMPLE_F32, SAMPLE_U16, TTT_PERIOD

DEFAULT_TTT_NS = 8.0


def _kernels():
    from . import kernels

    return kernels


def event_bytes(buf: np.ndarray, n: int) -> int:
    """Declared size of the binary event at ``buf[0]`` (0: fewer than 4 bytes)."""
    return int.from_bytes(buf[:4].tobytes(), "little") if n >= 4 else 0


def binary_format(width: int) -> EventFormat:
    """The WaveDump binary layout with ``width``-byte samples (2: u16, 4: float32)."""
    k = _kernels()
    params = np.array([width, 0, 0, 0], np.int64)
    name = "WaveDump binary" + (" (x742 float32 samples)" if width == SAMPLE_F32 else "")
    return EventFormat(name, k.walk_binary, k.copy_binary, MESSAGES, event_bytes, params)


def ascii_format() -> EventFormat:
    """The WaveDump ASCII layout."""
    k = _kernels()
    return EventFormat("WaveDump ASCII", k.walk_ascii, k.copy_ascii, MESSAGES, lambda b, n: 0)


def looks_float32(first_event: bytes) -> bool:
    """Whether the samples of a binary event read as x742 float32 ADC values.

    u16 samples of a board of at most 14 bits, read as float32 pairs, are all
    below 2 in magnitude (the high half sets an exponent of at most 127);
    float ADC samples of a DRS4 board are not.
    """
    body = first_event[HEADER_BYTES:]
    if len(body) == 0 or len(body) % 4:
        return False
    x = np.frombuffer(body, "<f4")
    with np.errstate(invalid="ignore"):
        return bool(np.all(np.isfinite(x)) and np.all(np.abs(x) >= 2.0) and np.all(np.abs(x) < 65536))


class WaveDumpAdapter(DAQAdapter):
    """CAEN WaveDump output: ``wave<c>.dat``/``wave_<c>.dat``/``TR_<g>_<n>.dat`` or ``wave<c>.txt``.

    ``config`` names the WaveDump config file (default: ``WaveDumpConfig*.txt``
    in the run folder), ``model`` the board (``"V1730"``, ``"DT5742"``) when
    no name says it, ``dt_ns`` the sample period when neither does.
    """

    name = "wavedump"
    sample_ns = 0  # per run: see run_settings

    def __init__(self, *, config: str | Path | None = None, model: str | None = None,
                 dt_ns: float | None = None) -> None:  # fmt: skip
        self.config = config
        self.model = model
        self.dt_ns = dt_ns

    looks_for = PATTERN

    def detect(self, run_dir: Path) -> str | None:
        for folder in (run_dir, run_dir / "RAW"):
            kinds = {file_kind(p.name) for p in folder.iterdir()} - {None} if folder.is_dir() else set()
            if kinds:
                where = "" if folder == run_dir else " in RAW"
                return f"WaveDump {' and '.join(sorted(kinds))}{where}"
        return None

    def list_files(self, data_root: Path, run_id: str) -> np.ndarray:
        return list_files(data_root, run_id)[0]

    def settings_files(self, data_root: Path, run_id: str, files: np.ndarray) -> list[Path]:
        cfg = self._config(Path(data_root), run_id)
        return [] if cfg is None else [cfg.path]

    def _config(self, data_root: Path, run_id: str) -> WaveDumpConfig | None:
        if self.config is not None:
            path = Path(self.config)
            if not path.is_absolute():
                path = Path(data_root) / str(run_id) / path
            return read_config(path)
        found = find_config(run_folder(data_root, run_id))
        if found is None and (Path(data_root) / str(run_id)).is_dir():
            found = find_config(Path(data_root) / str(run_id))
        return None if found is None else read_config(found)

    def run_settings(self, data_root: Path, run_id: str, files: np.ndarray) -> dict[str, Any]:
        """What the run's names and config say: format, model, dt_ns, ttt_ns, sample width,
        record_length, pretrigger_samples, polarity, and ``sources`` (where each came from)."""
        data_root = Path(data_root)
        kind = "ascii" if str(files["path"][0]).lower().endswith(".txt") else "binary"
        cfg = self._config(data_root, run_id)
        src: dict[str, str] = {}
        board, src["model"] = self._board(data_root, run_id, files, cfg)
        x742 = any(is_fast_trigger(str(p)) for p in files["path"]) or (
            board is not None and board.family == "x742"
        )
        width = SAMPLE_U16
        if kind == "binary":
            width, src["samples"] = self._width(data_root, files, x742)
            x742 = x742 or width == SAMPLE_F32
        dt: float | None = None
        if x742 and cfg is not None and cfg.drs4_dt_ns is not None:
            dt, src["dt_ns"] = cfg.drs4_dt_ns, f"DRS4_FREQUENCY in {cfg.path.name}"
        elif board is not None and board.dt_ns is not None:
            dt, src["dt_ns"] = board.dt_ns, f"board family {board.family} ({src['model']})"
        elif self.dt_ns is not None:
            dt, src["dt_ns"] = float(self.dt_ns), "dt_ns option"
        if dt is None:
            what = "x742 run without DRS4_FREQUENCY in a WaveDump config" if x742 else (
                "no board model in the config, run folder or file names"
            )
            raise ConfigError(
                f"run {run_id!r}: the sample period is unknown ({what}); set the dt_ns "
                "option (or model) of the wavedump adapter"
            )
        if board is not None:
            ttt_ns, src["ttt_ns"] = board.ttt_ns, f"board family {board.family}"
        else:
            ttt_ns, src["ttt_ns"] = DEFAULT_TTT_NS, "assumed (most CAEN families); set model"
        info: dict[str, Any] = {
            "format": f"wavedump-{kind}",
            "model": None if board is None else board.family,
            "adc_bits": None if board is None else board.adc_bits,
            "dt_ns": dt,
            "ttt_ns": ttt_ns,
            "sample_width": width,
            "record_length": None,
            "pretrigger_samples": None,
            "polarity": None,
            "config": None if cfg is None else str(cfg.path),
        }
        if cfg is not None:
            if not cfg.header:
                raise ConfigError(
                    f"run {run_id!r}: {cfg.path.name} line {cfg.lines['OUTPUT_FILE_HEADER']}: "
                    "OUTPUT_FILE_HEADER NO; files without event headers are not read"
                )
            for key, value in (
                ("record_length", cfg.record_length),
                ("pretrigger_samples", cfg.pretrigger_samples),
                ("polarity", cfg.polarity()),
            ):
                if value is not None:
                    info[key] = value
                    src[key] = cfg.path.name
        info["sources"] = src
        return info

    def _board(self, data_root: Path, run_id: str, files: np.ndarray,
               cfg: WaveDumpConfig | None) -> tuple[Board | None, str]:  # fmt: skip
        candidates = []
        if self.model:
            candidates.append(("model option", self.model))
        if cfg is not None:
            candidates.append((f"config name {cfg.path.name}", cfg.path.name))
        candidates.append((f"run folder {run_id}", str(run_id)))
        candidates += [(f"file name {Path(str(p)).name}", str(p)) for p in files["path"]]
        for where, text in candidates:
            board = board_from_name(text)
            if board is not None:
                return board, where
        if self.model:
            raise ConfigError(f"model option {self.model!r}: not a CAEN digitizer family known here")
        return None, "unknown"

    def _width(self, data_root: Path, files: np.ndarray, x742: bool) -> tuple[int, str]:
        if x742:
            return SAMPLE_F32, "x742 board: float32"
        path = data_root / str(files["path"][0])
        with open(path, "rb") as fh:
            head = fh.read(HEADER_BYTES)
            size = event_bytes(np.frombuffer(head, np.uint8), len(head))
            first = head + fh.read(max(0, min(size, 1 << 20) - HEADER_BYTES))
        if looks_float32(first):
            return SAMPLE_F32, f"float32 samples in {path.name} (x742)"
        return SAMPLE_U16, "u16 samples"

    def read(self, data_root: Path, files: np.ndarray, run_id: str) -> np.ndarray:
        return read_sorted(self, data_root, files, run_id)

    def read_into(self, data_root: Path, files: np.ndarray, run_id: str, sink, info=None) -> None:
        data_root = Path(data_root)
        if len(files) == 0:
            raise NoDataError(f"run {run_id!r}: no files to read")
        info = self.run_settings(data_root, run_id, files)
        fmt = ascii_format() if info["format"] == "wavedump-ascii" else binary_format(
            info["sample_width"]
        )
        scans = bs.scan_files(fmt, run_id, data_root, files)
        check_record_length(run_id, scans, info)
        bs.read_scans(fmt, run_id, data_root, scans, info["dt_ns"], info["ttt_ns"], TTT_PERIOD, sink)


def check_record_length(run_id: str, scans: list[FileScan], info: dict[str, Any]) -> None:
    """Warn when the config's RECORD_LENGTH is not the files' sample count (the files win)."""
    configured = info.get("record_length")
    for scan in scans:
        if configured is None or len(scan.meta) == 0:
            continue
        wrong = np.flatnonzero(scan.meta[:, bs.NSAMP] != configured)
        if wrong.size:
            first = int(wrong[0])
            logger.warning(
                f"run {run_id!r}: file {scan.rel}, byte offset {int(scan.meta[first, bs.OFFSET])}: "
                f"{wrong.size} events hold {int(scan.meta[first, bs.NSAMP])} samples where "
                f"{Path(info['config']).name} says RECORD_LENGTH {configured}; the files' "
                "sample counts are used"
            )
    if scans:
        lengths = np.concatenate([s.meta[:, bs.NSAMP] for s in scans])
        if lengths.size:
            info["record_length"] = int(lengths.max())
            info.setdefault("sources", {})["record_length"] = "event size in the files"
