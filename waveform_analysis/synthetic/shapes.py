"""Real detector pulse shapes with truth: scintillator pulses built from photo-electrons.

:func:`scintillator` makes one pulse per record the way a scintillator read by
a PMT makes it: a Poisson number of photo-electrons, each a single-p.e. pulse
(a Gaussian rise of ``spe_width`` samples, an exponential fall of ``spe_tau``)
whose gain varies by ``spe_spread``; their arrival times follow a fast
(``tau_fast``) and a slow (``tau_slow``) decay component, the slow fraction set
by the particle (``slow_gamma`` / ``slow_neutron``), so neutron and gamma
pulses differ in PSD. Options add what real records show: PMT after-pulses,
an undershoot and ringing after the pulse, pulses starting ``start`` samples
into a short record, noise drawn per record (``noise=(lo, hi)``), a slow
baseline drift, clipping at the ADC's limits. ``truth`` (``SHAPE_TRUTH_DTYPE``)
holds what each record's pulse is, noise-free.
"""

from __future__ import annotations

import numba
import numpy as np

from ..dtypes import st_waveforms_dtype
from ..errors import ConfigError
from ..kernel_cache import watch

__all__ = ["SHAPE_TRUTH_DTYPE", "psd_figure_of_merit", "scintillator", "scintillator_run"]

SHAPE_TRUTH_DTYPE = np.dtype(
    [
        (("Index of the record in st_waveforms", "record_i"), np.int64),
        (("Sample of the extremum of the noise-free pulse", "position"), np.int32),
        (("First sample where the pulse exceeds 0.5 ADC", "left"), np.int32),
        (("One past the last sample where the pulse exceeds 0.5 ADC", "right"), np.int32),
        (("Extremum of the noise-free pulse, positive [ADC]", "amplitude"), np.float32),
        (("Sum of the noise-free scintillation light over the record [ADC x samples]", "area"),
         np.float32),
        (("Photo-electrons of the pulse", "n_pe"), np.int32),
        (("0 gamma, 1 neutron (the slow fraction of the light)", "particle"), np.int8),
        (("Sample where the light starts", "t0"), np.float32),
        (("Noise RMS of the record [ADC]", "noise"), np.float32),
        (("A sample of the record is at 0 or 2^14 - 1", "clipped"), np.bool_),
        (("Digitizer channel of the record", "channel"), np.int16),
        (("Light up to the last 16-sample block whose light is beyond 2 sigma of the "
          "block's noise, from 2 samples before it starts [ADC x samples]", "area_visible"),
         np.float32),
        (("One past the last sample of area_visible's light", "right_visible"), np.int32),
    ]
)
ADC_MAX = (1 << 14) - 1
SHORT_GATE = 16  # samples of the firmware's short gate written with the records
VISIBLE_BLOCK = 16  # samples per block when judging which light the noise lets be seen


@numba.njit(cache=True)
def _spe(row, t, amp, width, tau):
    """Add one photo-electron at time ``t`` (samples) to ``row``."""
    ns = row.size
    lo = max(0, int(t - 4.0 * width))
    hi = min(ns, int(t + 8.0 * tau) + 2)
    for j in range(lo, hi):
        d = j - t
        if d < 0:
            row[j] += amp * np.exp(-0.5 * (d / width) ** 2)
        else:
            row[j] += amp * np.exp(-d / tau)


@numba.njit(cache=True)
def _render(sig, t0, n_pe, slow_frac, tau_fast, tau_slow, spe_amp, spe_spread, spe_width, spe_tau,
            seed):
    """Each record's photo-electrons: arrival from the fast or slow component, gain spread."""
    np.random.seed(seed)
    for k in range(n_pe.size):
        for _ in range(n_pe[k]):
            tau = tau_slow if np.random.random() < slow_frac[k] else tau_fast
            t = t0[k] + np.random.exponential(tau)
            a = spe_amp * max(0.05, 1.0 + spe_spread * np.random.standard_normal())
            _spe(sig[k], t, a, spe_width, spe_tau)


def scintillator(
    n: int = 1000,
    n_samples: int = 200,
    noise: float | tuple[float, float] = (2.0, 5.0),
    baseline: float = 13000.0,
    polarity: str = "negative",
    start: tuple[float, float] = (5.0, 30.0),
    amplitude: tuple[float, float] = (10.0, 1500.0),
    tau_fast: float = 3.0,
    tau_slow: float = 40.0,
    slow_gamma: float = 0.1,
    slow_neutron: float = 0.3,
    neutron_fraction: float = 0.5,
    spe_amp: float = 8.0,
    spe_spread: float = 0.3,
    spe_width: float = 0.7,
    spe_tau: float = 1.5,
    afterpulse_prob: float = 0.0,
    afterpulse_delay: tuple[float, float] = (60.0, 150.0),
    undershoot: float = 0.0,
    undershoot_tau: float = 80.0,
    ringing: float = 0.0,
    ringing_period: float = 8.0,
    ringing_tau: float = 10.0,
    drift: float = 0.0,
    noise_lf: float = 0.0,
    noise_lf_samples: float = 8.0,
    noise_only: bool = False,
    dt: float = 4.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(st_waveforms, truth)``: ``n`` records of one scintillator pulse each (or noise only).

    Amplitudes are drawn log-uniform over ``amplitude`` (ADC) and turned into
    a Poisson number of photo-electrons of ``spe_amp`` ADC; ``noise`` is one
    RMS or a ``(lo, hi)`` range drawn per record. ``afterpulse_prob``: the
    chance of 1-3 photo-electrons ``afterpulse_delay`` samples after the
    pulse; ``undershoot``: the fraction of the area that returns below the
    baseline with constant ``undershoot_tau``; ``ringing``: a damped
    oscillation of that fraction of the height; ``drift``: the largest
    baseline change over a record (ADC, a linear slope of random sign);
    ``noise_lf``: the RMS (ADC) of a low-frequency noise added to the white
    one, white noise smoothed by a Gaussian of ``noise_lf_samples`` samples
    (pick-up, a wandering baseline: its swings span tens of samples and its
    successive differences are small; ``truth["noise"]`` is then the total RMS).
    ``baseline`` and ``polarity`` place the pulses; samples are clipped at 0
    and 2^14 - 1 (``truth["clipped"]``). ``baseline`` and ``baseline_rms``
    are left 0 for the chain to fill.
    """
    if polarity not in ("negative", "positive"):
        raise ConfigError(f"polarity must be 'negative' or 'positive', got {polarity!r}")
    if noise_lf < 0 or noise_lf_samples <= 0:
        raise ConfigError(f"noise_lf must be >= 0 and noise_lf_samples > 0 (ADC, samples), got "
                          f"{noise_lf}, {noise_lf_samples}")
    if n < 0 or n_samples < 8:
        raise ConfigError(f"n must be >= 0 and n_samples >= 8, got {n}, {n_samples}")
    rng = np.random.default_rng(seed)
    lo_hi = (float(noise), float(noise)) if np.ndim(noise) == 0 else tuple(map(float, noise))
    sigma = rng.uniform(lo_hi[0], lo_hi[1], n)
    st = np.zeros(n, st_waveforms_dtype(n_samples))
    st["length"] = n_samples
    st["dt"] = dt
    st["time"] = np.arange(n, dtype=np.int64) * 10_000_000
    st["timestamp"] = st["time"] * 1000
    truth = np.zeros(n, SHAPE_TRUTH_DTYPE)
    truth["record_i"] = np.arange(n)
    truth["noise"] = sigma
    sig = np.zeros((n, n_samples))
    if not noise_only and n:
        amp = np.exp(rng.uniform(np.log(amplitude[0]), np.log(amplitude[1]), n))
        particle = (rng.random(n) < neutron_fraction).astype(np.int8)
        slow = np.where(particle == 1, slow_neutron, slow_gamma)
        t0 = rng.uniform(start[0], start[1], n)
        # the height of a pulse of N p.e. is about N x spe x (the fast light's share of a sample)
        per_pe = spe_amp * ((1 - slow) * spe_tau / (tau_fast + spe_tau)
                            + slow * spe_tau / (tau_slow + spe_tau))
        n_pe = rng.poisson(np.maximum(amp / per_pe, 1.0)).astype(np.int64)
        _render(sig, t0, n_pe, slow, float(tau_fast), float(tau_slow), float(spe_amp),
                float(spe_spread), float(spe_width), float(spe_tau), int(seed) % (1 << 31))
        j = np.arange(n_samples)[None, :]
        pos = sig.argmax(axis=1)
        height = sig.max(axis=1)
        area = sig.sum(axis=1)
        above = sig > 0.5
        anywhere = above.any(axis=1)
        truth["left"] = np.where(anywhere, above.argmax(axis=1), 0)
        truth["right"] = np.where(anywhere, n_samples - above[:, ::-1].argmax(axis=1), 0)
        truth["position"] = pos
        # the firmware's charges: the light / 4 (whole ADC channels, as the pulse model's),
        # the short one over the first SHORT_GATE samples from 2 before the light starts
        first = np.clip(np.floor(t0).astype(np.int64) - 2, 0, n_samples)
        cs = np.concatenate([np.zeros((n, 1)), np.cumsum(sig, axis=1)], axis=1)
        short = cs[np.arange(n), np.minimum(first + SHORT_GATE, n_samples)] - cs[np.arange(n), first]
        truth["area_visible"], truth["right_visible"] = _visible(cs, first, sigma)
        st["energy"] = np.clip(np.rint(area / 4.0), 0, 65535)
        st["energy_short"] = np.clip(np.rint(short / 4.0), 0, 65535)
        truth["amplitude"] = height
        truth["area"] = area
        truth["n_pe"] = n_pe
        truth["particle"] = particle
        truth["t0"] = t0
        after = j - pos[:, None]
        if undershoot > 0:
            sig -= ((after >= 0) * (undershoot / undershoot_tau) * area[:, None]
                    * np.exp(-np.clip(after, 0, None) / undershoot_tau))
        if ringing > 0:
            d = after - 2
            sig += ((d >= 0) * ringing * height[:, None] * np.sin(2 * np.pi * d / ringing_period)
                    * np.exp(-np.clip(d, 0, None) / ringing_tau))
        if afterpulse_prob > 0:
            when = pos + rng.uniform(afterpulse_delay[0], afterpulse_delay[1], n)
            for r in np.flatnonzero((rng.random(n) < afterpulse_prob) & (when < n_samples - 5)):
                for _ in range(int(rng.integers(1, 4))):
                    _spe(sig[r], float(when[r]), spe_amp, spe_width, spe_tau)
    slope = drift * rng.uniform(-1.0, 1.0, n)[:, None] * np.arange(n_samples)[None, :] / n_samples
    sgn = -1.0 if polarity == "negative" else 1.0
    wave = np.rint(baseline + slope + sgn * sig + rng.standard_normal((n, n_samples)) * sigma[:, None]
                   + _low_frequency(rng, n, n_samples, noise_lf, noise_lf_samples))
    if noise_lf > 0:
        truth["noise"] = np.sqrt(sigma**2 + float(noise_lf) ** 2)
    truth["clipped"] = ((wave <= 0) | (wave >= ADC_MAX)).any(axis=1)
    st["wave"] = np.clip(wave, 0, ADC_MAX).astype(np.int16)
    return st, truth


def _low_frequency(rng: np.random.Generator, n: int, n_samples: int, rms: float, width: float) -> np.ndarray | float:
    """``rms`` x unit-RMS white noise smoothed by a Gaussian of ``width`` samples (0 if ``rms`` is 0)."""
    if rms <= 0 or n == 0:
        return 0.0
    w = max(float(width), 0.5)
    half = int(np.ceil(3 * w))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / w) ** 2)
    k /= np.sqrt((k * k).sum())
    raw = rng.standard_normal((n, n_samples + 2 * half))
    out = np.zeros((n, n_samples))
    for i, ki in enumerate(k):
        out += ki * raw[:, i : i + n_samples]
    return float(rms) * out


def psd_figure_of_merit(psd: np.ndarray, particle: np.ndarray) -> float:
    """``|mean_n - mean_g| / (FWHM_n + FWHM_g)`` of the PSD of neutrons (1) and gammas (0),
    FWHM from each population's 2.355 x its robust sigma (1.4826 x its MAD)."""
    out = []
    for p in (0, 1):
        x = psd[(particle == p) & np.isfinite(psd)]
        if x.size < 3:
            return float("nan")
        med = np.median(x)
        out.append((med, 2.355 * 1.4826 * np.median(np.abs(x - med))))
    return float(abs(out[1][0] - out[0][0]) / (out[0][1] + out[1][1]))


def _visible(cs: np.ndarray, first: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The light a record's noise lets be seen and one past its last sample: summed from
    ``first`` to the end of the last block of ``VISIBLE_BLOCK`` samples whose light exceeds
    2 sigma of a block's noise (``cs``: the light's cumulative sum per record, a leading 0
    column). Light after it is spread thinner than the noise over every block it falls in."""
    n, m = cs.shape
    ends = first[:, None] + VISIBLE_BLOCK * np.arange(1, (m - 1) // VISIBLE_BLOCK + 2)[None, :]
    ends = np.minimum(ends, m - 1)
    rows = np.arange(n)[:, None]
    block = cs[rows, ends] - cs[rows, np.concatenate([first[:, None], ends[:, :-1]], axis=1)]
    seen = block > 2.0 * sigma[:, None] * np.sqrt(VISIBLE_BLOCK)
    last = np.where(seen.any(axis=1), seen.shape[1] - 1 - seen[:, ::-1].argmax(axis=1), -1)
    stop = np.where(last >= 0, ends[np.arange(n), np.maximum(last, 0)], first)
    return cs[np.arange(n), stop] - cs[np.arange(n), first], stop


def scintillator_run(n_channels: int = 2, n_waveforms: int = 1000, seed: int = 0,
                     **options) -> tuple[np.ndarray, np.ndarray]:
    """:func:`scintillator` records of ``n_channels`` channels triggered together
    (``n_waveforms`` each), sorted by time then channel as the readers return them; the
    truth's ``record_i`` indexes that order and ``channel`` names the channel. Channel
    ``c`` draws its records with seed ``seed * 16 + c``. ``options``: :func:`scintillator`'s
    keywords (not ``n``, ``seed``)."""
    bad = {"n", "seed"} & set(options)
    if bad:
        raise ConfigError(f"scintillator_run sets {', '.join(sorted(bad))} itself")
    if not 1 <= n_channels <= 16 or n_waveforms < 1:
        raise ConfigError(f"need 1-16 channels and n_waveforms >= 1, got {n_channels}, {n_waveforms}")
    parts = [scintillator(n=n_waveforms, seed=seed * 16 + c, **options) for c in range(n_channels)]
    st = np.empty(n_channels * n_waveforms, parts[0][0].dtype)
    truth = np.empty(len(st), SHAPE_TRUTH_DTYPE)
    for c, (s, t) in enumerate(parts):
        s["channel"] = c
        t["channel"] = c
        t["record_i"] = np.arange(n_waveforms) * n_channels + c
        st[c::n_channels] = s
        truth[c::n_channels] = t
    return st, truth


watch(globals(), uses=("..dtypes", "..errors"))
