"""The CoMPASS adapter: one class for CSV and BIN runs, dispatching on the files found."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..base import DAQAdapter, RunInfo, make_file_table, resolve_dt
from ..models import family
from .files import FOLDERS, LAYOUT_COMPASS1, list_compass_files, parse_name

_PATTERN = ("*CH<ch>@<model>_<serial>_*.CSV|.BIN, SDataR_*.CSV|.BIN, <ch>@<model> #<id>_Data_*.csv|.bin"
            " or *CH<ch>*.CSV")


class CompassAdapter(DAQAdapter):
    """CAEN CoMPASS CSV and BIN, 1.x and 2.x, with or without waveforms (docs/formats.md)."""

    name = "compass"
    looks_for = (
        "CoMPASS CSV/BIN files (CH<ch>@<model>_<serial>_<run>.CSV|.BIN, or SDataR_<run>.CSV|.BIN) "
        "in RAW, UNFILTERED, FILTERED or the run folder"
    )
    default_model: str | None = None  # the board model of a run whose file names name none

    def detect(self, run_dir: Path) -> str | None:
        for name in FOLDERS["auto"]:
            folder = run_dir / name if name != "." else run_dir
            if not folder.is_dir():
                continue
            infos = [(p, parse_name(p.name)) for p in folder.iterdir() if p.is_file()]
            infos = [(p, i) for p, i in infos if i is not None]
            if not infos:
                continue
            where = "the run folder" if name == "." else name
            bins = [p for p, _ in infos if p.suffix.lower() == ".bin"]
            if bins:
                from .bin_reader import bin_version

                return f"CoMPASS {bin_version(bins)} BIN in {where}"
            layout = infos[0][1].layout
            version = "1.x" if layout == LAYOUT_COMPASS1 else "2.x"
            return f"CoMPASS {version} CSV in {where}"
        return None

    def list_files(self, data_root: Path, run_id: str, folder: str = "auto") -> np.ndarray:
        """The run's CSV or BIN files; ``folder`` is "auto" (RAW, UNFILTERED, FILTERED, the run
        folder: the first that exists), "raw" (RAW, else UNFILTERED), "filtered" or "unfiltered"."""
        raw, _, entries = list_compass_files(data_root, run_id, folder)
        return make_file_table(data_root, run_id, raw, entries, _PATTERN)

    def run_info(
        self, data_root: Path, run_id: str, files: np.ndarray, dt_ns: float | None = None
    ) -> RunInfo:
        from .settings import read_settings

        data_root = Path(data_root)
        first = data_root / str(files["path"][0])
        info = RunInfo(format=self.name, folder=first.parent.name)
        name = parse_name(first.name)
        encoding = "bin" if first.suffix.lower() == ".bin" else "csv"
        info.set("encoding", encoding, "file names")
        if name is not None and name.model:
            info.set("model", name.model, f"file name {first.name}")
        if name is not None and name.serial is not None:
            info.set("serial", name.serial, f"file name {first.name}")
        if encoding == "bin":
            from .bin_reader import bin_run_info

            firsts = bin_run_info(info, data_root, files, run_id)
        else:
            from .csv_reader import csv_run_info

            firsts = csv_run_info(info, data_root, files, run_id)
        _board_entries(info, files, firsts)
        read_settings(info, data_root, run_id, first.parent)
        self._complete(info, run_id, dt_ns)
        for b, entry in info.boards.items():  # each board's own model table and dt_ns
            one = self._complete(info.for_board(b), f"{run_id}, board {b}", dt_ns)
            for key in ("model", "adc_bits", "dt_ns"):
                if getattr(one, key) is not None:
                    entry[key] = getattr(one, key)
                    entry["sources"].setdefault(key, one.sources[key])
        if info.calibrated and "energy" in info.energy_fields:
            info.energy_fields = tuple(dict.fromkeys((*info.energy_fields, "energy_calibrated")))
        return info

    def _complete(self, info: RunInfo, run_id: str, dt_ns: float | None) -> RunInfo:
        """The model's sample period and ADC bits where the settings give none, then
        :func:`resolve_dt`."""
        if info.model is None and self.default_model:
            info.set("model", self.default_model, f"adapter {self.name}")
        fam = family(info.model)
        if fam is not None:
            if info.dt_ns is None and fam.dt_ns is not None:
                info.set("dt_ns", fam.dt_ns, f"board model {info.model} ({fam.name} family)")
            if info.adc_bits is None:
                info.set("adc_bits", fam.adc_bits, f"board model {info.model} ({fam.name} family)")
        return resolve_dt(info, run_id, dt_ns)

    def settings_files(self, data_root: Path, run_id: str, files: np.ndarray) -> list[Path]:
        from .settings import find_settings

        data_dir = (Path(data_root) / str(files["path"][0])).parent
        found = (find_settings(data_root, run_id, data_dir, n) for n in ("settings.xml", "run.info"))
        return [p for p in found if p is not None]

    def read_into(self, data_root, files, run_id, sink, info: RunInfo | None = None) -> None:
        if info is None:
            info = self.run_info(data_root, run_id, files)
        if info.encoding == "bin":
            from .bin_reader import read_bin

            read_bin(data_root, files, run_id, sink, info)
        else:
            from .csv_reader import read_csv

            read_csv(data_root, files, run_id, sink, info)


def _board_entries(info: RunInfo, files: np.ndarray, firsts: dict[int, int]) -> None:
    """``info.boards`` of a run whose records come from several boards (``firsts``: the
    records' board of each files' board, as the readers' first records say), each with the
    serial and model its file names give; the board of the run's first file first (its
    values are the run level's)."""
    if len(firsts) < 2:
        return
    from .settings import board_entry

    names = {}
    for f in files:
        names.setdefault(int(f["board"]), Path(str(f["path"])).name)
    order = list(names)
    for b in sorted(firsts, key=lambda b: order.index(firsts[b]) if firsts[b] in order else 0):
        name = names.get(firsts[b])
        parsed = parse_name(name) if name else None
        if name == names[order[0]]:
            one = info
        else:
            one = RunInfo(format=info.format)
            if parsed is not None and parsed.serial is not None:
                one.set("serial", parsed.serial, f"file name {name}")
            if parsed is not None and parsed.model:
                one.set("model", parsed.model, f"file name {name}")
        info.boards[b] = board_entry(one)
        if one is info:
            info.boards[b]["channels"] = {}


class VX2730Adapter(CompassAdapter):
    """CoMPASS files of VX2730 boards (the former default adapter): a run whose names state no
    model is read as a VX2730's, 2 ns per sample."""

    name = "vx2730"
    looks_for = ""
    default_model = "VX2730"
    sample_ns = 2

    def detect(self, run_dir: Path) -> str | None:
        return None  # "compass" recognises these runs
