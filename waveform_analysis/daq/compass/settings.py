"""A CoMPASS run's settings: ``settings.xml`` and ``run.info``, into a :class:`RunInfo`.

CoMPASS keeps ``settings.xml`` in the run folder (``<project>/DAQ/<run>/``)
and the project's in the project folder; ``run.info`` in the run folder. The
first found of: the run folder, its data folder, ``data_root``, the folder
above ``data_root`` (a run folder may also hold one ``*settings.xml`` under
another name). Values read (CoMPASS's names):

* per board: ``modelName``, ``serialNumber``, ``adcBitCount``,
  ``sampleTime`` (ps);
* board parameters, with per-channel overrides in ``<channel><index>``:
  ``SRV_PARAM_RECLEN`` and ``SRV_PARAM_CH_PRETRG`` (ns, turned into samples),
  ``SRV_PARAM_CH_POLARITY``, ``SRV_PARAM_CH_GATE``, ``GATESHORT``, ``GATEPRE``
  (ns), ``SW_PARAMETER_CH_ENERGY_CALIBRATION_P0..P2``, and ``SRV_PARAM_CH_THRESHOLD``
  where it is in ADC above the baseline: a DPP-PSD board (``<dppType>``) whose
  descriptor gives it in ``LSB`` (DPP-PHA's is on its trigger filter's output);
* ``run.info``: ``time.start``, ``time.stop`` (``%Y/%m/%d %H:%M:%S.%f%z``) and
  per channel ``board.<link>-<family>-<serial>.<ch>.calibration.energy.c0..c2``.

A record length in the settings that contradicts the files' is a
:class:`FormatError` naming both (CoMPASS rounds the length to its board's
granularity, so up to 8 samples apart is accepted).
"""

from __future__ import annotations

import datetime as _dt
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from loguru import logger

from ...errors import FormatError
from ..base import BOARD_FIELDS, RunInfo

RECORD_LENGTH_SLACK = 8  # samples: CoMPASS rounds RECLEN to the board's granularity

_GATES = {
    "SRV_PARAM_CH_GATE": "gate_ns",
    "SRV_PARAM_CH_GATESHORT": "short_gate_ns",
    "SRV_PARAM_CH_GATEPRE": "pregate_ns",
}
_CAL = ("SW_PARAMETER_CH_ENERGY_CALIBRATION_P0", "SW_PARAMETER_CH_ENERGY_CALIBRATION_P1",
        "SW_PARAMETER_CH_ENERGY_CALIBRATION_P2")
_UNIT = "SW_PARAMETER_CH_ENERGY_CALIBRATION_UDM"
_THRESHOLD = "SRV_PARAM_CH_THRESHOLD"
_KEYS = {"SRV_PARAM_RECLEN", "SRV_PARAM_CH_PRETRG", "SRV_PARAM_CH_POLARITY", _THRESHOLD, *_GATES,
         *_CAL, _UNIT}


def find_settings(data_root: Path, run_id: str, data_dir: Path, name: str) -> Path | None:
    """The first ``name`` (``settings.xml``, ``run.info``) where CoMPASS keeps it, or None."""
    run = Path(data_root) / str(run_id)
    for folder in (run, data_dir, Path(data_root), Path(data_root).parent):
        if (folder / name).is_file():
            return folder / name
    if name == "settings.xml":
        others = sorted(run.glob("*settings.xml")) if run.is_dir() else []
        if len(others) == 1:
            return others[0]
    return None


def read_settings(info: RunInfo, data_root: Path, run_id: str, data_dir: Path) -> None:
    """Fill ``info`` from the run's ``settings.xml`` and ``run.info`` (those found).

    A run of several boards (``info.boards``, from the files) gets each board's own
    ``<board>``: by serial, else by position (CoMPASS numbers its boards in the order
    it lists them); the run level takes the first board's."""
    xml = find_settings(data_root, run_id, data_dir, "settings.xml")
    if xml is not None:
        _read_xml(info, xml, run_id)
    run_info = find_settings(data_root, run_id, data_dir, "run.info")
    if run_info is not None:
        _read_run_info(info, run_info, run_id)


def board_entry(one: RunInfo) -> dict[str, Any]:
    """``one`` (a board's RunInfo) as an entry of ``RunInfo.boards``."""
    return {**{k: getattr(one, k) for k in BOARD_FIELDS if k in one.sources},
            "channels": one.channels,
            "sources": {k: v for k, v in one.sources.items()
                        if k in BOARD_FIELDS or k.startswith("channels.")}}


def _text(node: ET.Element | None, tag: str) -> str | None:
    found = node.find(tag) if node is not None else None
    return found.text.strip() if found is not None and found.text else None


def _entries(node: ET.Element | None) -> dict[str, str]:
    """``{key: value}`` of the ``<entry><key/><value>...`` children of ``node`` (nested
    ``<value><value>`` as board parameters hold them); ``key + "/udm"``: the unit its
    ``<descriptor>`` states, where it has one."""
    out = {}
    if node is None:
        return out
    for entry in node.findall("entry"):
        key = _text(entry, "key")
        if key not in _KEYS:
            continue
        value = entry.find("value")
        inner = value.find("value") if value is not None else None
        text = (inner if inner is not None else value)
        if text is not None and text.text is not None:
            out[key] = text.text.strip()
        udm = _text(value.find("descriptor"), "udm") if value is not None else None
        if udm:
            out[key + "/udm"] = udm
    return out


def _values(params: dict[str, str], dt_ns: float | None, where: str, src: str,
            adc_threshold: bool = False) -> dict[str, Any]:
    """The RunInfo fields of one parameter set (board or channel); ``where`` for errors;
    ``adc_threshold``: the board's threshold is in ADC above the baseline."""
    out: dict[str, Any] = {}

    def number(key: str) -> float:
        try:
            return float(params[key])
        except ValueError:
            raise FormatError(f"{src}: {where} {key}={params[key]!r} is not a number") from None

    if dt_ns:
        if "SRV_PARAM_RECLEN" in params:
            out["record_length"] = int(round(number("SRV_PARAM_RECLEN") / dt_ns))
        if "SRV_PARAM_CH_PRETRG" in params:
            out["pretrigger_samples"] = int(round(number("SRV_PARAM_CH_PRETRG") / dt_ns))
    if "SRV_PARAM_CH_POLARITY" in params:
        out["polarity"] = "positive" if "POSITIVE" in params["SRV_PARAM_CH_POLARITY"].upper() else "negative"
    if adc_threshold and _THRESHOLD in params:
        out["threshold"] = number(_THRESHOLD)
    gates = {name: number(key) for key, name in _GATES.items() if key in params}
    if gates:
        out["gates"] = gates
    if any(k in params for k in _CAL):
        out["calibration"] = tuple(number(k) if k in params else (1.0 if i == 1 else 0.0)
                                   for i, k in enumerate(_CAL))
    if params.get(_UNIT):
        out["energy_unit"] = params[_UNIT]
    return out


def _read_xml(info: RunInfo, path: Path, run_id: str) -> None:
    src = f"run {run_id!r}: settings file {path}"
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise FormatError(f"{src}: not readable XML ({exc})") from None
    elems = root.findall("board")
    if not elems:
        logger.warning(f"{src}: no <board> element; its settings are not used")
        return
    info.files.append(str(path))
    for tag, field in (("runId", "run_id"),):
        value = _text(root.find("acquisitionMemento"), tag)
        if value:
            info.notes.append(f"{path.name}: {field} {value}")
    serials = [_text(b, "serialNumber") for b in elems]
    if not info.boards and len(elems) > 1 and info.serial is None:
        # names without serials: the records' board is CoMPASS's board number
        for b in range(len(elems)):
            info.boards[b] = board_entry(info if b == 0 else RunInfo(format=info.format))
    if not info.boards:
        board = elems[0]
        if info.serial is not None:
            match = [b for b, s in zip(elems, serials, strict=True) if s == str(info.serial)]
            if not match:
                logger.warning(f"{src}: no board with serial {info.serial} (boards "
                               f"{', '.join(map(str, serials))}); its settings are not used")
                info.files.pop()
                return
            board = match[0]
        _read_board(info, board, path.name, src)
        return
    for i, b in enumerate(list(info.boards)):
        one = info.for_board(b)
        if one.serial is not None:
            match = [e for e, s in zip(elems, serials, strict=True) if s == str(one.serial)]
        else:
            match = [elems[b]] if 0 <= b < len(elems) else []
        if match:
            _read_board(one, match[0], path.name, src)
        else:
            logger.warning(f"{src}: no <board> for board {b}"
                           f"{f' (serial {one.serial})' if one.serial is not None else ''} of the "
                           f"files (boards {', '.join(map(str, serials))}); its records take its "
                           "board model's values")
        info.boards[b] = board_entry(one)
        if i == 0:  # the run's first board: its values stand at the run level too
            for key in BOARD_FIELDS:
                if key in one.sources:
                    info.set(key, getattr(one, key), one.sources[key])
            info.channels = one.channels
            info.sources.update({k: v for k, v in one.sources.items() if k.startswith("channels.")})


def _read_board(info: RunInfo, board: ET.Element, name: str, src: str) -> None:
    """Fill ``info`` (the run's, or one board's) from one ``<board>`` element."""
    model = _text(board, "modelName")
    if model and info.model and model.upper() != info.model.upper():
        logger.warning(f"{src}: board model {model} differs from {info.model} of the file names; "
                       "the settings' is used")
    info.set("model", model, f"{name} <modelName>")
    serial = _text(board, "serialNumber")
    if serial and serial.isdigit():
        info.set("serial", int(serial), f"{name} <serialNumber>")
    bits = _text(board, "adcBitCount")
    if bits and bits.isdigit():
        info.set("adc_bits", int(bits), f"{name} <adcBitCount>")
    sample_ps = _text(board, "sampleTime")
    if sample_ps:
        try:
            info.set("dt_ns", float(sample_ps) / 1000.0, f"{name} <sampleTime> (ps)")
        except ValueError:
            raise FormatError(f"{src}: <sampleTime> {sample_ps!r} is not a number") from None
    file_src = info.sources.get("record_length", "")
    file_length = info.record_length if file_src.startswith("file") else None
    params = _entries(board.find("parameters"))
    adc_threshold = ("PSD" in (_text(board, "dppType") or "").upper()
                     and params.get(_THRESHOLD + "/udm", "").upper() == "LSB")
    values = _values(params, info.dt_ns, "board parameter", src, adc_threshold)
    for key, value in values.items():
        info.set(key, value, f"{name} board parameters")
    for ch in board.findall("channel"):
        idx = _text(ch, "index")
        if idx is None or not idx.isdigit():
            continue
        over = _values(_entries(ch.find("values")), info.dt_ns, f"channel {idx}", src,
                       adc_threshold)
        if over:
            info.channels.setdefault(int(idx), {}).update(over)
            for key in over:
                info.sources.setdefault(f"channels.{key}", f"{name} <channel> values")
    if file_length is not None and info.record_length is not None:
        lengths = {info.record_length, *(c.get("record_length", info.record_length)
                                         for c in info.channels.values())}
        if all(abs(n - file_length) > RECORD_LENGTH_SLACK for n in lengths):
            set_length = sorted(lengths)[0]
            raise FormatError(
                f"{src}: contradicts the files: SRV_PARAM_RECLEN gives {set_length} samples "
                f"at {info.dt_ns} ns, the files hold {file_length} "
                f"({file_src}); "
                "settings of another run?"
            )
        info.record_length = file_length
        info.sources["record_length"] = file_src


def parse_time(text: str) -> _dt.datetime:
    """A ``run.info`` time (``2025/03/19 09:47:46.724-0400``) as an aware datetime."""
    text = text.strip()
    for fmt in ("%Y/%m/%d %H:%M:%S.%f%z", "%Y/%m/%d %H:%M:%S%z", "%Y/%m/%d %H:%M:%S.%f",
                "%Y/%m/%d %H:%M:%S"):
        try:
            t = _dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        return t if t.tzinfo else t.replace(tzinfo=_dt.UTC)
    raise ValueError(f"time {text!r} is not in the form YYYY/MM/DD HH:MM:SS.fff+HHMM")


def _read_run_info(info: RunInfo, path: Path, run_id: str) -> None:
    src = f"run {run_id!r}: file {path}"
    info.files.append(str(path))
    try:
        lines = path.read_text(encoding="latin-1").splitlines()
    except OSError as exc:
        raise FormatError(f"{src}: not readable ({exc})") from None
    cal: dict[int, dict[int, float]] = {}
    for no, line in enumerate(lines, 1):
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key in ("time.start", "time.stop"):
            try:
                t = parse_time(value)
            except ValueError as exc:
                raise FormatError(f"{src}, line {no}: {key}: {exc}") from None
            field = "start_time" if key == "time.start" else "stop_time"
            info.set(field, t.isoformat(), f"run.info {key}")
            if field == "start_time":
                epoch = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
                info.time_offset_ns = (t - epoch) // _dt.timedelta(microseconds=1) * 1000
                info.sources["time_offset_ns"] = "run.info time.start"
        elif key.startswith("board.") and key.endswith(".calibration.energy.uom") and value:
            serial = key.split(".")[1].rsplit("-", 1)[-1]  # as the coefficients': this board's
            if info.energy_unit is None and (info.serial is None or serial == str(info.serial)):
                info.set("energy_unit", value, "run.info calibration.energy.uom")
        elif key.startswith("board.") and ".calibration.energy.c" in key:
            parts = key.split(".")  # board, <link>-<family>-<serial>, <ch>, calibration, energy, c<i>
            ident, ch, coef = parts[1], parts[2], parts[-1]
            serial = ident.rsplit("-", 1)[-1]
            serial = int(serial) if serial.isdigit() else None
            try:
                cal.setdefault(serial, {}).setdefault(int(ch), {})[int(coef[1:])] = float(value)
            except ValueError:
                raise FormatError(f"{src}, line {no}: {key}={value!r} is not a number") from None
    targets = [(info.serial, info.channels, info.sources)]
    if info.boards:  # each board its own serial's; the run level is the first board's
        targets += [(b.get("serial"), b["channels"], b["sources"]) for b in info.boards.values()]
    for serial, channels, sources in targets:
        for key, by_channel in cal.items():
            if serial is not None and key is not None and key != serial:
                continue
            for ch, coefs in by_channel.items():
                channels.setdefault(ch, {})["calibration"] = tuple(
                    coefs.get(i, 1.0 if i == 1 else 0.0) for i in range(max(coefs) + 1)
                )
                sources.setdefault("channels.calibration", "run.info calibration.energy.c0..c2")
