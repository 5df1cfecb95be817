"""The pulse model of the synthetic runs: records and their truth in memory.

The model (:class:`PulseModel`): ``n_waveforms`` triggers per channel, every channel recording at
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

from dataclasses import asdict, dataclass, fields

import numba
import numpy as np

from ..dtypes import st_waveforms_dtype
from ..errors import ConfigError
from ..kernel_cache import watch

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

_GUARD = 60  # samples before the first pulse slot (baseline region)
_SLOT = 96  # pulse slot width; offsets within a slot are < _SLOT - 56
TICK_PS = 4000  # time tags are whole 4 ns ticks so every format can hold them


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


@dataclass(frozen=True)
class PulseModel:
    """The parameters of a synthetic run's records (see :func:`synthesize` for each)."""

    n_channels: int = 2
    n_waveforms: int = 1000
    n_samples: int = 800
    noise_sigma: float = 3.0
    baseline: float = 15000.0
    pulse_mean: float = 1.5
    noise_only_fraction: float = 0.2
    amplitude_range: tuple[float, float] = (20.0, 1000.0)
    rise: float = 1.0
    tau: float = 4.0
    trigger_sample: int | None = None
    sample_ns: float = 2
    seed: int = 0
    tau_range: tuple[float, float] | None = None
    pileup_fraction: float = 0.0
    pileup_gap: tuple[float, float] = (5.0, 30.0)
    baseline_pulse_fraction: float = 0.0
    baseline_window: int = 40
    polarity: str = "negative"

    @classmethod
    def names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    def to_dict(self) -> dict:
        return asdict(self)


def synthesize(model: PulseModel | None = None, **params) -> tuple[np.ndarray, np.ndarray]:
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

    The firmware's numbers a digitizer would add: ``energy`` is the record's
    summed true pulse area / 4 and ``energy_short`` a third of it (whole ADC
    channels, as a u16 field holds them), ``energy_calibrated`` left 0 (no
    calibration); the writers add the ``flags``.
    """
    if model is None:
        unknown = set(params) - PulseModel.names()
        if unknown:
            raise ConfigError(f"unknown synthesis parameters: {', '.join(sorted(unknown))}")
        model = PulseModel(**params)
    elif params:
        model = PulseModel(**{**model.to_dict(), **params})
    (n_channels, n_waveforms, n_samples, noise_sigma, baseline, pulse_mean, noise_only_fraction,
     amplitude_range, rise, tau, trigger_sample, sample_ns, seed, tau_range, pileup_fraction,
     pileup_gap, baseline_pulse_fraction, baseline_window, polarity) = (
        getattr(model, f.name) for f in fields(PulseModel))
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
    st["timestamp"] = np.repeat(ticks * TICK_PS, n_channels)
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
    area = np.bincount(truth["record_i"], weights=truth["area"], minlength=n_rec)
    st["energy"] = np.clip(np.rint(area / 4.0), 0, 65535)
    st["energy_short"] = np.clip(np.rint(area / 12.0), 0, 65535)
    return st, truth


watch(globals(), uses=("..dtypes", "..errors"))
