"""Synthetic digitizer runs with known truth, written in the real file formats.

:func:`generate_run` writes ``<data_root>/<run_id>/RAW/`` (``UNFILTERED/`` for
CoMPASS 1.x) in one of the formats of :data:`FORMATS` (see docs/formats.md)
and the truth *beside* it: ``<data_root>/<run_id>/truth.npy`` (one row per
pulse, ``TRUTH_DTYPE``) and ``truth.json`` (the generation parameters). The
records come from the pulse model (:mod:`.model`); each format's writer
(:mod:`.compass_csv`, :mod:`.compass_bin`, :mod:`.v1725`) is independent of
the reader of that format, so that a test reading what it wrote checks both.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .caen_raw import write_caen_raw
from .compass_bin import write_compass_bin
from .compass_csv import (
    COLUMNS_1X,
    COLUMNS_2X,
    HEADER,
    LAYOUTS,
    LEGACY_HEADER,
    format_vx2730_rows,
    write_vx2730,
)
from .model import TRUTH_DTYPE, PulseModel, synthesize
from .shapes import SHAPE_TRUTH_DTYPE, psd_figure_of_merit, scintillator, scintillator_run
from .v1725 import write_v1725
from .wavedump import write_wavedump

__all__ = [
    "COLUMNS_1X",
    "COLUMNS_2X",
    "FORMATS",
    "HEADER",
    "LAYOUTS",
    "LEGACY_HEADER",
    "SHAPES",
    "SHAPE_TRUTH_DTYPE",
    "TRUTH_DTYPE",
    "Format",
    "PulseModel",
    "format_vx2730_rows",
    "generate_run",
    "generate_runs",
    "load_truth",
    "psd_figure_of_merit",
    "register_format",
    "scintillator",
    "scintillator_run",
    "synthesize",
    "write_compass_bin",
    "write_caen_raw",
    "write_v1725",
    "write_vx2730",
    "write_wavedump",
]


@dataclass(frozen=True)
class Format:
    """A format :func:`generate_run` writes: its sample period, the data folder of a layout,
    and ``write(folder, records, run_id, options)`` (``options``: the writer's keywords)."""

    name: str
    sample_ns: float
    write: Callable[[Path, np.ndarray, str, dict], None]
    folder: Callable[[str], str] = lambda layout: "RAW"
    even_samples: bool = False
    list_mode: bool = False  # can write runs without waveforms (samples=False)


FORMATS: dict[str, Format] = {}


def register_format(fmt: Format) -> None:
    """Make ``fmt`` available to :func:`generate_run` and ``waveform-analysis generate``."""
    FORMATS[fmt.name] = fmt


def _csv(default_layout: str) -> Callable:
    def write(raw: Path, st: np.ndarray, run_id: str, opt: dict) -> None:
        write_vx2730(raw, st, n_segments=opt["n_segments"], legacy_header=opt["legacy_header"],
                     hex_flags=opt["hex_flags"], layout=opt["layout"] or default_layout,
                     columns=opt["columns"], run_name=str(run_id), flags=opt["flags"],
                     samples=opt["samples"], **_models(opt))

    return write


def _bin(raw: Path, st: np.ndarray, run_id: str, opt: dict) -> None:
    write_compass_bin(raw, st, n_segments=opt["n_segments"], run_name=str(run_id),
                      flags=opt["flags"], samples=opt["samples"],
                      version="1.x" if opt["layout"] == "compass1" else "2.x",
                      single_file=opt["single_file"], **_models(opt))


def _models(opt: dict) -> dict:
    """The writer's ``model`` keyword: the ``models`` option (one board model per board)."""
    return {} if opt["models"] is None else {"model": tuple(opt["models"])}


def _compass_folder(layout: str) -> str:
    return "UNFILTERED" if layout == "compass1" else "RAW"


register_format(Format("vx2730", 2, _csv("generator"), _compass_folder, list_mode=True))
register_format(Format("compass-csv", 2, _csv("compass2"), _compass_folder, list_mode=True))
register_format(Format("compass-bin", 2, _bin, _compass_folder, list_mode=True))
register_format(Format(
    "v1725", 4, lambda raw, st, run_id, opt: write_v1725(raw, st, n_segments=opt["n_segments"],
                                                         board=None),
    even_samples=True,
))
register_format(Format(
    "wavedump", 2, lambda folder, st, run_id, opt: write_wavedump(folder, st), lambda layout: ".",
))
register_format(Format(
    "wavedump-ascii", 2, lambda folder, st, run_id, opt: write_wavedump(folder, st, kind="ascii"),
    lambda layout: ".",
))
register_format(Format(
    "caen-raw", 2, lambda raw, st, run_id, opt: write_caen_raw(raw, st,
                                                               n_segments=opt["n_segments"]),
    even_samples=True,
))

SHAPES = ("pulses", "scintillator")  # the pulse model's records, or scintillator_run's


def _scintillator_names() -> set[str]:
    """The keywords :func:`generate_run` passes on to :func:`scintillator`."""
    import inspect

    return (set(inspect.signature(scintillator).parameters) - {"n", "seed"}) | {"n_waveforms"}


_WRITER_OPTIONS = {
    "n_segments": 1, "legacy_header": False, "hex_flags": True, "layout": None, "columns": None,
    "flags": 0x4000, "samples": True, "single_file": False, "delay_ns": None, "models": None,
}


def generate_run(
    data_root: Path | str,
    run_id: str,
    *,
    fmt: str = "vx2730",
    n_channels: int = 2,
    n_boards: int = 1,
    seed: int = 0,
    shape: str = "pulses",
    **options,
) -> Path:
    """Write a synthetic run; returns ``<data_root>/<run_id>``.

    ``n_channels`` per board, ``n_boards`` boards (``n_boards * n_channels <= 16``,
    board-major in the records); ``n_waveforms`` (per channel) and the other
    :class:`PulseModel` parameters as keywords. ``fmt`` is one of :data:`FORMATS`:
    ``"vx2730"`` (CoMPASS CSV, our generator's names ``DataR_CH<ch>@V2730_<seg>.CSV``,
    2 ns), ``"compass-csv"`` (CoMPASS 2.x names), ``"compass-bin"`` (CoMPASS BIN 2.x,
    1.x with ``layout="compass1"``) or ``"v1725"`` (DAW binary, 4 ns). The truth goes
    to ``truth.npy`` / ``truth.json`` beside the data folder; ``truth["record_i"]``
    indexes the reader's st_waveforms.

    Writer options: ``n_segments``; CSV ``layout`` (``"generator"``, ``"compass2"``
    in ``RAW/``, ``"compass1"`` in ``UNFILTERED/``), ``columns`` (see
    :func:`write_vx2730`), ``legacy_header``, ``hex_flags``; ``flags`` (FLAGS of
    every record); ``samples=False`` for list mode (CoMPASS CSV and BIN);
    ``single_file=True`` (BIN: all channels in one file, as CoMPASS's SINGLEFILE);
    ``delay_ns`` (CoMPASS formats, whose channels carry their own time tags): one delay per
    channel, added to its time tags (``[0, 37.5]``: a stop detector 37.5 ns after the start
    detector, a time-of-flight run).
    ``models`` (CoMPASS CSV and BIN: one board model per board, in the file names).

    ``shape="scintillator"``: the records are :func:`scintillator_run`'s (one
    scintillator pulse per record, built from photo-electrons), the other keywords
    :func:`scintillator`'s (``n_samples``, ``neutron_fraction``, ``tau_slow``,
    ``afterpulse_prob``, ``drift``, ...); the truth is ``SHAPE_TRUTH_DTYPE``, one row
    per record.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown synthetic format {fmt!r}; use one of {', '.join(FORMATS)}")
    form = FORMATS[fmt]
    if n_boards < 1 or n_boards * n_channels > 16:
        raise ConfigError(f"need 1 <= n_boards and n_boards * n_channels <= 16, got {n_boards}")
    writer = {k: options.pop(k, v) for k, v in _WRITER_OPTIONS.items()}
    if not writer["samples"] and not form.list_mode:
        raise ConfigError(f"format {fmt!r} has no list mode (samples=False)")
    if shape not in SHAPES:
        raise ConfigError(f"unknown shape {shape!r}; use one of {', '.join(SHAPES)}")
    names = PulseModel.names() if shape == "pulses" else _scintillator_names()
    unknown = set(options) - names
    if unknown:
        raise ConfigError(f"generate_run: unknown options for shape {shape!r}: "
                          f"{', '.join(sorted(unknown))}")
    if shape == "pulses":
        model = PulseModel(**{"sample_ns": form.sample_ns, **options,
                              "n_channels": n_channels * n_boards, "seed": seed})
        n_samples = model.n_samples
        params = model.to_dict()
    else:
        params = {"dt": form.sample_ns, "n_waveforms": 1000, "n_samples": 200, **options,
                  "n_channels": n_channels * n_boards, "seed": seed}
        n_samples = params["n_samples"]
    if form.even_samples and n_samples % 2:
        raise ConfigError(f"{fmt} records need an even number of samples, got {n_samples}")
    st, truth = synthesize(model) if shape == "pulses" else scintillator_run(**params)
    if writer["delay_ns"] is not None:
        _delay(st, truth, writer["delay_ns"], fmt)
    if n_boards > 1:
        st["board"] = st["channel"] // n_channels
        st["channel"] %= n_channels
        truth["channel"] %= n_channels
    params = {
        **params, **writer, "fmt": fmt, "shape": shape, "n_channels": n_channels,
        "n_boards": n_boards,
    }
    params["columns"] = None if writer["columns"] is None else list(writer["columns"])
    if writer["models"] is not None and len(writer["models"]) != n_boards:
        raise ConfigError(f"models: one board model per board, got {list(writer['models'])} "
                          f"for {n_boards} boards")
    run_dir = Path(data_root) / str(run_id)
    raw = run_dir / form.folder(writer["layout"] or "")
    raw.mkdir(parents=True, exist_ok=True)
    form.write(raw, st, str(run_id), writer)
    np.save(run_dir / "truth.npy", truth)
    params["n_pulses"] = int(len(truth))
    params["n_records"] = int(len(st))
    params["n_noise_only_records"] = int(len(st) - np.unique(truth["record_i"]).size)
    (run_dir / "truth.json").write_text(json.dumps(params, indent=2, default=list) + "\n")
    return run_dir


def _delay(st: np.ndarray, truth: np.ndarray, delay_ns, fmt: str) -> None:
    """Add ``delay_ns[c]`` to channel ``c``'s time tags (in place), keep the records in time
    order and the truth's ``record_i`` pointing at them."""
    if not FORMATS[fmt].list_mode:
        raise ConfigError(f"delay_ns needs a format whose channels carry their own time tags "
                          f"(vx2730, compass-csv, compass-bin), not {fmt!r}")
    delays = np.atleast_1d(np.asarray(delay_ns, np.float64))
    n_ch = int(st["channel"].max()) + 1 if len(st) else 0
    if delays.ndim != 1 or len(delays) > max(n_ch, 1) or not np.all(np.isfinite(delays)):
        raise ConfigError(f"delay_ns: one finite delay per channel (at most {n_ch}), got {delay_ns!r}")
    ps = np.zeros(max(n_ch, 1), np.int64)
    ps[: len(delays)] = np.rint(delays * 1000).astype(np.int64)
    st["timestamp"] += ps[st["channel"]]
    order = np.argsort(st["timestamp"], kind="stable")
    st[:] = st[order]
    st["time"] = st["timestamp"] // 1000
    new_index = np.empty(len(order), np.int64)
    new_index[order] = np.arange(len(order))
    truth["record_i"] = new_index[truth["record_i"]]


def generate_runs(data_root: Path | str, run_ids, **kw) -> list[Path]:
    """:func:`generate_run` for each id; seeds differ per run unless ``seed`` is a list."""
    seed = kw.pop("seed", 0)
    out = []
    for i, run_id in enumerate(run_ids):
        s = seed[i] if isinstance(seed, list | tuple) else seed + i
        out.append(generate_run(data_root, run_id, seed=s, **kw))
    return out


def load_truth(run_dir: Path | str) -> np.ndarray:
    """The truth table written beside a generated run."""
    return np.load(Path(run_dir) / "truth.npy", allow_pickle=False)
