"""Synthetic digitizer runs with known truth, written in the real file formats.

:func:`generate_run` writes ``<data_root>/<run_id>/RAW/`` in the VX2730 CSV or
V1725 binary layout (see docs/formats.md) and the truth *beside* RAW:
``<data_root>/<run_id>/truth.npy`` (one row per pulse, ``TRUTH_DTYPE``) and
``truth.json`` (the generation parameters).

The model: ``n_waveforms`` triggers per channel, every channel recording at
each trigger (same time tag, so channels coincide). A fixed fraction
``noise_only_fraction`` of the records holds baseline and noise only; each
other record holds a trigger pulse near ``trigger_sample`` whose amplitude is
correlated across channels, plus a Poisson number of extra pulses, so that the
mean number of pulses per record is ``pulse_mean``. Pulses are PMT-like and
negative: a Gaussian rise (``rise`` samples) and an exponential tail (``tau``
samples). Pulses in one record are at least ~56 samples apart, so each one is
a separate peak.
"""

from __future__ import annotations

import json
from pathlib import Path

import numba
import numpy as np

from .dtypes import st_waveforms_dtype
from .errors import ConfigError

TRUTH_DTYPE = np.dtype(
    [
        (("Index of the record in the run's st_waveforms", "record_i"), np.int64),
        (("Digitizer channel", "channel"), np.int16),
        (("Sample of the extremum", "position"), np.int32),
        (("First sample where the pulse exceeds 0.5 ADC", "left"), np.int32),
        (("One past the last sample where the pulse exceeds 0.5 ADC", "right"), np.int32),
        (("Extremum of the noise-free pulse, positive [ADC]", "amplitude"), np.float32),
        (("Sum of the noise-free pulse over the record, positive [ADC x samples]", "area"), np.float32),
        (("Exponential tail constant of the pulse [samples]", "tau"), np.float32),
        (("Index in this truth table of the pile-up partner, -1 if none", "partner"), np.int64),
        (("The pulse starts inside the baseline window", "in_baseline"), np.bool_),
        (("A sample of the pulse is clipped at 0 or 2^14 - 1", "clipped"), np.bool_),
    ]
)

HEADER = "BOARD;CHANNEL;TIMETAG;ENERGY;ENERGYSHORT;FLAGS;PROBE_CODE;SAMPLES"
LEGACY_HEADER = "CoMPASS;legacy;export\nBOARD;CHANNEL;TIMETAG;ENERGY;ENERGYSHORT;FLAGS;SAMPLES"

_GUARD = 60  # samples before the first pulse slot (baseline region)
_SLOT = 96  # pulse slot width; offsets within a slot are < _SLOT - 56
_TICK_PS = 4000  # time tags are whole 4 ns ticks so both formats share them


@numba.njit(cache=True)
def _render(wave, rec, tp, amp, rise, tau, sign, truth_pos, truth_left, truth_right, truth_amp,
            truth_area):
    """Add each pulse (Gaussian rise, exponential tail ``tau[k]``) to its record, times ``sign``."""
    ns = wave.shape[1]
    for k in range(rec.size):
        r = rec[k]
        t0 = tp[k]
        a = amp[k]
        tk = tau[k]
        lo = max(0, int(t0 - 6.0 * rise) - 1)
        hi = min(ns, int(t0 + 12.0 * tk) + 2)
        best = -1.0
        bpos = lo
        left = -1
        right = lo
        total = 0.0
        for j in range(lo, hi):
            t = j - t0
            if t < 0:
                v = a * np.exp(-0.5 * (t / rise) ** 2)
            else:
                v = a * np.exp(-t / tk)
            wave[r, j] += sign * v
            total += v
            if v > best:
                best = v
                bpos = j
            if v > 0.5:
                if left < 0:
                    left = j
                right = j + 1
        truth_pos[k] = bpos
        truth_left[k] = max(left, lo)
        truth_right[k] = right
        truth_amp[k] = best
        truth_area[k] = total


@numba.njit(cache=True)
def _clipped(wave, rec, left, right, lo, hi, out):
    """Whether any sample of ``[left, right)`` of each pulse's record is outside [lo, hi]."""
    for k in range(rec.size):
        c = False
        for j in range(left[k], right[k]):
            v = wave[rec[k], j]
            if v <= lo or v >= hi:
                c = True
                break
        out[k] = c


def _log_uniform(rng: np.random.Generator, lo_hi: tuple[float, float], n: int) -> np.ndarray:
    lo, hi = lo_hi
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


def _check_hard_regime(tau_range, pileup_fraction, pileup_gap, baseline_pulse_fraction,
                       baseline_window, polarity) -> None:
    if tau_range is not None and not (0 < tau_range[0] <= tau_range[1]):
        raise ConfigError(f"tau_range must be (lo, hi) with 0 < lo <= hi, got {tau_range!r}")
    for name, f in (("pileup_fraction", pileup_fraction),
                    ("baseline_pulse_fraction", baseline_pulse_fraction)):
        if not 0.0 <= f <= 1.0:
            raise ConfigError(f"{name} must be in [0, 1], got {f}")
    if not (0 < pileup_gap[0] <= pileup_gap[1]):
        raise ConfigError(f"pileup_gap must be (lo, hi) samples with 0 < lo <= hi, got {pileup_gap!r}")
    if baseline_window < 5:
        raise ConfigError(f"baseline_window must be >= 5 samples, got {baseline_window}")
    if polarity not in ("negative", "positive"):
        raise ConfigError(f"unknown polarity {polarity!r}; use 'negative' or 'positive'")


def synthesize(
    *,
    n_channels: int = 2,
    n_waveforms: int = 1000,
    n_samples: int = 800,
    noise_sigma: float = 3.0,
    baseline: float = 15000.0,
    pulse_mean: float = 1.5,
    noise_only_fraction: float = 0.2,
    amplitude_range: tuple[float, float] = (20.0, 1000.0),
    rise: float = 1.0,
    tau: float = 4.0,
    trigger_sample: int | None = None,
    sample_ns: int = 2,
    seed: int = 0,
    tau_range: tuple[float, float] | None = None,
    pileup_fraction: float = 0.0,
    pileup_gap: tuple[float, float] = (5.0, 30.0),
    baseline_pulse_fraction: float = 0.0,
    baseline_window: int = 40,
    polarity: str = "negative",
) -> tuple[np.ndarray, np.ndarray]:
    """Waveforms and truth in memory: ``(st_waveforms, truth)``.

    ``st_waveforms`` is sorted by time then channel (the readers' order), with
    ``baseline`` left 0.0 as the readers leave it; ``truth`` is ``TRUTH_DTYPE``
    sorted by (record_i, position).

    The hard regime, off by default (the defaults give the same records as
    before these options existed):

    * ``tau_range=(lo, hi)``: each pulse's tail constant is drawn uniformly
      from it (samples) instead of ``tau``;
    * ``pileup_fraction``: that fraction of trigger pulses gets a partner
      ``pileup_gap`` samples later (uniform), with its own amplitude; the
      two truth rows name each other in ``partner``;
    * ``baseline_pulse_fraction``: that fraction of records gets one more
      pulse starting inside the first ``baseline_window`` samples
      (``in_baseline`` in the truth);
    * ``polarity="positive"``: pulses go up; with a ``baseline`` near 0 or
      near 2^14 - 1 and large amplitudes, samples clip at the ADC's limits
      (0 and 2^14 - 1; ``clipped`` in the truth).

    Isolated pulses (one per record, for scoring a peak finder): ``pulse_mean=1``,
    ``noise_only_fraction=0``.
    """
    if n_channels < 1 or n_channels > 16 or n_waveforms < 1 or n_samples < 1:
        raise ConfigError("need 1-16 channels, at least one waveform and one sample")
    if not 0.0 <= noise_only_fraction <= 1.0:
        raise ConfigError(f"noise_only_fraction must be in [0, 1], got {noise_only_fraction}")
    _check_hard_regime(tau_range, pileup_fraction, pileup_gap, baseline_pulse_fraction,
                       baseline_window, polarity)
    sign = -1.0 if polarity == "negative" else 1.0
    rng = np.random.default_rng(seed)
    n_rec = n_channels * n_waveforms
    # trigger times: whole 4 ns ticks, ~100 us apart
    gaps = rng.exponential(25_000.0, n_waveforms).astype(np.int64) + 1000
    ticks = 250 + np.cumsum(gaps)
    st = np.zeros(n_rec, dtype=st_waveforms_dtype(n_samples))
    st["timestamp"] = np.repeat(ticks * _TICK_PS, n_channels)
    st["time"] = st["timestamp"] // 1000
    st["channel"] = np.tile(np.arange(n_channels, dtype=np.int16), n_waveforms)
    st["dt"] = sample_ns
    st["length"] = n_samples

    wave = rng.standard_normal((n_rec, n_samples), dtype=np.float32)
    wave *= noise_sigma
    wave += (baseline + 20.0 * st["channel"]).astype(np.float32)[:, None]

    # pulse slots
    n_slots = max(0, (n_samples - _GUARD - 40) // _SLOT)
    if n_slots > 0:
        if trigger_sample is None:
            trig_slot = min(1, n_slots - 1)
        else:
            trig_slot = int(np.clip((trigger_sample - _GUARD) // _SLOT, 0, n_slots - 1))
        noise_only = np.zeros(n_rec, bool)
        noise_only[rng.permutation(n_rec)[: int(round(noise_only_fraction * n_rec))]] = True
        lam = max(0.0, pulse_mean / max(1e-9, 1.0 - noise_only_fraction) - 1.0)
        n_extra = np.minimum(rng.poisson(lam, n_rec), n_slots - 1)
        n_extra[noise_only] = 0
        # choose distinct non-trigger slots for the extra pulses
        keys = rng.random((n_rec, n_slots))
        keys[:, trig_slot] = 2.0
        slot_rank = np.argsort(keys, axis=1)
        take = np.arange(n_slots)[None, :] < n_extra[:, None]
        extra_rec, extra_rank = np.nonzero(take)
        extra_slot = slot_rank[extra_rec, extra_rank]
        trig_rec = np.nonzero(~noise_only)[0]
        rec = np.concatenate([trig_rec, extra_rec])
        slot = np.concatenate([np.full(trig_rec.size, trig_slot), extra_slot])
        # trigger pulses: common event time and amplitude scale, channel jitter
        ev = trig_rec // n_channels
        ev_offset = rng.uniform(10.0, 20.0, n_waveforms)
        lo_a, hi_a = amplitude_range
        ev_scale = np.exp(rng.uniform(np.log(lo_a), np.log(hi_a), n_waveforms))
        trig_tp = ev_offset[ev] + rng.normal(0.0, 0.5, trig_rec.size)
        trig_amp = ev_scale[ev] * np.exp(rng.normal(0.0, 0.2, trig_rec.size))
        extra_tp = rng.uniform(2.0, _SLOT - 58.0, extra_rec.size)
        extra_amp = np.exp(rng.uniform(np.log(lo_a), np.log(hi_a), extra_rec.size))
        tp = _GUARD + slot * _SLOT + np.concatenate([trig_tp, extra_tp])
        amp = np.clip(np.concatenate([trig_amp, extra_amp]), lo_a, 1.2 * hi_a)
    else:
        rec = np.zeros(0, np.int64)
        tp = np.zeros(0, np.float64)
        amp = np.zeros(0, np.float64)
        trig_rec = rec
    # hard-regime additions, drawn after everything above so the defaults are unchanged
    partner = np.full(rec.size, -1, np.int64)
    in_base = np.zeros(rec.size, bool)
    if pileup_fraction > 0 and trig_rec.size:
        first = np.flatnonzero(rng.random(trig_rec.size) < pileup_fraction)
        second = rec.size + np.arange(first.size)
        partner[first] = second
        partner = np.concatenate([partner, first])
        rec = np.concatenate([rec, rec[first]])
        tp = np.concatenate([tp, tp[first] + rng.uniform(*pileup_gap, first.size)])
        amp = np.concatenate([amp, _log_uniform(rng, amplitude_range, first.size)])
        in_base = np.concatenate([in_base, np.zeros(first.size, bool)])
    if baseline_pulse_fraction > 0:
        hit = np.flatnonzero(rng.random(n_rec) < baseline_pulse_fraction)
        bw = min(baseline_window, n_samples)
        rec = np.concatenate([rec, hit])
        tp = np.concatenate([tp, rng.uniform(2.0, max(2.0, bw - 3.0), hit.size)])
        amp = np.concatenate([amp, _log_uniform(rng, amplitude_range, hit.size)])
        partner = np.concatenate([partner, np.full(hit.size, -1, np.int64)])
        in_base = np.concatenate([in_base, np.ones(hit.size, bool)])
    n_p = rec.size
    taus = np.full(n_p, float(tau)) if tau_range is None else rng.uniform(*tau_range, n_p)
    truth = np.zeros(n_p, dtype=TRUTH_DTYPE)
    if n_p:
        pos = np.zeros(n_p, np.int32)
        left = np.zeros(n_p, np.int32)
        right = np.zeros(n_p, np.int32)
        tamp = np.zeros(n_p, np.float32)
        tarea = np.zeros(n_p, np.float32)
        _render(wave, rec.astype(np.int64), tp.astype(np.float64), amp.astype(np.float64),
                float(rise), taus.astype(np.float64), sign, pos, left, right, tamp, tarea)
        clipped = np.zeros(n_p, bool)
        _clipped(wave, rec.astype(np.int64), left, right, 0.0, 16383.0, clipped)
        truth["record_i"] = rec
        truth["channel"] = st["channel"][rec]
        truth["position"] = pos
        truth["left"] = left
        truth["right"] = right
        truth["amplitude"] = tamp
        truth["area"] = tarea
        truth["tau"] = taus
        truth["in_baseline"] = in_base
        truth["clipped"] = clipped
        order = np.lexsort((truth["position"], truth["record_i"]))
        new_index = np.empty(n_p, np.int64)
        new_index[order] = np.arange(n_p)
        truth["partner"] = np.where(partner >= 0, new_index[np.maximum(partner, 0)], -1)
        truth = truth[order]
    np.rint(wave, out=wave)
    np.clip(wave, 0, 16383, out=wave)
    st["wave"] = wave.astype(np.int16)
    return st, truth


# ---------------------------------------------------------------- writers


@numba.njit(cache=True)
def _put_int(out, p, v):
    if v < 0:
        out[p] = 45
        p += 1
        v = -v
    if v == 0:
        out[p] = 48
        return p + 1
    n = 0
    t = v
    while t > 0:
        t //= 10
        n += 1
    q = p + n - 1
    while v > 0:
        out[q] = 48 + v % 10
        v //= 10
        q -= 1
    return p + n


@numba.njit(cache=True)
def _put_hex(out, p, v):
    out[p] = 48
    out[p + 1] = 120
    p += 2
    if v == 0:
        out[p] = 48
        return p + 1
    n = 0
    t = v
    while t > 0:
        t >>= 4
        n += 1
    q = p + n - 1
    while v > 0:
        d = v & 15
        out[q] = 48 + d if d < 10 else 87 + d
        v >>= 4
        q -= 1
    return p + n


_COLUMN_KIND = {"BOARD": 0, "CHANNEL": 1, "TIMETAG": 2, "ENERGY": 3, "ENERGYSHORT": 4,
                "FLAGS": 5, "PROBE_CODE": 6}  # fmt: skip
COLUMNS_2X = ("BOARD", "CHANNEL", "TIMETAG", "ENERGY", "ENERGYSHORT", "FLAGS", "PROBE_CODE")
COLUMNS_1X = ("TIMETAG", "ENERGY", "ENERGYSHORT", "FLAGS")
LAYOUTS = ("generator", "compass2", "compass1")


@numba.njit(cache=True)
def _format_rows(kinds, board, channel, timetag, energy, flags, hex_flags, wave, length, out):
    p = 0
    for i in range(wave.shape[0]):
        for c in range(kinds.size):
            if c > 0:
                out[p] = 59
                p += 1
            k = kinds[c]
            if k == 0:
                p = _put_int(out, p, np.int64(board[i]))
            elif k == 1:
                p = _put_int(out, p, np.int64(channel[i]))
            elif k == 2:
                p = _put_int(out, p, np.int64(timetag[i]))
            elif k == 3:
                p = _put_int(out, p, np.int64(energy[i]))
            elif k == 5:
                if hex_flags:
                    p = _put_hex(out, p, np.int64(flags[i]))
                else:
                    p = _put_int(out, p, np.int64(flags[i]))
            elif k == 6:
                p = _put_int(out, p, np.int64(1))
            else:
                p = _put_int(out, p, np.int64(0))
        for j in range(length[i]):
            out[p] = 59
            p = _put_int(out, p + 1, np.int64(wave[i, j]))
        out[p] = 10
        p += 1
    return p


def format_vx2730_rows(
    records: np.ndarray,
    *,
    hex_flags: bool = True,
    flags: int | np.ndarray = 0x4000,
    columns: tuple[str, ...] = COLUMNS_2X,
) -> bytes:
    """CSV data lines (no header) for ``records`` (st_waveforms fields).

    ``columns`` are the fixed columns before the samples, in file order (any of
    BOARD, CHANNEL, TIMETAG, ENERGY, ENERGYSHORT, FLAGS, PROBE_CODE); ``flags``
    is one FLAGS value for every row or one per row.
    """
    n = len(records)
    try:
        kinds = np.array([_COLUMN_KIND[c.upper()] for c in columns], np.int64)
    except KeyError as exc:
        raise ConfigError(f"unknown CSV column {exc.args[0]!r}; use {', '.join(_COLUMN_KIND)}") from None
    if 2 not in kinds:
        raise ConfigError("the CSV columns must include TIMETAG")
    wave = np.ascontiguousarray(records["wave"])
    length = np.minimum(records["length"], wave.shape[1]).astype(np.int64)
    cap = int(n * (7 * wave.shape[1] + 150)) + 16
    out = np.empty(cap, np.uint8)
    energy = np.zeros(n, np.int64)
    fl = np.broadcast_to(np.asarray(flags, np.int64), (n,)).copy()
    used = _format_rows(
        kinds, records["board"], records["channel"], records["timestamp"], energy, fl,
        bool(hex_flags), wave, length, out,
    )  # fmt: skip
    return out[:used].tobytes()


def _csv_name(layout, prefix, board, ch, seg, run_name, model, serial) -> str:
    """File name of one segment in ``layout`` (the first segment of CoMPASS has no number)."""
    tail = f"_{seg}" if seg else ""
    if layout == "compass2":
        return f"{prefix}_CH{ch}@{model or 'V1730'}_{serial + board}_{run_name}{tail}.CSV"
    if layout == "compass1":
        return f"{ch}@{model or 'DT5730'} #2-11-{serial + board}_Data_{run_name}{tail}.csv"
    return f"{prefix}_CH{ch}@V2730_{seg}.CSV"


def write_vx2730(
    raw: Path | str,
    records: np.ndarray,
    *,
    n_segments: int = 1,
    legacy_header: bool = False,
    hex_flags: bool = True,
    prefix: str = "DataR",
    layout: str = "generator",
    columns: tuple[str, ...] | None = None,
    run_name: str = "run",
    model: str | None = None,
    serial: int = 1463,
    flags: int | np.ndarray = 0x4000,
) -> list[Path]:
    """Write ``records`` as CoMPASS CSV files into the folder ``raw``.

    ``layout``: ``"generator"`` (default; one file set per channel,
    ``DataR_CH<ch>@V2730_<seg>.CSV``, every segment numbered), ``"compass2"``
    (one file set per (board, channel), ``DataR_CH<ch>@<model>_<serial>_<run_name>[_<seg>].CSV``)
    or ``"compass1"`` (``<ch>@<model> #2-11-<serial>_Data_<run_name>[_<seg>].csv``,
    to be put in an ``UNFILTERED`` folder). Board ``b`` has serial ``serial + b``.
    ``columns`` default to the CoMPASS 2.x header (1.x for ``"compass1"``, the
    legacy header's for ``legacy_header``); without a BOARD column the reader
    takes the board from the serial. ``flags``: one FLAGS value or one per record.
    The header line is written in the first segment only.
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown CSV layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    if columns is None:
        if legacy_header:
            columns = tuple(LEGACY_HEADER.splitlines()[-1].split(";")[:-1])
        else:
            columns = COLUMNS_1X if layout == "compass1" else COLUMNS_2X
    header = ";".join(columns) + ";SAMPLES"
    if legacy_header:
        header = LEGACY_HEADER.splitlines()[0] + "\n" + header
    raw = Path(raw)
    raw.mkdir(parents=True, exist_ok=True)
    all_flags = np.broadcast_to(np.asarray(flags, np.int64), (len(records),))
    if layout == "generator":
        keys = [(None, int(ch)) for ch in np.unique(records["channel"])]
    else:
        keys = sorted({(int(b), int(c)) for b, c in zip(records["board"], records["channel"])})
    paths = []
    for board, ch in keys:
        sel = records["channel"] == ch
        if board is not None:
            sel &= records["board"] == board
        rows, row_flags = records[sel], all_flags[sel]
        parts = np.array_split(np.arange(len(rows)), max(1, n_segments))
        for seg, idx in enumerate(parts):
            name = _csv_name(layout, prefix, board or 0, ch, seg, run_name, model, serial)
            body = format_vx2730_rows(
                rows[idx], hex_flags=hex_flags, flags=row_flags[idx], columns=columns
            )
            with open(raw / name, "wb") as fh:
                if seg == 0:
                    fh.write((header + "\n").encode())
                fh.write(body)
            paths.append(raw / name)
    return paths


def _v1725_event_dtype(n_channels: int, n_samples: int) -> np.dtype:
    ch = np.dtype(
        [("size", "<u4"), ("ts_lo", "<u4"), ("ts_hi", "<u2"), ("baseline", "<u2"),
         ("wave", "<i2", (n_samples,))]
    )
    return np.dtype(
        [("w0", "<u4"), ("w1", "<u4"), ("w2", "<u4"), ("w3", "<u4"), ("ch", ch, (n_channels,))]
    )


def write_v1725(
    raw: Path | str,
    records: np.ndarray,
    *,
    n_segments: int = 1,
    board: int | None = 0,
    prefix: str = "raw",
    board_fail: np.ndarray | None = None,
) -> list[Path]:
    """Write ``records`` as V1725 DAW events: one event per trigger time, all channels.

    Records sharing a timestamp form one event; every event must hold the same
    set of channels and ``n_samples`` must be even. ``board=None`` writes one
    file set per ``records["board"]``. The event's trigger time tag is the
    31-bit counter with CAEN's roll-over flag in bit 31; ``board_fail`` (one
    bool per event) sets the Board Fail bit (26 of header word 1).
    """
    if board is None:
        paths = []
        for b in np.unique(records["board"]):
            paths += write_v1725(raw, records[records["board"] == b], n_segments=n_segments,
                                 board=int(b), prefix=prefix)
        return paths
    raw = Path(raw)
    raw.mkdir(parents=True, exist_ok=True)
    ns = records["wave"].shape[1]
    if ns % 2:
        raise ConfigError(f"V1725 records need an even number of samples, got {ns}")
    chans = np.unique(records["channel"])
    n_ch = chans.size
    order = np.lexsort((records["channel"], records["timestamp"]))
    recs = records[order]
    if len(recs) % n_ch:
        raise ConfigError("every event must hold the same channels")
    n_ev = len(recs) // n_ch
    grid = recs.reshape(n_ev, n_ch)
    if not np.all(grid["channel"] == chans[None, :]) or not np.all(
        grid["timestamp"] == grid["timestamp"][:, :1]
    ):
        raise ConfigError("every event must hold the same channels at one time")
    ev_dtype = _v1725_event_dtype(n_ch, ns)
    ev_words = ev_dtype.itemsize // 4
    ch_words = 3 + ns // 2
    mask = int(np.bitwise_or.reduce(1 << chans.astype(np.int64)))
    ev = np.zeros(n_ev, dtype=ev_dtype)
    ticks = grid["timestamp"][:, 0] // _TICK_PS
    ev["w0"] = (0xA << 28) | ev_words
    fail = np.zeros(n_ev, bool) if board_fail is None else np.asarray(board_fail, bool)
    ev["w1"] = (mask & 0xFF) | ((board & 0x1F) << 27) | (fail.astype(np.int64) << 26)
    ev["w2"] = (np.arange(n_ev, dtype=np.uint32) & 0xFFFFFF) | (((mask >> 8) & 0xFF) << 24)
    rolled = (ticks >> 31) > 0  # the 31-bit counter has rolled over
    ev["w3"] = ((ticks & 0x7FFFFFFF) | (rolled.astype(np.int64) << 31)).astype(np.uint32)
    chd = ev["ch"]
    chd["size"] = ch_words
    t = grid["timestamp"] // _TICK_PS
    chd["ts_lo"] = (t & 0xFFFFFFFF).astype(np.uint32)
    chd["ts_hi"] = ((t >> 32) & 0xFFFF).astype(np.uint16)
    chd["baseline"] = np.clip(grid["wave"][:, :, :16].mean(axis=2), 0, 65535).astype(np.uint16)
    chd["wave"] = grid["wave"]
    paths = []
    for seg, idx in enumerate(np.array_split(np.arange(n_ev), max(1, n_segments))):
        path = raw / f"{prefix}_b{board}_seg{seg}.bin"
        ev[idx].tofile(path)
        paths.append(path)
    return paths


def generate_run(
    data_root: Path | str,
    run_id: str,
    *,
    fmt: str = "vx2730",
    n_channels: int = 2,
    n_waveforms: int = 1000,
    n_samples: int = 800,
    noise_sigma: float = 3.0,
    baseline: float = 15000.0,
    pulse_mean: float = 1.5,
    noise_only_fraction: float = 0.2,
    amplitude_range: tuple[float, float] = (20.0, 1000.0),
    n_segments: int = 1,
    legacy_header: bool = False,
    hex_flags: bool = True,
    seed: int = 0,
    layout: str = "generator",
    n_boards: int = 1,
    columns: tuple[str, ...] | None = None,
    flags: int = 0x4000,
) -> Path:
    """Write a synthetic run; returns ``<data_root>/<run_id>``.

    ``n_waveforms`` is per channel. ``fmt`` is ``"vx2730"`` (CSV, 2 ns) or
    ``"v1725"`` (binary, 4 ns). The truth goes to ``truth.npy`` / ``truth.json``
    next to ``RAW``; ``truth["record_i"]`` indexes the reader's st_waveforms.
    CSV only: ``layout`` ``"generator"``, ``"compass2"`` (``RAW/``, CoMPASS 2.x
    names) or ``"compass1"`` (``UNFILTERED/``, CoMPASS 1.x names and header);
    ``columns`` the fixed CSV columns (see :func:`write_vx2730`); ``flags`` the
    FLAGS value of every record. ``n_boards`` boards of ``n_channels`` each
    (``n_boards * n_channels <= 16``), board-major in the records.
    """
    if n_boards < 1 or n_boards * n_channels > 16:
        raise ConfigError(f"need 1 <= n_boards and n_boards * n_channels <= 16, got {n_boards}")
    if fmt not in ("vx2730", "v1725"):
        raise ConfigError(f"unknown synthetic format {fmt!r}; use 'vx2730' or 'v1725'")
    if fmt == "v1725" and n_samples % 2:
        raise ConfigError(f"V1725 records need an even number of samples, got {n_samples}")
    physics = dict(
        n_channels=n_channels * n_boards, n_waveforms=n_waveforms, n_samples=n_samples,
        noise_sigma=noise_sigma, baseline=baseline, pulse_mean=pulse_mean,
        noise_only_fraction=noise_only_fraction, amplitude_range=amplitude_range, seed=seed,
    )  # fmt: skip
    st, truth = synthesize(**physics, sample_ns=2 if fmt == "vx2730" else 4)
    if n_boards > 1:
        st["board"] = st["channel"] // n_channels
        st["channel"] %= n_channels
        truth["channel"] %= n_channels
    params = dict(
        physics, fmt=fmt, amplitude_range=list(amplitude_range), n_segments=n_segments,
        legacy_header=legacy_header, hex_flags=hex_flags, n_channels=n_channels,
        n_boards=n_boards, layout=layout, columns=None if columns is None else list(columns),
        flags=flags,
    )  # fmt: skip
    run_dir = Path(data_root) / str(run_id)
    raw = run_dir / ("UNFILTERED" if layout == "compass1" and fmt == "vx2730" else "RAW")
    raw.mkdir(parents=True, exist_ok=True)
    if fmt == "vx2730":
        write_vx2730(raw, st, n_segments=n_segments, legacy_header=legacy_header,
                     hex_flags=hex_flags, layout=layout, columns=columns, run_name=str(run_id),
                     flags=flags)  # fmt: skip
    else:
        write_v1725(raw, st, n_segments=n_segments, board=None)
    np.save(run_dir / "truth.npy", truth)
    params["n_pulses"] = int(len(truth))
    params["n_records"] = int(len(st))
    params["n_noise_only_records"] = int(len(st) - np.unique(truth["record_i"]).size)
    (run_dir / "truth.json").write_text(json.dumps(params, indent=2) + "\n")
    return run_dir


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
