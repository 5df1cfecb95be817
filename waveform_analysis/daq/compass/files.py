"""Which CoMPASS files (CSV or BIN) make up a run, from their names.

CoMPASS writes one file per (board, channel) (or, with its SINGLEFILE option,
one for every channel, ``SDataR_<run>.CSV|BIN``, whose records name their board
and channel) and cuts it into segments:

* 2.x: ``<run>/RAW/DataR_CH<ch>@<model>_<serial>_<run>.CSV`` (``Data_``,
  ``DataF_`` in ``FILTERED``, ``DataU_``), then ``..._<run>_1.CSV``,
  ``..._<run>_2.CSV``: the first segment has no number. ``.BIN`` alike.
* 1.x: ``<run>/UNFILTERED/<ch>@<model> #<a>-<b>-<serial>_Data_<run>.csv``
  or ``CH<ch>@<model>_<serial>_Data_<run>.csv`` (and ``.bin``).
* SINGLEFILE: ``SDataR_<run>[_<seg>]`` (``SData_``, ``SDataF_``, ``SDataU_``); its
  entries' channel is :data:`SINGLE_CHANNEL` and model and serial come from the settings.
* Any other CSV name holding ``CH<ch>`` (our generator's ``DataR_CH0@V2730_<seg>.CSV``).

The folder read is the first of ``RAW``, ``UNFILTERED``, ``FILTERED`` that
exists (``daq_folder="auto"``), else the run folder itself when it holds
CoMPASS files; ``daq_folder`` names one instead.

Digits at the end of the run name are not segment numbers: the segments of a
channel are the files whose names are one file's name (the first segment)
plus ``_<n>``. When no file is such a first segment (all names end in
``_<n>``, as the generator writes them) the trailing numbers are the
segments. Files that match the pattern but are not used, and gaps in the
segment numbers, are logged as warnings that name them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from ...errors import ConfigError, FormatError, RunNotFoundError

LAYOUT_GENERIC = 0  # *CH<ch>* without a model/serial
LAYOUT_COMPASS1 = 1
LAYOUT_COMPASS2 = 2

FOLDERS = {
    "auto": ("RAW", "UNFILTERED", "FILTERED", "."),  # the first that exists (with files for ".")
    "raw": ("RAW", "UNFILTERED"),
    "filtered": ("FILTERED",),
    "unfiltered": ("UNFILTERED",),
}
EXTENSIONS = (".csv", ".bin")

_V1_RE = re.compile(r"^(\d+)@([A-Za-z0-9]+) #\d+-\d+-(\d+)_Data_", re.IGNORECASE)
_V2_RE = re.compile(r"CH(\d+)@([A-Za-z0-9]+)_(\d+)_", re.IGNORECASE)
_CH_RE = re.compile(r"CH(\d+)", re.IGNORECASE)
_DATA_RE = re.compile(r"^CH\d+@[A-Za-z0-9]+_\d+_Data_", re.IGNORECASE)  # 1.x: CH<c>@<model>_<serial>_Data_
_MODEL_RE = re.compile(r"@([A-Za-z]*\d{4}[A-Za-z]*)", re.IGNORECASE)
_TRAIL_RE = re.compile(r"^(.*)_(\d+)$")
_SINGLE_RE = re.compile(r"^SData[RFU]?_.+", re.IGNORECASE)  # 2.x SINGLEFILE: SDataR_<run>[_<seg>]
SINGLE_CHANNEL = -1  # the channel of a SINGLEFILE file's entries: each record names its own


@dataclass(frozen=True)
class NameInfo:
    """What a file name says: channel, board serial (or None), model (or None) and layout."""

    channel: int
    serial: int | None
    layout: int
    model: str | None = None


def parse_name(name: str) -> NameInfo | None:
    """Channel, serial, model and layout from a CSV or BIN file name; None when it names no
    channel (a BIN name must be CoMPASS's: ``CH<ch>@<model>_<serial>_...`` or 1.x)."""
    lower = name.lower()
    if not lower.endswith(EXTENSIONS):
        return None
    if _SINGLE_RE.match(name):
        return NameInfo(SINGLE_CHANNEL, None, LAYOUT_COMPASS2)
    m = _V1_RE.match(name)
    if m:
        return NameInfo(int(m.group(1)), int(m.group(3)), LAYOUT_COMPASS1, m.group(2).upper())
    m = _V2_RE.search(name)
    if m:
        layout = LAYOUT_COMPASS1 if _DATA_RE.search(name) else LAYOUT_COMPASS2
        return NameInfo(int(m.group(1)), int(m.group(3)), layout, m.group(2).upper())
    m = _CH_RE.search(name)
    if m and lower.endswith(".csv"):
        model = _MODEL_RE.search(name)
        return NameInfo(int(m.group(1)), None, LAYOUT_GENERIC, model and model.group(1).upper())
    return None


def data_dir(data_root: Path | str, run_id: str, folder: str = "auto") -> Path:
    """The run's data folder for ``folder`` (see :data:`FOLDERS`); ``"."`` is the run folder
    itself, taken only when it holds CoMPASS files."""
    try:
        names = FOLDERS[folder]
    except (KeyError, TypeError):
        raise ConfigError(
            f"option daq_folder: unknown folder {folder!r}; use one of {', '.join(FOLDERS)}"
        ) from None
    run_dir = Path(data_root) / str(run_id)
    if not run_dir.is_dir():
        raise RunNotFoundError(f"run {run_id!r}: run folder {run_dir} does not exist")
    for name in names:
        if name == ".":
            if any(parse_name(p.name) for p in run_dir.iterdir() if p.is_file()):
                return run_dir
        elif (run_dir / name).is_dir():
            return run_dir / name
    tried = " or ".join(n for n in names if n != ".")
    also = " (nor CoMPASS files in the run folder itself)" if "." in names else ""
    raise RunNotFoundError(f"run {run_id!r}: no {tried} folder in {run_dir}{also}")


def _series(stems: list[str]) -> list[tuple[int, bool, dict[str, int]]]:
    """Candidate segment series of one channel's files: (size, first unnumbered, {stem: seg})."""
    numbered = {}
    for s in stems:
        m = _TRAIL_RE.match(s)
        if m:
            numbered[s] = (m.group(1), int(m.group(2)))
    present = set(stems)
    out = []
    for s in stems:  # s is the first segment, its followers are s_<n>
        seg = {s: 0}
        seg.update({t: n for t, (b, n) in numbered.items() if b == s and n > 0})
        out.append((len(seg), True, seg))
    for base in {b for b, _ in numbered.values()} - present:  # all numbered
        seg = {t: n for t, (b, n) in numbered.items() if b == base}
        out.append((len(seg), False, seg))
    return out


def _choose(stems: list[str], run_id: str) -> dict[str, int]:
    """The segment series with most files (CoMPASS 2.x naming, then the run's name, wins ties)."""
    return max(
        _series(stems),
        key=lambda c: (c[0], c[1], any(str(run_id) in s for s in c[2]), sorted(c[2])),
    )[2]


def list_compass_files(
    data_root: Path | str, run_id: str, folder: str = "auto"
) -> tuple[Path, str, list[tuple[int, int, int, Path]]]:
    """The run's data folder, its files' extension (``.csv`` or ``.bin``) and their
    (board, channel, segment, path) entries; warns on the files not used.

    A folder holding both CSV and BIN files is read as BIN (CoMPASS writes one
    or the other per run; BIN is the complete one)."""
    raw = data_dir(data_root, run_id, folder)
    found = {ext: [] for ext in EXTENSIONS}
    for p in sorted(raw.iterdir()):
        if p.is_file() and p.suffix.lower() in found:
            found[p.suffix.lower()].append(p)
    ext = ".bin" if any(parse_name(p.name) for p in found[".bin"]) else ".csv"
    if ext == ".bin" and found[".csv"]:
        logger.warning(
            f"run {run_id!r}: {raw.name} holds BIN and CSV files; the BIN files are read"
        )
    groups: dict[tuple[int, int], list[tuple[str, Path]]] = {}
    unused: list[str] = []
    for p in found[ext]:
        info = parse_name(p.name)
        if info is None:
            unused.append(f"{p.name} (names no channel)")
            continue
        board = 0 if info.serial is None else info.serial
        if not -32768 <= board <= 32767:
            raise FormatError(f"run {run_id!r}: file {p.name}: board serial {board} out of range")
        groups.setdefault((board, info.channel), []).append((p.stem, p))
    entries = []
    for (board, channel), files in sorted(groups.items()):
        by_stem = dict(files)
        chosen = _choose(list(by_stem), run_id)
        for stem, path in files:
            if stem in chosen:
                entries.append((board, channel, chosen[stem], path))
            else:
                unused.append(f"{path.name} (not a segment of {min(chosen)})")
        segs = sorted(chosen.values())
        missing = sorted(set(range(segs[-1] + 1)) - set(segs))
        if missing:
            first = min(chosen, key=chosen.get)
            numbered = next(s for s in chosen if chosen[s] > 0)
            base = _TRAIL_RE.match(numbered).group(1)
            suffix = by_stem[numbered].suffix
            shown = ", ".join(f"{m} ({base}_{m}{suffix})" for m in missing[:10])
            shown += " ..." if len(missing) > 10 else ""
            logger.warning(
                f"run {run_id!r}: board {board} channel {channel} ({first}): "
                f"gap in the segment numbers, missing {shown}"
            )
    for what in unused:
        logger.warning(f"run {run_id!r}: file {raw.name}/{what} matches *{ext.upper()} but is not read")
    return raw, ext, entries
