"""The standard chain end to end on small generated runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from waveform_analysis import Context, standard_plugins
from waveform_analysis.dtypes import BASIC_FEATURES_DTYPE, EVENTS_DTYPE, PEAKS_DTYPE
from waveform_analysis.errors import NoDataError, RunNotFoundError, UnknownAdapterError
from waveform_analysis.synthetic import generate_run

N_WF = 40
N_SAMPLES = 200


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "DAQ"
    generate_run(root, "run_001", n_channels=2, n_waveforms=N_WF, n_samples=N_SAMPLES, seed=1)
    return root


def make(tmp_path, data_root, **config):
    c = Context(storage_dir=tmp_path / "cache", config={"data_root": str(data_root), **config})
    c.register(standard_plugins())
    return c


def test_chain_end_to_end(tmp_path, data_root):
    c = make(tmp_path, data_root, n_channels=2)
    st = c.get_data("run_001", "st_waveforms")
    assert len(st) == 2 * N_WF
    for f in ("time", "timestamp", "board", "channel", "baseline", "dt", "length", "wave"):
        assert f in st.dtype.names
    assert st["time"].dtype == np.int64 and st["timestamp"].dtype == np.int64
    assert st["wave"].shape == (2 * N_WF, N_SAMPLES)
    np.testing.assert_allclose(st["baseline"], st["wave"][:, :40].mean(axis=1))
    # the RMS of the last 40 samples, which the peaks' noise guard reads
    np.testing.assert_allclose(st["tail_rms"], st["wave"][:, -40:].std(axis=1), rtol=1e-6)
    assert set(np.unique(st["channel"])) == {0, 1}

    peaks = c.get_data("run_001", "peaks")
    assert peaks.dtype == PEAKS_DTYPE and len(peaks) > 0
    assert peaks["record_i"].max() < len(st)
    assert (peaks["height"] > 15.0).all() and (peaks["area"] > 0).all()
    np.testing.assert_array_equal(peaks["channel"], st["channel"][peaks["record_i"]])

    bf = c.get_data("run_001", "basic_features")
    assert bf.dtype == BASIC_FEATURES_DTYPE and len(bf) == len(st)
    assert bf["n_peaks"].sum() == len(peaks)

    ev = c.get_data("run_001", "events")
    assert ev.dtype == EVENTS_DTYPE and ev["n_peaks"].sum() == len(peaks)

    assert c.plan("run_001", "events") == []
    assert "raw_files" in c.to_dot("events")


def test_peak_options_change_key_and_result(tmp_path, data_root):
    c = make(tmp_path, data_root)
    k = c.key_for("run_001", "peaks")
    n = len(c.get_data("run_001", "peaks"))
    c.set_config({"peaks": {"threshold": 200.0}})
    assert c.key_for("run_001", "peaks") != k
    assert len(c.get_data("run_001", "peaks")) < n
    assert c.explain("run_001", "peaks")["st_waveforms"].status != "compute"
    c.set_config({"baseline_samples": 20})
    assert c.plan("run_001", "peaks") == ["st_waveforms", "peaks"]  # raw_files in memory
    assert make(tmp_path, data_root, baseline_samples=20).plan("run_001", "peaks") == [
        "raw_files",
        "st_waveforms",
        "peaks",
    ]


def test_key_survives_moving_the_data_folder(tmp_path, data_root):
    k = make(tmp_path, data_root).key_for("run_001", "basic_features")
    moved = tmp_path / "elsewhere" / "renamed_DAQ"
    moved.parent.mkdir()
    shutil.copytree(data_root, moved, copy_function=shutil.copy2)  # keeps mtimes
    shutil.rmtree(data_root)
    c = make(tmp_path, moved)
    assert c.key_for("run_001", "basic_features") == k
    assert c.is_cached("run_001", "basic_features") is False  # nothing computed yet
    c.get_data("run_001", "basic_features")
    c2 = make(tmp_path, data_root=tmp_path / "elsewhere" / "renamed_DAQ")
    assert c2.plan("run_001", "basic_features") == []


def test_key_changes_with_file_mtime_and_size(tmp_path, data_root):
    c = make(tmp_path, data_root)
    k = c.key_for("run_001", "peaks")
    f = sorted((data_root / "run_001" / "RAW").iterdir())[0]
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    k_mtime = c.key_for("run_001", "peaks")
    assert k_mtime != k
    with open(f, "ab") as fh:
        fh.write(b"")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert c.key_for("run_001", "peaks") == k
    data = f.read_bytes()
    f.write_bytes(data + data[-50:])
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert c.key_for("run_001", "peaks") not in (k, k_mtime)


def test_adapter_is_part_of_the_key_and_v1725_runs(tmp_path):
    root = tmp_path / "DAQ"
    generate_run(root, "bin_run", fmt="v1725", n_channels=2, n_waveforms=20, n_samples=200, seed=2)
    c = make(tmp_path, root, daq_adapter="v1725")
    st = c.get_data("bin_run", "st_waveforms")
    assert len(st) == 40 and (st["dt"] == 4).all()
    assert len(c.get_data("bin_run", "peaks")) > 0
    c.set_config({"daq_adapter": "nope"})
    with pytest.raises(UnknownAdapterError):
        c.get_data("bin_run", "peaks")


def test_missing_and_empty_runs_are_errors(tmp_path, data_root):
    c = make(tmp_path, data_root)
    with pytest.raises(RunNotFoundError):
        c.get_data("no_such_run", "peaks")
    (data_root / "empty_run" / "RAW").mkdir(parents=True)
    with pytest.raises(NoDataError):
        c.get_data("empty_run", "peaks")
    assert not (tmp_path / "cache" / "empty_run").exists()


def test_cached_get_data_in_a_new_process(tmp_path, data_root):
    c = make(tmp_path, data_root)
    expected = np.array(c.get_data("run_001", "peaks"))
    out = tmp_path / "out.npy"
    script = textwrap.dedent(
        f"""
        import time, numpy as np
        from waveform_analysis import Context, Plugin, standard_plugins

        calls = []
        for p in standard_plugins():
            orig = type(p).compute_chunks  # what the Context calls for a cached plugin
            def spy(self, *a, _orig=orig, **k):
                calls.append(self.provides)
                return _orig(self, *a, **k)
            type(p).compute_chunks = spy
        t0 = time.perf_counter()
        ctx = Context(storage_dir={str(tmp_path / "cache")!r}, config={{"data_root": {str(data_root)!r}}})
        ctx.register(standard_plugins())
        peaks = ctx.get_data("run_001", "peaks")
        dt = time.perf_counter() - t0
        assert calls == [], calls
        np.save({str(out)!r}, np.asarray(peaks))
        print(f"cached get_data in a fresh process: {{dt * 1e3:.1f}} ms")
        """
    )
    env = {**os.environ}
    res = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=240
    )
    assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(np.load(out), expected)


def test_peaks_saturated_follows_the_st_waveforms_adc_max_option(tmp_path):
    # defect: st_waveforms marked a record at its adc_max option saturated, but peaks
    # judged the same samples against the fixed 14-bit limit and did not
    from waveform_analysis.dtypes import st_waveforms_dtype
    from waveform_analysis.synthetic import write_vx2730

    rec = np.zeros(2, dtype=st_waveforms_dtype(60))
    rec["channel"] = 0
    rec["time"] = rec["timestamp"] = [1_000, 2_000_000]
    rec["dt"] = 2
    rec["length"] = 60
    rec["wave"] = 1000
    rec["wave"][0, 45:49] = 12000  # clipped at a 12-bit-like limit set as an option
    rec["wave"][1, 45:49] = 5000
    write_vx2730(tmp_path / "DAQ" / "r" / "RAW", rec)
    c = make(tmp_path, tmp_path / "DAQ", adc_max=12000, peaks={"polarity": "positive"})
    assert list(c.get_data("r", "st_waveforms")["saturated"]) == [True, False]
    peaks = c.get_data("r", "peaks")
    assert list(peaks["record_i"]) == [0, 1]
    assert list(peaks["saturated"]) == [True, False]
    key = c.key_for("r", "peaks")
    c.set_config({"adc_max": 16383})  # the option is part of the peaks' key too
    assert c.key_for("r", "peaks") != key
    assert not c.get_data("r", "peaks")["saturated"].any()
