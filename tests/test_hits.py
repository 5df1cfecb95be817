import numpy as np
import pytest

from waveform_analysis.daq import get_adapter
from waveform_analysis.dtypes import PEAKS_DTYPE, st_waveforms_dtype
from waveform_analysis.errors import ConfigError
from waveform_analysis.processing import compute_baselines, find_peaks
from waveform_analysis.synthetic import generate_run, load_truth, synthesize

SIGMA = 3.0


def match(peaks, truth):
    """For each true pulse, the peak of the same record whose bounds contain it (-1 if none)."""
    idx = np.searchsorted(peaks["record_i"], truth["record_i"], side="left")
    out = np.full(len(truth), -1)
    for off in range(10):
        j = np.minimum(idx + off, len(peaks) - 1)
        ok = (
            (out < 0)
            & (peaks["record_i"][j] == truth["record_i"])
            & (peaks["left"][j] <= truth["position"])
            & (truth["position"] < peaks["right"][j])
        )
        out[ok] = j[ok]
    return out


def check_against_truth(st, truth, peaks):
    assert peaks.dtype == PEAKS_DTYPE
    big = truth["amplitude"] >= 10 * SIGMA
    m = match(peaks, truth)
    found = m >= 0
    assert found[big].mean() >= 0.99
    dpos = np.abs(peaks["position"][m] - truth["position"])
    assert np.mean(dpos[big & found] <= 2) >= 0.95
    sel = (truth["amplitude"] >= 100) & found
    rel = np.abs(peaks["area"][m[sel]] / truth["area"][sel] - 1)
    assert np.median(rel) <= 0.05
    assert len(peaks) <= 1.01 * len(truth)
    # basic consistency of every peak
    assert np.all(peaks["width"] == peaks["right"] - peaks["left"])
    assert np.all((peaks["left"] <= peaks["position"]) & (peaks["position"] < peaks["right"]))
    assert np.all(peaks["height"] > 5 * SIGMA)
    assert np.all(peaks["time"] == st["time"][peaks["record_i"]]
                  + peaks["left"] * st["dt"][peaks["record_i"]])
    assert np.all(np.diff(peaks["record_i"]) >= 0)


def test_against_truth_from_files(tmp_path):
    run = generate_run(tmp_path, "t", n_channels=2, n_waveforms=1000, seed=11)
    a = get_adapter("vx2730")
    st = a.read(tmp_path, a.list_files(tmp_path, "t"), "t")
    st["baseline"] = compute_baselines(st, 40)
    truth = load_truth(run)
    check_against_truth(st, truth, find_peaks(st, threshold=5 * SIGMA))


def test_against_truth_many_threads():
    # enough records that the finder splits across threads
    st, truth = synthesize(n_channels=2, n_waveforms=3000, seed=12)
    st["baseline"] = compute_baselines(st)
    check_against_truth(st, truth, find_peaks(st, 5 * SIGMA))


def test_false_peaks_on_noise_only_records():
    # 10,000 noise-only records (the expected rate at 5 sigma is ~0.3 per 1,000)
    st, truth = synthesize(n_channels=2, n_waveforms=6000, noise_only_fraction=10 / 12, seed=0)
    st["baseline"] = compute_baselines(st)
    peaks = find_peaks(st, 5 * SIGMA)
    noise = np.setdiff1d(np.arange(len(st)), truth["record_i"])
    assert noise.size == 10_000
    false = np.isin(peaks["record_i"], noise).sum()
    assert false <= noise.size / 1000


def test_positive_polarity_mirror():
    st, truth = synthesize(n_waveforms=300, seed=2)
    st["baseline"] = compute_baselines(st)
    neg = find_peaks(st, 15)
    mirrored = st.copy()
    mirrored["wave"] = 2 * 8000 - st["wave"].astype(np.int32)
    mirrored["baseline"] = 16000 - st["baseline"]
    pos = find_peaks(mirrored, 15, polarity="positive")
    for f in ["record_i", "left", "right", "position"]:
        np.testing.assert_array_equal(pos[f], neg[f])
    np.testing.assert_allclose(pos["area"], neg["area"], rtol=1e-5, atol=1e-2)


def test_bad_settings():
    st, _ = synthesize(n_waveforms=10, n_samples=100)
    with pytest.raises(ConfigError, match="sideways"):
        find_peaks(st, 10, polarity="sideways")
    per_record = np.array(["negative"] * (len(st) - 1) + ["upwards"])  # one name per record
    with pytest.raises(ConfigError, match="upwards"):
        find_peaks(st, 10, polarity=per_record)
    with pytest.raises(ConfigError):
        find_peaks(st, 10, merge_gap=-1)


def _one(wave, baseline=100.0, length=None):
    st = np.zeros(1, dtype=st_waveforms_dtype(len(wave)))
    st["wave"] = wave
    st["baseline"] = baseline
    st["length"] = len(wave) if length is None else length
    st["dt"] = 2
    st["time"] = 1000
    return st


def test_merge_extend_and_clip():
    w = np.full(100, 100, np.int16)
    w[10:13] = [50, 20, 60]  # hit A
    w[16] = 80  # 3 samples after A: merged into A with merge_gap=10
    w[60:62] = [40, 70]  # hit B, far away
    p = find_peaks(_one(w), 10, merge_gap=10, left_extension=2, right_extension=20)
    assert len(p) == 2
    assert (p["left"][0], p["right"][0], p["position"][0]) == (8, 37, 11)
    assert p["height"][0] == pytest.approx(80)
    assert p["area"][0] == pytest.approx(50 + 80 + 40 + 20)
    assert p["time"][0] == 1000 + 8 * 2
    assert (p["left"][1], p["right"][1]) == (58, 82)
    # no merge: the second hit is its own peak, the first's right bound stops at it
    p = find_peaks(_one(w), 10, merge_gap=3, left_extension=2, right_extension=20)
    assert len(p) == 3
    assert p["right"][0] == 16 and p["left"][1] == 16
    # clipped to the record length
    p = find_peaks(_one(w, length=62), 10, right_extension=50)
    assert p["right"][-1] == 62
    # min_width drops narrow hits
    p = find_peaks(_one(w), 10, merge_gap=0, min_width=2)
    assert list(p["left"]) == [8, 58]


def test_empty_and_quiet():
    st = _one(np.full(50, 100, np.int16))
    assert len(find_peaks(st, 5)) == 0
    assert len(find_peaks(st[:0], 5)) == 0


def test_saturated_against_the_adc_limits_passed():
    w = np.full(60, 1000, np.int16)
    w[20:24] = 12000  # a positive pulse clipped at 12000
    st = _one(w, baseline=1000.0)
    (p,) = find_peaks(st, 10, polarity="positive")
    assert not p["saturated"]  # below the 14-bit limit
    (p,) = find_peaks(st, 10, polarity="positive", adc_max=12000)
    assert p["saturated"]
    (p,) = find_peaks(st, 10, polarity="positive", adc_min=1000)
    assert p["saturated"]  # a sample of the peak's bounds sits at the lower limit


@pytest.mark.parametrize("threads", [1, 2])
def test_saturated_is_a_scan_of_the_valid_samples(threads):
    from waveform_analysis.parallel import kernel_threads
    from waveform_analysis.processing.saturation import saturated
    from waveform_analysis.synthetic import synthesize

    st, _ = synthesize(n_channels=2, n_waveforms=6000, n_samples=50, noise_sigma=3.0, seed=3)
    rng = np.random.default_rng(4)
    st["length"] = rng.integers(-2, 60, len(st))  # empty, short and longer than the row
    st["wave"][rng.integers(0, len(st), 200), rng.integers(0, 50, 200)] = 16383
    st["wave"][rng.integers(0, len(st), 200), rng.integers(0, 50, 200)] = 0
    cols = np.arange(st["wave"].shape[1])
    valid = cols[None, :] < st["length"][:, None]
    for lo, hi in ((0, 16383), (1, 16383), (900, 1100), (-5, 20000)):
        want = (valid & ((st["wave"] <= lo) | (st["wave"] >= hi))).any(axis=1)
        with kernel_threads(threads):
            got = saturated(st, adc_min=lo, adc_max=hi, flag_mask=0)
        np.testing.assert_array_equal(got, want)


def test_documented_paths_and_defaults():
    from dataclasses import asdict

    from waveform_analysis import hit_defaults
    from waveform_analysis.processing import hits
    from waveform_analysis.processing.baselines import compute_baselines as moved

    assert hits.compute_baselines is moved and hits.set_baselines and hits.find_peaks is find_peaks
    assert hit_defaults.THRESHOLD == hits.HIT_DEFAULTS.threshold == 8.0
    st = _one(np.r_[np.full(20, 100), np.full(5, 60), np.full(25, 100)].astype(np.int16))
    np.testing.assert_array_equal(find_peaks(st, **asdict(hits.HIT_DEFAULTS)), find_peaks(st))


def _layouts(st):
    """The same records laid out three ways: in place (the kernel slices one flat view), with
    an odd record size (the rows are copied) and every other record of a bigger array."""
    odd = np.zeros(len(st), np.dtype(st.dtype.descr + [("pad", "u1")]))
    for name in st.dtype.names:
        odd[name] = st[name]
    twice = np.repeat(st, 2)[::2]
    return st, odd, twice


@pytest.mark.parametrize("source", ["hard", "scintillator", "libra"])
def test_peaks_do_not_depend_on_how_the_records_sit_in_memory(source):
    from pathlib import Path

    from waveform_analysis.processing import set_baselines
    from waveform_analysis.synthetic.shapes import scintillator

    if source == "hard":
        st, _ = synthesize(n_channels=2, n_waveforms=500, n_samples=400, seed=5,
                           tau_range=(4, 60), pileup_fraction=0.3, pileup_gap=(5, 30))
    elif source == "scintillator":
        st, _ = scintillator(n=500, seed=6)
    else:
        real = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
        files = sorted((real / "libra-toolbox").glob("Data_CH4@DT5725_*4in*.CSV"))
        if not files:
            pytest.skip("../shared/realdata is absent")
        rows = [ln.split(";") for f in files for ln in f.read_text().splitlines()
                if ln and not ln.startswith("BOARD")]
        waves = np.array([r[7:] for r in rows], dtype=np.int16)
        st = np.zeros(len(waves), st_waveforms_dtype(waves.shape[1]))
        st["wave"], st["length"], st["dt"] = waves, waves.shape[1], 4
    set_baselines(st)
    ref = find_peaks(st)
    assert len(ref) >= len(st) // 2
    for other in _layouts(st)[1:]:
        assert find_peaks(other).tobytes() == ref.tobytes()


def test_peaks_read_the_records_fields_whatever_their_types():
    """The kernels read length, baseline, RMS, time, dt, channel and board in place: records
    whose fields have other types (and no board) give the same peaks as the standard ones."""
    from waveform_analysis.processing import set_baselines

    st, _ = synthesize(n_channels=3, n_waveforms=300, n_samples=200, seed=8)
    set_baselines(st)
    st["baseline"] = np.round(st["baseline"] * 4) / 4  # the same in float32
    st["board"] = 0
    st["time"] += 10**15  # beyond float precision: the peaks' times are summed in integers
    ref = find_peaks(st)
    assert len(ref) > 100
    ns = st["wave"].shape[1]
    other = np.zeros(len(st), [("wave", "<i2", (ns,)), ("length", "<i8"), ("baseline", "<f4"),
                               ("baseline_rms", "<f8"), ("channel", "<i4"), ("time", "<i8"),
                               ("dt", "<f4")])
    for name in other.dtype.names:
        other[name] = st[name]
    got = find_peaks(other)
    assert got.tobytes() == ref.tobytes()
    other["baseline_rms"][::7] = np.nan  # cleaned as before: NaN counts as no RMS
    st["baseline_rms"][::7] = np.nan
    assert find_peaks(other).tobytes() == find_peaks(st).tobytes()


@pytest.mark.parametrize("baseline_samples", [None, 12])
def test_the_noise_guard_reads_tail_rms_or_the_samples_alike(baseline_samples):
    """A record's own noise takes the RMS of its last 40 samples from its ``tail_rms`` (filled
    by the baselines) or, where that is 0 or NaN or the field is absent, from its samples:
    the same peaks and start levels either way, and the guard changes them here."""
    from waveform_analysis.processing import set_baselines
    from waveform_analysis.processing.hits import start_levels

    st, _ = synthesize(n_channels=2, n_waveforms=1500, n_samples=160, seed=12,
                       noise_sigma=3.0, pileup_fraction=0.2, pileup_gap=(5, 40))
    # records noisier than their channel, some with a pulse near the end, some short
    rng = np.random.default_rng(3)
    noisy = rng.random(len(st)) < 0.3
    st["wave"][noisy] = np.clip(st["wave"][noisy] + rng.normal(0, 4.0, st["wave"][noisy].shape)
                                .round(), -32768, 32767).astype(np.int16)
    st["length"][::13] = rng.integers(1, 60, st["length"][::13].size)
    set_baselines(st, baseline_samples)
    assert (st["tail_rms"] > 0).mean() > 0.9
    ref = find_peaks(st)
    levels = start_levels(st)
    assert find_peaks(st, noise_guard=0.0).tobytes() != ref.tobytes()
    unknown = st.copy()
    unknown["tail_rms"][::2] = 0.0
    unknown["tail_rms"][1::4] = np.nan
    names = [n for n in st.dtype.names if n != "tail_rms"]
    without = np.zeros(len(st), [(n, st.dtype.fields[n][0]) for n in names])
    for n in names:
        without[n] = st[n]
    for other in (unknown, without):
        assert find_peaks(other).tobytes() == ref.tobytes()
        np.testing.assert_array_equal(start_levels(other), levels)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n", [3, 5000])
def test_records_of_more_peaks_than_the_room_kept_for_them(threads, n):
    # the kernel writes straight into the peaks array with room for 4 per record (+ 16 per
    # part): records of 12 peaks each overflow it, and the part is run again with room
    from waveform_analysis.parallel import kernel_threads

    w = np.full(72, 100, np.int16)
    w[2::6] = 40  # 12 one-sample pulses, 6 samples apart
    st = np.zeros(n, dtype=st_waveforms_dtype(len(w)))
    st["wave"] = w
    st["baseline"] = 100.0
    st["length"] = len(w)
    st["dt"] = 4
    st["time"] = np.arange(n) * 1000
    st["channel"] = np.arange(n) % 3
    st["wave"][1::7, 20] = 100  # some records of 11
    with kernel_threads(threads):
        peaks = find_peaks(st, 10, merge_gap=0, right_extension=0, left_extension=0)
    want = np.where(np.arange(n) % 7 == 1, 11, 12)
    np.testing.assert_array_equal(np.bincount(peaks["record_i"], minlength=n), want)
    assert peaks.flags.owndata and peaks.base is None and peaks.flags.c_contiguous
    assert np.all(peaks["width"] == 1) and np.all(peaks["right"] == peaks["left"] + 1)
    assert np.all(peaks["time"] == st["time"][peaks["record_i"]] + 4 * peaks["left"])
    np.testing.assert_array_equal(peaks["channel"], peaks["record_i"] % 3)
    assert np.all(peaks["height"] == 60) and np.all(peaks["area"] == 60)


@pytest.mark.parametrize("threads", [1, 2])
def test_peaks_are_an_array_of_their_own_of_the_peaks_found(threads):
    # the array the kernel wrote into had room for 4 peaks per record: what is returned
    # holds the peaks found and nothing else
    from waveform_analysis.parallel import kernel_threads

    st, _ = synthesize(n_channels=2, n_waveforms=3000, seed=12)
    st["baseline"] = compute_baselines(st)
    with kernel_threads(threads):
        peaks = find_peaks(st, 5 * SIGMA)
    assert 0 < len(peaks) < 4 * len(st)
    assert peaks.flags.owndata and peaks.base is None
    assert peaks.nbytes == len(peaks) * PEAKS_DTYPE.itemsize
    with kernel_threads(1):
        np.testing.assert_array_equal(find_peaks(st, 5 * SIGMA), peaks)


def test_next_firing_is_the_first_sample_at_or_beyond_the_level():
    # whole quiet blocks are skipped, the block that fires (or the record's last block,
    # overlapping samples already passed) searched at once: the same sample as a plain scan
    from waveform_analysis.processing._pulse_kernels import _next_firing

    rng = np.random.default_rng(5)
    for _ in range(3000):
        ns = int(rng.integers(1, 150))
        row = rng.integers(90, 111, ns).astype(np.int16)
        for q in rng.integers(0, ns, int(rng.integers(0, 4))):
            row[q] = rng.choice([60, 140])
        L = int(rng.integers(1, ns + 1))
        j = int(rng.integers(0, L + 1))  # j == L: none left
        block = int(rng.choice([4, 8, 32]))
        for neg, a in ((True, np.int16(rng.integers(55, 100))),
                       (False, np.int16(rng.integers(100, 145)))):
            beyond = np.flatnonzero((row[j:L] <= a) if neg else (row[j:L] >= a))
            want = j + int(beyond[0]) if beyond.size else L
            assert _next_firing(row, j, L, a, neg, block) == want, (row, j, L, a, neg, block)
