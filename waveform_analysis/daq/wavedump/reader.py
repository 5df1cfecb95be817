"""The ``wavedump`` adapter: WaveDump binary and ASCII runs, with the run's WaveDump config.

Settings, each with where it came from (:meth:`WaveDumpAdapter.run_info`):

* sample period: x742 from the config's ``DRS4_FREQUENCY``; other boards from
  the family named in the config, run folder or file names
  (:func:`~waveform_analysis.daq.boards.family_in_name`); else the ``dt_ns``
  option; else a :class:`ConfigError` naming the run and ``dt_ns``;
* trigger time tag tick: the family's (8 ns when no family is known);
* sample type: float32 on x742 (``TR_`` files, an x742 model, or samples that
  read as floats of at least 2 ADC), else u16;
* record length, pre-trigger samples and polarity from the config; a record
  length that differs from the files' is a warning (the files win).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from loguru import logger

from ...errors import ConfigError, NoDataError
from .. import blockscan as bs
from ..base import DAQAdapter, RunInfo, resolve_dt
from ..blockscan import EventFormat, FileScan
from ..boards import DEFAULT_TTT_NS, TTT_NS, family_in_name, ttt_ns
from ..models import family
from .config import WaveDumpConfig, find_config, read_config
from .files import PATTERN, file_kind, is_fast_trigger, list_files, run_folder
from .layout import HEADER_BYTES, MESSAGES, SAMPLE_F32, SAMPLE_U16, TTT_PERIOD


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

    ``config`` names the WaveDump config file (relative to the run folder, or
    absolute; default: ``WaveDumpConfig*.txt`` in the run folder), ``model``
    the board (``"V1730"``, ``"DT5742"``) when no name says it. Register an
    instance with them: ``register_adapter(WaveDumpAdapter(config="my.txt"), replace=True)``.
    """

    name = "wavedump"
    looks_for = PATTERN

    def __init__(self, *, config: str | Path | None = None, model: str | None = None) -> None:
        self.config = config
        self.model = model

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

    def run_info(self, data_root: Path, run_id: str, files: np.ndarray,
                 dt_ns: float | None = None) -> RunInfo:  # fmt: skip
        """Format, model, sample type, dt_ns, record length, pre-trigger and polarity of the run.

        ``encoding`` is ``"binary u16"``, ``"binary float32 (x742)"`` or
        ``"ascii"``; ``record_length`` is the first event's sample count (the
        files win over the config, whose value a note keeps when it differs).
        """
        data_root = Path(data_root)
        if len(files) == 0:
            raise NoDataError(f"run {run_id!r}: no files to read")
        first = data_root / str(files["path"][0])
        ascii_run = first.suffix.lower() == ".txt"
        cfg = self._config(data_root, run_id)
        folder = "." if first.parent == data_root / str(run_id) else first.parent.name
        info = RunInfo(format=self.name, folder=folder)
        named = self._family(run_id, files, cfg)
        fam = None
        if named is not None:
            fam, word, where = named
            info.set("model", word, where)
            info.set("adc_bits", fam.adc_bits, f"board family {fam.name}")
        x742 = any(is_fast_trigger(str(p)) for p in files["path"]) or (
            fam is not None and fam.name == "x742"
        )
        length = None
        if ascii_run:
            info.encoding = "ascii"
        else:
            float32, length, why = _first_event(first, x742)
            x742 = x742 or float32
            info.encoding = "binary float32 (x742)" if x742 else "binary u16"
            info.sources["encoding"] = why
        if cfg is not None:
            info.files.append(str(cfg.path))
            if not cfg.header:
                raise ConfigError(
                    f"run {run_id!r}: {cfg.path.name} line {cfg.lines['OUTPUT_FILE_HEADER']}: "
                    "OUTPUT_FILE_HEADER NO; files without event headers are not read"
                )
            info.set("record_length", cfg.record_length, f"RECORD_LENGTH in {cfg.path.name}")
            info.set("pretrigger_samples", cfg.pretrigger_samples,
                     f"RECORD_LENGTH and POST_TRIGGER in {cfg.path.name}")  # fmt: skip
            info.set("polarity", cfg.polarity(), f"PULSE_POLARITY in {cfg.path.name}")
            for ch, section in cfg.channels.items():
                if "PULSE_POLARITY" in section:
                    info.channels.setdefault(ch, {})["polarity"] = cfg.polarity(ch)
            if x742:
                info.set("dt_ns", cfg.drs4_dt_ns, f"DRS4_FREQUENCY in {cfg.path.name}")
        if length is not None and length != info.record_length:
            if info.record_length is not None:
                info.notes.append(
                    f"{cfg.path.name} says RECORD_LENGTH {info.record_length}; the files hold "
                    f"{length} samples per event"
                )
            info.set("record_length", length, f"event size in {first.name}")
        if not x742 and fam is not None:
            info.set("dt_ns", fam.dt_ns, f"board family {fam.name} ({info.sources['model']})")
        if info.dt_ns is None and x742 and dt_ns is None:
            raise ConfigError(
                f"run {run_id!r}: x742 WaveDump run without DRS4_FREQUENCY in a WaveDump config, "
                "so its sample period is unknown; set the option dt_ns"
            )
        return resolve_dt(info, run_id, dt_ns)

    def _family(self, run_id: str, files: np.ndarray, cfg: WaveDumpConfig | None):
        """(family, model word, where) from the model option, config name, run folder or file names."""
        candidates = [("model option", self.model)] if self.model else []
        if cfg is not None:
            candidates.append((f"config name {cfg.path.name}", cfg.path.name))
        candidates.append((f"run folder {run_id}", str(run_id)))
        candidates += [(f"file name {Path(str(p)).name}", Path(str(p)).name) for p in files["path"]]
        for where, text in candidates:
            found = family_in_name(text)
            if found is not None:
                return found[0], found[1], where
        if self.model:
            raise ConfigError(f"model option {self.model!r}: not a CAEN digitizer family known here")
        return None

    def read_into(self, data_root: Path, files: np.ndarray, run_id: str, sink,
                  info: RunInfo | None = None) -> None:  # fmt: skip
        data_root = Path(data_root)
        if info is None:
            info = self.run_info(data_root, run_id, files)
        if info.encoding == "ascii":
            fmt = ascii_format()
        else:
            fmt = binary_format(SAMPLE_F32 if "float32" in (info.encoding or "") else SAMPLE_U16)
        scans = bs.scan_files(fmt, run_id, data_root, files)
        check_record_length(run_id, scans, self._config(data_root, run_id))
        bs.read_scans(fmt, run_id, data_root, scans, info, _ttt_ns(info), TTT_PERIOD, sink)


def _ttt_ns(info: RunInfo) -> float:
    """The run's trigger time tag tick: its family's, 8.5 ns on x742, else 8 ns."""
    fam = family(info.model)
    if fam is not None:
        return ttt_ns(fam)
    return TTT_NS["x742"] if "x742" in (info.encoding or "") else DEFAULT_TTT_NS


def _first_event(path: Path, x742: bool) -> tuple[bool, int | None, str]:
    """(float32 samples, samples in the first event, why) of a binary file."""
    with open(path, "rb") as fh:
        head = fh.read(HEADER_BYTES)
        size = event_bytes(np.frombuffer(head, np.uint8), len(head))
        first = head + fh.read(max(0, min(size, 1 << 24) - HEADER_BYTES))
    if x742:
        float32, why = True, "x742 board: float32 samples"
    elif looks_float32(first):
        float32, why = True, f"samples of {path.name} read as float32 (x742)"
    else:
        float32, why = False, "u16 samples"
    width = SAMPLE_F32 if float32 else SAMPLE_U16
    n = (size - HEADER_BYTES) // width if size >= HEADER_BYTES else None
    return float32, n, why


def check_record_length(run_id: str, scans: list[FileScan], cfg: WaveDumpConfig | None) -> None:
    """Warn when the config's RECORD_LENGTH is not the files' sample count (the files win)."""
    configured = None if cfg is None else cfg.record_length
    if configured is None:
        return
    for scan in scans:
        if len(scan.meta) == 0:
            continue
        wrong = np.flatnonzero(scan.meta[:, bs.NSAMP] != configured)
        if wrong.size:
            first = int(wrong[0])
            logger.warning(
                f"run {run_id!r}: file {scan.rel}, byte offset {int(scan.meta[first, bs.OFFSET])}: "
                f"{wrong.size} events hold {int(scan.meta[first, bs.NSAMP])} samples where "
                f"{cfg.path.name} says RECORD_LENGTH {configured}; the files' "
                "sample counts are used"
            )
