"""``st_waveforms``: every record of a run as one structured array, with baselines."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..core.plugin import Option, Plugin
from ..dtypes import ADC_MAX_14BIT, st_waveforms_dtype
from ..errors import ConfigError, NoDataError
from ..processing.saturation import saturated
from .raw_files import adapter_for, run_info_for

__all__ = ["StWaveformsPlugin", "adapter_for", "adc_max_for", "baseline_window_for",
           "saturated_by_board"]


def adc_max_for(context, info) -> int:
    """The ``adc_max`` option of ``st_waveforms``, or the run's ADC limit when it is None."""
    try:
        adc_max = context.get_config("st_waveforms", "adc_max")
    except Exception:  # noqa: BLE001 - a context without the st_waveforms plugin
        adc_max = None
    if adc_max is None:
        adc_max = (1 << info.adc_bits) - 1 if info.adc_bits else ADC_MAX_14BIT
    return int(adc_max)


def saturated_by_board(context, info, records: np.ndarray, **kw) -> np.ndarray:
    """:func:`~waveform_analysis.processing.saturation.saturated` of ``records``, each at its
    board's ADC limit (:func:`adc_max_for` of the board's settings)."""
    parts = info.by_board(records["board"])
    if len(parts) == 1:
        return saturated(records, adc_max=adc_max_for(context, parts[0][0]), **kw)
    out = np.zeros(len(records), np.bool_)
    for one, rows in parts:
        out[rows] = saturated(records[rows], adc_max=adc_max_for(context, one), **kw)
    return out


def baseline_window_for(info, baseline_samples: int | np.ndarray, mode: str = "auto") -> dict:
    """The keyword arguments of :func:`~waveform_analysis.processing.baselines.end_window_stats`
    for a run: ``"fixed"``: the first ``baseline_samples``; ``"auto"``: the run's
    pre-trigger less its pre-gate (where its settings state them) or at most
    ``baseline_samples``, ended before each record's first pulse. ``baseline_samples``:
    one value, or one per record (each channel's)."""
    if mode == "fixed":
        return {"baseline_samples": baseline_samples}
    out: dict = {"cap": baseline_samples}
    pre = getattr(info, "pretrigger_samples", None)
    if pre:
        out["pretrigger"] = int(pre)
        gate = (getattr(info, "gates", None) or {}).get("pregate_ns")
        if gate is not None and getattr(info, "dt_ns", None):
            out["pre_gate"] = int(round(gate / info.dt_ns))
    return out


class _EndWindows:
    """Per-record baseline-window and last-window statistics (the first phase of the
    baselines), taken by the staging's callbacks while each block the reader puts is in the
    CPU cache. ``samples(records)``: each record's ``baseline_samples`` (its channel's)."""

    def __init__(self, info, mode: str, samples) -> None:
        self.info, self.mode, self.samples = info, mode, samples
        self.mean = self.rms = self.last = self.ends = self.tail = self.caps = self.nb = None

    def begin(self, n_rows: int) -> None:
        self.mean = np.zeros(n_rows, np.float64)
        self.rms = np.zeros(n_rows, np.float64)
        self.last = np.zeros(n_rows, np.float64)
        self.ends = np.zeros(n_rows, np.int64)
        self.tail = np.zeros(n_rows, np.float32)
        self.caps = np.zeros(n_rows, np.int64)
        self.nb = np.zeros(n_rows, np.int32)

    def block(self, records: np.ndarray, rows: slice) -> None:
        from ..processing.baselines import end_window_stats, window_caps

        nb = self.samples(records)
        self.nb[rows] = nb
        outs = (self.mean[rows], self.rms[rows], self.last[rows], self.ends[rows], self.tail[rows],
                self.caps[rows])
        for info, sel in self.info.by_board(records["board"]):  # each board's pre-trigger
            part, size = (records, nb) if sel is None else (records[sel], nb[sel])
            kw = baseline_window_for(info, size, self.mode)
            got = (*end_window_stats(part, **kw), window_caps(part, **kw))
            for o, g in zip(outs, got, strict=True):
                o[slice(None) if sel is None else sel] = g

    def fixed(self, rows: np.ndarray) -> np.ndarray | None:
        """The fixed windows of ``rows`` for the last phase (None in ``"auto"`` mode)."""
        return self.nb[rows] if self.mode == "fixed" else None


def _channel_dt(context, run_id: str, info):
    """``records -> each one's sample period`` when the channels table sets ``dt_ns`` (a
    channel's entry, else ``default``, else the run's: core/channels.py), else None."""
    from ..core.channels import per_record, table_sets

    source = context.plugins.get("raw_files")
    if source is None or not table_sets(context.config, "dt_ns"):
        return None
    return lambda records: per_record(context, source, "dt_ns", run_id, records, info)


class StWaveformsPlugin(Plugin):
    """Reads the run's files; fills ``baseline`` and ``baseline_rms`` from the baseline window
    and ``tail_rms`` from the record's last 40 samples.

    The window ends before the trigger: at the run's pre-trigger less its
    pre-gate where the settings state them, else after at most
    ``baseline_samples``, and in both cases before the record's first pulse
    found in the data (``baseline_window="fixed"``: the first
    ``baseline_samples``; see :mod:`waveform_analysis.processing.baselines`).
    A record whose window holds a pulse is handled and stays visible: its
    baseline comes from its quiet windows, its ``baseline_rms`` still
    reports the window. ``saturated``
    marks records with a valid sample at 0 or ``adc_max``, or a CoMPASS
    saturation flag (see :mod:`waveform_analysis.saturation`). ``dt`` is the run's
    sample period and ``energy``, ``energy_short``, ``energy_calibrated`` the
    firmware's numbers (NaN where the format has none). A list-mode run (no
    waveforms) is a :class:`NoDataError` that points to ``triggers``.
    """

    provides = "st_waveforms"
    dtype = st_waveforms_dtype(1)  # the samples per record are the run's
    depends_on = ("raw_files",)
    version = "2.3.0"  # 2.1: the baseline window ends before the trigger and first pulse;
    # 2.2: windows cut by a slow swing of low-frequency noise are walked again; 2.3: tail_rms
    options = {
        "baseline_samples": Option(
            default=40,
            type=int,
            minimum=1,
            per_channel=True,
            help="Most samples of the baseline window where the run's settings state no"
            " pre-trigger (the window always ends before the record's first pulse); with"
            " baseline_window='fixed', exactly the first N samples",
        ),
        "baseline_window": Option(
            default="auto",
            type=str,
            choices=("auto", "fixed"),
            help="'auto': the samples before the trigger (the run's pre-trigger less its"
            " pre-gate) and before the record's first pulse; 'fixed': the first"
            " baseline_samples",
        ),
        "adc_max": Option(
            default=None,
            type=(int, type(None)),
            help="Upper ADC limit; a sample at it (or at 0) marks the record saturated"
            " (None: 2^adc_bits - 1 of the run's board, else 2^14 - 1)",
        ),
    }

    def compute(self, context, run_id: str, raw_files: np.ndarray) -> np.ndarray:
        """The whole run in one array (what :meth:`compute_chunks` yields, joined)."""
        from ..core.chunks import RunChunks

        chunks = RunChunks(self.provides, {"raw_files": raw_files}, None, 1 << 62)
        return np.concatenate(list(self.compute_chunks(context, run_id, chunks)))

    def compute_chunks(self, context, run_id: str, chunks) -> Iterator[np.ndarray]:
        """The run in time order, a memory budget of records at a time.

        The adapter puts the records it parses into a staging (memory, or a
        scratch file past the budget) with each record's end-window statistics;
        the run-wide channel statistics then decide which baselines to
        re-judge, and each chunk gets its baselines and saturation on its way out."""
        from ..core.memory import trim_memory
        from ..daq.base import check_has_waveforms, read_run
        from ..daq.staging import RecordStaging
        from ..processing.baselines import channel_levels, finish_baselines, store_baselines
        from ..processing.rows import channel_keys

        (chunk,) = chunks
        files = chunk.inputs["raw_files"]
        adapter, info = run_info_for(context, run_id, files)
        check_has_waveforms(info, run_id)
        ends = _EndWindows(info, context.get_config(self, "baseline_window"),
                           self._samples(context, run_id, info))
        dt_of = _channel_dt(context, run_id, info)
        with RecordStaging(chunks.budget_bytes, chunks.scratch_prefix, ends.block, ends.begin) as staging:
            read_run(adapter, context.data_root, files, run_id, staging, info)
            trim_memory()  # the readers' block buffers
            order = staging.order()
            if order.size == 0:
                raise NoDataError(f"run {run_id!r}: the files of the run hold no records")
            # run-wide statistics in file order (a percentile does not depend on the order),
            # so that no whole-run copy in time order is made; only valid rows count
            kept = None if order.size == staging.n_rows else np.flatnonzero(staging.valid)
            keys = channel_keys(staging.board, staging.channel)
            # the noise a cut window is walked again with, from the channel's spread of
            # baselines: in file order, as successive records of a channel mostly are
            if kept is None:
                low, noise = channel_levels(keys, ends.rms, ends.last, ends.mean)
            else:
                low, noise = np.zeros(staging.n_rows), np.zeros(staging.n_rows)
                low[kept], noise[kept] = channel_levels(keys[kept], ends.rms[kept], ends.last[kept],
                                                        ends.mean[kept])
            del keys, kept
            staging.drop_keys()  # what sorting needed is no longer needed
            ends.last = None
            step = max(1, chunks.budget_bytes // staging.dtype.itemsize)
            for a in range(0, order.size, step):
                rows = order[a : a + step]
                records = staging.gather(rows, last=True, out=chunks.rows(rows.size, staging.dtype))
                rms = ends.rms[rows]
                baseline = ends.mean[rows]
                finish_baselines(records, ends.fixed(rows), baseline, rms, low[rows],
                                 ends.ends[rows], noise[rows], ends.caps[rows])
                store_baselines(records, baseline, rms, ends.tail[rows])
                records["saturated"] = saturated_by_board(context, info, records)
                info.fill_absent(records)
                if dt_of is not None:
                    records["dt"] = dt_of(records)
                yield records
                del records

    def _samples(self, context, run_id: str, info):
        """``records -> each one's baseline_samples``: its channel's (core/channels.py)."""
        from ..core.channels import per_record

        def samples(records: np.ndarray) -> np.ndarray:
            nb = per_record(context, self, "baseline_samples", run_id, records, info)
            if nb is None or nb.size == 0:
                return np.zeros(len(records), np.int64)
            nb = nb.astype(np.int64)
            if nb.min() < 1:
                raise ConfigError(f"baseline_samples must be >= 1, got {int(nb.min())}")
            return nb

        return samples
