from pathlib import Path

import numpy as np
import pytest

from waveform_analysis.daq import (
    DAQAdapter,
    available_adapters,
    get_adapter,
    register_adapter,
)
from waveform_analysis.daq.base import make_file_table, raw_dir
from waveform_analysis.dtypes import st_waveforms_dtype
from waveform_analysis.errors import ConfigError, NoDataError, RunNotFoundError, UnknownAdapterError


def test_builtins_registered():
    names = available_adapters()
    assert "vx2730" in names and "v1725" in names
    assert get_adapter("vx2730").sample_ns == 2
    assert get_adapter("v1725").sample_ns == 4


def test_unknown_adapter_names_it_and_lists_known():
    with pytest.raises(UnknownAdapterError) as exc:
        get_adapter("nope9000")
    msg = str(exc.value)
    assert "nope9000" in msg and "vx2730" in msg and "v1725" in msg
    assert isinstance(exc.value, KeyError)


class NpyAdapter(DAQAdapter):
    """A toy format: RAW/*.npy each holding an int16 (n, samples) matrix for one channel."""

    name = "toy_npy_test"
    sample_ns = 10

    def list_files(self, data_root, run_id):
        raw = raw_dir(data_root, run_id)
        entries = [(0, int(p.stem[2:]), 0, p) for p in raw.glob("ch*.npy")]
        return make_file_table(data_root, run_id, raw, entries, "ch<n>.npy")

    def read(self, data_root, files, run_id):
        parts = []
        for f in files:
            w = np.load(Path(data_root) / f["path"])
            st = np.zeros(len(w), dtype=st_waveforms_dtype(w.shape[1]))
            st["wave"] = w
            st["channel"] = f["channel"]
            st["time"] = np.arange(len(w)) * 1000
            st["timestamp"] = st["time"] * 1000
            st["dt"] = self.sample_ns
            st["length"] = w.shape[1]
            parts.append(st)
        st = np.concatenate(parts)
        return st[np.lexsort((st["channel"], st["time"]))]


def test_user_adapter_registration(tmp_path):
    register_adapter(NpyAdapter(), replace=True)
    assert "toy_npy_test" in available_adapters()
    raw = tmp_path / "r1" / "RAW"
    raw.mkdir(parents=True)
    np.save(raw / "ch0.npy", np.ones((3, 5), np.int16))
    np.save(raw / "ch1.npy", np.full((3, 5), 2, np.int16))
    a = get_adapter("toy_npy_test")
    files = a.list_files(tmp_path, "r1")
    assert list(files["channel"]) == [0, 1]
    assert files["path"][0] == "r1/RAW/ch0.npy"
    st = a.read(tmp_path, files, "r1")
    assert list(st["channel"]) == [0, 1, 0, 1, 0, 1]
    with pytest.raises(ConfigError):
        register_adapter(NpyAdapter())  # name taken, no replace
    register_adapter(NpyAdapter, replace=True)  # a class is instantiated


def test_register_rejects_non_adapter():
    with pytest.raises(ConfigError):
        register_adapter(object())


@pytest.mark.parametrize("name", ["vx2730", "v1725"])
def test_missing_run_and_raw_and_empty(tmp_path, name):
    a = get_adapter(name)
    with pytest.raises(RunNotFoundError) as exc:
        a.list_files(tmp_path, "run_missing")
    assert "run_missing" in str(exc.value) and str(tmp_path) in str(exc.value)
    (tmp_path / "run_noraw").mkdir()
    with pytest.raises(RunNotFoundError) as exc:
        a.list_files(tmp_path, "run_noraw")
    assert "run_noraw" in str(exc.value) and "RAW" in str(exc.value)
    (tmp_path / "run_empty" / "RAW").mkdir(parents=True)
    (tmp_path / "run_empty" / "RAW" / "notes.txt").write_text("nothing here")
    with pytest.raises(NoDataError) as exc:
        a.list_files(tmp_path, "run_empty")
    assert "run_empty" in str(exc.value)
