"""The ``caen-raw`` adapter: CAEN readout buffers written unchanged by a lab DAQ.

A run is ``<data_root>/<run>/`` (or its ``RAW`` folder) holding ``*.dat`` or
``*.raw`` files whose first word carries the ``0xA`` event marker; the board
number is read from ``Board_<b>`` in the name (else 0) and the segment from
the last number before the extension (``...-Board_0-001.dat``). The firmware
(standard, DPP-ZLE, DPP-PSD) is recognised from the first event's structure
(:func:`detect_firmware`); the board family, for the sample period and the
time tag tick, from the file or run folder names, else the ``model`` or
``dt_ns`` options. DPP-PSD events keep their charges as ``energy`` (Qlong)
and ``energy_short`` (Qshort) and their pile-up bit as flag 0x8000.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from loguru import logger

from ...errors import ConfigError, FormatError, NoDataError, RunNotFoundError
from .. import blockscan as bs
from ..base import DAQAdapter, RunInfo, make_file_table, resolve_dt
from ..blockscan import EventFormat
from ..boards import DEFAULT_TTT_NS, family_in_name, ttt_ns
from ..models import family
from .layout import (
    EVENT_MARKER,
    FIRMWARE_NAMES,
    HEADER_BYTES,
    MESSAGES,
    PSD,
    PSD_EXTENDED_PERIOD,
    STANDARD,
    TTT_PERIOD,
    ZLE,
)

_SUFFIXES = (".dat", ".raw")
_BOARD_RE = re.compile(r"board_?(\d+)", re.IGNORECASE)
_SEGMENT_RE = re.compile(r"(\d+)$")
_WAVEDUMP_RE = re.compile(r"^(wave_?\d+|TR_\d+_\d+)\.dat$", re.IGNORECASE)
PATTERN = "*.dat or *.raw starting with a 0xA event header (not wave*.dat)"


def _kernels():
    from . import kernels

    return kernels


def event_bytes(buf: np.ndarray, n: int) -> int:
    """Declared size in bytes of the event at ``buf[0]`` (0: fewer than 4 bytes)."""
    if n < 4:
        return 0
    return (int.from_bytes(buf[:4].tobytes(), "little") & 0x0FFFFFFF) * 4


def event_format(firmware: int) -> EventFormat:
    k = _kernels()
    walk, copy = {
        STANDARD: (k.walk_standard, k.copy_standard),
        ZLE: (k.walk_zle, k.copy_zle),
        PSD: (k.walk_psd, k.copy_standard),
    }[firmware]
    return EventFormat(f"CAEN {FIRMWARE_NAMES[firmware]} readout", walk, copy, MESSAGES, event_bytes)


def starts_with_event(path: Path) -> bool:
    """Whether ``path``'s first word is a CAEN event header (``0xA`` in bits 28-31)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEADER_BYTES)
    except OSError:
        return False
    return len(head) == HEADER_BYTES and (int.from_bytes(head[:4], "little") >> 28) == EVENT_MARKER


def _is_dump_name(p: Path) -> bool:
    return p.suffix.lower() in _SUFFIXES and not _WAVEDUMP_RE.match(p.name)


def run_folder(data_root: Path | str, run_id: str) -> Path:
    run_dir = Path(data_root) / str(run_id)
    if not run_dir.is_dir():
        raise RunNotFoundError(f"run {run_id!r}: run folder {run_dir} does not exist")
    raw = run_dir / "RAW"
    return raw if raw.is_dir() else run_dir


def list_files(data_root: Path | str, run_id: str) -> np.ndarray:
    folder = run_folder(data_root, run_id)
    entries = []
    for p in folder.iterdir():
        if not (_is_dump_name(p) and p.is_file() and starts_with_event(p)):
            continue
        board = _BOARD_RE.search(p.stem)
        seg = _SEGMENT_RE.search(p.stem)
        entries.append((int(board.group(1)) if board else 0, -1, int(seg.group(1)) if seg else 0, p))
    return make_file_table(data_root, run_id, folder, entries, PATTERN)


def detect_firmware(words: np.ndarray, where: str) -> tuple[int, bool]:
    """(firmware, PSD extended time tag) from the first event's 32-bit words.

    DPP-PSD: a couple aggregate header (bit 31 set) right after the event
    header. DPP-ZLE: channel headers whose sizes add up to the event. Standard:
    an equal share of the event per masked channel. When both of the last two
    fit, a ZLE skip word decides. Anything else is a :class:`FormatError`
    naming the firmwares read.
    """
    size = int(words[0] & 0x0FFFFFFF)
    body = words[4:size]
    mask = int(words[1] & 0xFF) | (int(words[2] >> 24) << 8)
    nch = bin(mask).count("1")
    if body.size >= 2 and body[0] >> 31:
        fw = int(body[1])
        return PSD, bool((fw >> 28) & 1 and ((fw >> 24) & 7) <= 2)
    std_ok = (nch == 0 and body.size == 0) or (nch > 0 and body.size % nch == 0)
    zle_ok, skips, p = nch > 0, False, 0
    for _ in range(nch):
        if p >= body.size or (body[p] & 0xFFFF) == 0:
            zle_ok = False
            break
        n = int(body[p] & 0xFFFF)
        skips = skips or bool(np.any(body[p + 1 : p + n] >> 28 == 0b1000))
        p += n
    zle_ok = zle_ok and p == body.size
    if zle_ok and (skips or not std_ok):
        return ZLE, False
    if std_ok:
        return STANDARD, False
    raise FormatError(
        f"{where}: the first event is neither standard, DPP-ZLE nor DPP-PSD firmware output "
        f"(event size {size} words, channel mask 0x{mask:x}); other firmwares (DPP-PHA, DAW, "
        "...) are not read by the caen-raw adapter"
    )


def run_firmware(data_root: Path, run_id: str, files: np.ndarray) -> tuple[int, bool]:
    """(firmware, PSD extended time tag) of the run, from each file's first event; the files
    of one run must agree."""
    if len(files) == 0:
        raise NoDataError(f"run {run_id!r}: no files to read")
    found = {}
    for rel in files["path"]:
        with open(data_root / str(rel), "rb") as fh:
            head = fh.read(HEADER_BYTES)
            size = event_bytes(np.frombuffer(head, np.uint8), len(head))
            first = head + fh.read(max(0, size - HEADER_BYTES))
        if len(first) < max(size, HEADER_BYTES) or len(first) % 4:
            continue  # a file cut inside its first event: the scan warns about it
        words = np.frombuffer(first, "<u4")
        found[str(rel)] = detect_firmware(words, f"run {run_id!r}: file {rel}, byte offset 0")
    if not found:
        raise NoDataError(f"run {run_id!r}: no file holds a complete event")
    if len(set(found.values())) > 1:
        seen = ", ".join(f"{r}: {FIRMWARE_NAMES[f[0]]}" for r, f in found.items())
        raise FormatError(f"run {run_id!r}: files of different firmwares in one run ({seen})")
    return next(iter(found.values()))


def warn_segment_gaps(run_id: str, files: np.ndarray) -> None:
    """A warning per board whose segment numbers skip some (a file missing mid-run)."""
    for board in np.unique(files["board"]):
        mine = files[files["board"] == board]
        segs = sorted(int(s) for s in mine["segment"])
        missing = sorted(set(range(segs[0], segs[-1] + 1)) - set(segs))
        if missing:
            logger.warning(
                f"run {run_id!r}: board {int(board)}: gap in the segment numbers, missing "
                f"{', '.join(map(str, missing))} (between {mine['path'][0]} and "
                f"{mine['path'][-1]}); the events of the files present are read"
            )


class CaenRawAdapter(DAQAdapter):
    """CAEN readout dumps: standard firmware, DPP-ZLE and DPP-PSD (see docs/formats.md)."""

    name = "caen-raw"

    def __init__(self, *, model: str | None = None) -> None:
        self.model = model

    looks_for = PATTERN

    def detect(self, run_dir: Path) -> str | None:
        folder = run_dir / "RAW" if (run_dir / "RAW").is_dir() else run_dir
        for p in folder.iterdir():
            if _is_dump_name(p) and p.is_file() and starts_with_event(p):
                where = " in RAW" if folder != run_dir else ""
                return f"CAEN readout dump{where}"
        return None

    def list_files(self, data_root: Path, run_id: str) -> np.ndarray:
        return list_files(data_root, run_id)

    def _family(self, run_id: str, files: np.ndarray):
        """(family, model word, where) from the model option, run folder or file names."""
        candidates = [("model option", self.model)] if self.model else []
        candidates.append((f"run folder {run_id}", str(run_id)))
        candidates += [(f"file name {Path(str(p)).name}", Path(str(p)).name) for p in files["path"]]
        for where, text in candidates:
            found = family_in_name(text)
            if found is not None:
                return found[0], found[1], where
        if self.model:
            raise ConfigError(f"model option {self.model!r}: not a CAEN digitizer family known here")
        return None

    def run_info(self, data_root: Path, run_id: str, files: np.ndarray,
                 dt_ns: float | None = None) -> RunInfo:  # fmt: skip
        """Format, firmware (``encoding``), model and dt_ns of the run, with their sources."""
        firmware, _ = run_firmware(Path(data_root), run_id, files)
        parent = Path(data_root) / Path(str(files["path"][0])).parent
        folder = "." if parent == Path(data_root) / str(run_id) else parent.name
        info = RunInfo(format=self.name, encoding=FIRMWARE_NAMES[firmware], folder=folder)
        info.sources["encoding"] = "structure of the first event"
        if firmware == PSD:
            info.energy_fields = ("energy", "energy_short")
            info.sources["energy"] = "DPP-PSD charge word: Qlong (energy), Qshort (energy_short)"
        named = self._family(run_id, files)
        if named is not None:
            fam, word, where = named
            info.set("model", word, where)
            info.set("adc_bits", fam.adc_bits, f"board family {fam.name}")
            info.set("dt_ns", fam.dt_ns, f"board family {fam.name} ({where})")
        return resolve_dt(info, run_id, dt_ns)

    def read_into(self, data_root: Path, files: np.ndarray, run_id: str, sink,
                  info: RunInfo | None = None) -> None:  # fmt: skip
        data_root = Path(data_root)
        if info is None:
            info = self.run_info(data_root, run_id, files)
        firmware, extended = run_firmware(data_root, run_id, files)
        warn_segment_gaps(run_id, files)
        fmt = event_format(firmware)
        scans = bs.scan_files(fmt, run_id, data_root, files)
        if firmware == PSD:  # DPP time tags count sample clock ticks
            tick = info.dt_ns
        else:
            fam = family(info.model)
            tick = ttt_ns(fam) if fam is not None else DEFAULT_TTT_NS
        period = PSD_EXTENDED_PERIOD if extended else TTT_PERIOD
        bs.read_scans(fmt, run_id, data_root, scans, info, tick, period, sink)
