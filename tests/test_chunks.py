"""A run processed in chunks of records gives the same data as the run in one piece."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from waveform_analysis import Context, standard_plugins
from waveform_analysis.core.plugin import Plugin
from waveform_analysis.core.storage.npy import zero_padding
from waveform_analysis.daq import get_adapter
from waveform_analysis.dtypes import st_waveforms_dtype
from waveform_analysis.errors import ConfigError
from waveform_analysis.processing import basic_features, find_peaks, group_events
from waveform_analysis.processing.hits import set_baselines
from waveform_analysis.saturation import saturated
from waveform_analysis.synthetic import generate_run, synthesize, write_vx2730

RUN = "run_001"
CHAIN = ("st_waveforms", "peaks", "basic_features", "events")


def make(root, cache, **config) -> Context:
    ctx = Context(storage_dir=cache, config={"data_root": str(root), **config})
    ctx.register(standard_plugins())
    return ctx


def chunk_mb(records: int, n_samples: int) -> float:
    """A ``chunk_mb`` that holds ``records`` records of ``n_samples`` samples."""
    return records * st_waveforms_dtype(n_samples).itemsize / (1 << 20)


def chain(ctx: Context) -> dict[str, np.ndarray]:
    return {name: np.asarray(ctx.get_data(RUN, name)) for name in CHAIN}


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    for name in CHAIN:
        assert a[name].dtype == b[name].dtype, name
        assert a[name].shape == b[name].shape, name
        assert data_bytes(a[name]) == data_bytes(b[name]), f"{name} differs"


def data_bytes(arr: np.ndarray) -> bytes:
    """The bytes of ``arr`` with alignment padding zeroed (numpy leaves it undefined in memory)."""
    return zero_padding(np.array(arr)).tobytes()


def leftovers(cache) -> list[str]:
    return sorted(p.name for p in cache.rglob("*.tmp"))


@pytest.fixture(scope="module", params=["vx2730", "v1725"])
def run(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param) / "DAQ"
    generate_run(root, RUN, fmt=request.param, n_channels=2, n_boards=2, n_waveforms=60,
                 n_samples=200, n_segments=2, seed=3)  # fmt: skip
    return root, request.param


@pytest.fixture(scope="module")
def whole(run, tmp_path_factory):
    root, fmt = run
    return chain(make(root, tmp_path_factory.mktemp("whole"), daq_adapter=fmt))


@pytest.mark.parametrize("records", [1, 3, 7, 50])
def test_chunked_chain_is_bit_for_bit_the_whole_run(run, whole, tmp_path, records):
    root, fmt = run
    cache = tmp_path / "cache"
    ctx = make(root, cache, daq_adapter=fmt, chunk_mb=chunk_mb(records, 200))
    assert_same(chain(ctx), whole)
    assert leftovers(cache) == []  # the staging's scratch file is gone too


def test_the_chain_matches_the_functions_on_the_whole_run(run, whole):
    root, fmt = run
    adapter = get_adapter(fmt)
    st = adapter.read(root, adapter.list_files(root, RUN), RUN)
    set_baselines(st, 40)
    st["saturated"] = saturated(st)
    peaks = find_peaks(st)
    assert data_bytes(st) == data_bytes(whole["st_waveforms"])
    assert data_bytes(peaks) == data_bytes(whole["peaks"])
    assert data_bytes(basic_features(st, peaks)) == data_bytes(whole["basic_features"])
    assert data_bytes(group_events(peaks, 100)) == data_bytes(whole["events"])


def test_a_chunked_plugin_sees_one_chunk_of_records_at_a_time(run, tmp_path):
    root, fmt = run
    seen = []

    class Sizes(Plugin):
        provides = "sizes"
        depends_on = ("st_waveforms", "peaks")
        chunked = True

        def compute(self, context, run_id, st_waveforms, peaks):
            seen.append((len(st_waveforms), type(st_waveforms).__name__))
            out = np.zeros(len(peaks), [("record_i", np.int64), ("time", np.int64)])
            out["record_i"] = peaks["record_i"]
            out["time"] = st_waveforms["time"][peaks["record_i"]]  # record_i counts within the chunk
            return out

    ctx = make(root, tmp_path / "cache", daq_adapter=fmt, chunk_mb=chunk_mb(16, 200))
    ctx.register(Sizes)
    out = ctx.get_data(RUN, "sizes")
    st, peaks = ctx.get_data(RUN, "st_waveforms"), ctx.get_data(RUN, "peaks")
    assert max(n for n, _ in seen) == 16 and sum(n for n, _ in seen) == len(st)
    assert {kind for _, kind in seen} == {"memmap"}  # read from the cache file, a window at a time
    np.testing.assert_array_equal(out["record_i"], peaks["record_i"])  # shifted back to the run
    np.testing.assert_array_equal(out["time"], st["time"][peaks["record_i"]])


def test_a_plugin_that_is_not_chunked_sees_the_whole_run(run, tmp_path):
    root, fmt = run
    seen = []

    class Whole(Plugin):
        provides = "whole"
        depends_on = ("st_waveforms",)

        def compute(self, context, run_id, st_waveforms):
            seen.append(len(st_waveforms))
            return np.arange(len(st_waveforms))

    ctx = make(root, tmp_path / "cache", daq_adapter=fmt, chunk_mb=chunk_mb(4, 200))
    ctx.register(Whole)
    assert len(ctx.get_data(RUN, "whole")) == len(ctx.get_data(RUN, "st_waveforms")) == seen[0]
    assert len(seen) == 1


def pulse_at_the_end(root, n_samples=120):
    """Records whose last samples hold a pulse cut by the record's end, and coincidences
    across channels, written as CSV."""
    st, _ = synthesize(n_channels=2, n_waveforms=30, n_samples=n_samples, seed=5)
    st["wave"][:, -6:] -= np.array([0, 80, 200, 300, 250, 180], np.int16)
    raw = root / RUN / "RAW"
    raw.mkdir(parents=True)
    write_vx2730(raw, st)
    return root


def test_a_pulse_at_a_records_end_and_a_coincidence_across_a_chunk_edge(tmp_path):
    root = pulse_at_the_end(tmp_path / "DAQ")
    whole = chain(make(root, tmp_path / "one"))
    peaks, st = whole["peaks"], whole["st_waveforms"]
    at_end = peaks["right"] == st["length"][peaks["record_i"]]
    assert at_end.sum() >= len(st)  # every record's cut pulse is found, up to its last sample
    for records in (1, 2, 5):
        chunked = chain(make(root, tmp_path / f"c{records}", chunk_mb=chunk_mb(records, 120)))
        assert_same(chunked, whole)
    # one-record chunks put the two channels of each coincidence in different chunks
    ev = whole["events"]
    spans = [np.unique(peaks["record_i"][e["first_peak"] : e["first_peak"] + e["n_peaks"]]).size
             for e in ev if e["n_channels"] > 1]  # fmt: skip
    assert spans and max(spans) >= 2


def test_a_failure_mid_way_through_a_chunked_write_leaves_no_entry(run, tmp_path):
    root, fmt = run
    cache = tmp_path / "cache"

    class Breaks(Plugin):
        provides = "breaks"
        depends_on = ("st_waveforms",)
        chunked = True

        def compute(self, context, run_id, st_waveforms):
            if st_waveforms["time"][0] > context.stop_at:
                raise RuntimeError("the disk went away")
            return np.asarray(st_waveforms["time"])

    ctx = make(root, cache, daq_adapter=fmt, chunk_mb=chunk_mb(8, 200))
    ctx.register(Breaks)
    st = ctx.get_data(RUN, "st_waveforms")
    ctx.stop_at = int(st["time"][len(st) // 2])
    with pytest.raises(RuntimeError, match="the disk went away"):
        ctx.get_data(RUN, "breaks")
    assert not list((cache / RUN).glob("breaks-*")) and leftovers(cache) == []
    ctx.stop_at = int(st["time"][-1])
    np.testing.assert_array_equal(ctx.get_data(RUN, "breaks"), st["time"])


KILLED = textwrap.dedent(
    """
    import os, signal, sys
    from waveform_analysis import Context, standard_plugins
    from waveform_analysis.core.storage import entry

    real = entry.EntryWriter.append
    count = [0]

    def append_then_die(self, piece):
        real(self, piece)
        count[0] += 1
        if count[0] == 3:
            self._finish_pending()
            self._file.flush()
            os.kill(os.getpid(), signal.SIGKILL)  # the plug pulled after the third chunk

    entry.EntryWriter.append = append_then_die
    ctx = Context(storage_dir=sys.argv[2], config={"data_root": sys.argv[1], "chunk_mb": float(sys.argv[3]),
                                                   "daq_adapter": sys.argv[4]})
    ctx.register(standard_plugins())
    ctx.get_data("run_001", "st_waveforms")
    """
)


def test_a_chunked_write_killed_mid_way_leaves_no_entry_and_is_cleaned_up(run, whole, tmp_path):
    root, fmt = run
    cache = tmp_path / "cache"
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    res = subprocess.run([sys.executable, str(script), str(root), str(cache), str(chunk_mb(5, 200)), fmt],
                         capture_output=True, timeout=300)  # fmt: skip
    assert res.returncode == -9, res.stderr.decode()[-2000:]
    assert leftovers(cache), "the killed writer leaves its temporary and scratch files"
    assert not list((cache / RUN).glob("st_waveforms-*.json"))
    ctx = make(root, cache, daq_adapter=fmt, chunk_mb=chunk_mb(5, 200))
    assert ctx.get_data(RUN, "st_waveforms").tobytes() == whole["st_waveforms"].tobytes()
    assert leftovers(cache) == []


def test_read_only_context_joins_the_chunks_in_memory(run, whole, tmp_path):
    root, fmt = run
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(root), "daq_adapter": fmt,
                  "chunk_mb": chunk_mb(3, 200)}, readonly=True)  # fmt: skip
    ctx.register(standard_plugins())
    assert_same(chain(ctx), whole)


@pytest.mark.parametrize("value", [0, -1, "big", True])
def test_a_bad_chunk_budget_is_a_config_error(run, tmp_path, value):
    root, fmt = run
    ctx = make(root, tmp_path / "cache", daq_adapter=fmt, chunk_mb=value)
    with pytest.raises(ConfigError, match="chunk_mb"):
        ctx.get_data(RUN, "st_waveforms")


def test_a_chunked_plugin_with_an_input_it_cannot_cut_is_a_clear_error(run, tmp_path):
    from waveform_analysis.errors import PluginError

    root, fmt = run

    class Table(Plugin):
        provides = "table"
        depends_on = ("st_waveforms",)

        def compute(self, context, run_id, st_waveforms):
            return np.arange(3)  # neither one row per record nor record_i

    class Uses(Plugin):
        provides = "uses"
        depends_on = ("st_waveforms", "table")
        chunked = True

        def compute(self, context, run_id, st_waveforms, table):
            return np.zeros(len(st_waveforms))

    ctx = make(root, tmp_path / "cache", daq_adapter=fmt, chunk_mb=chunk_mb(8, 200))
    ctx.register(Table, Uses)
    with pytest.raises(PluginError, match="'uses' is chunked, but its input 'table'"):
        ctx.get_data(RUN, "uses")
    assert not list((tmp_path / "cache" / RUN).glob("uses-*")) and leftovers(tmp_path / "cache") == []
    assert ctx.is_cached(RUN, "st_waveforms")  # what was computed before is kept


def test_low_frequency_noise_through_the_chain_matches_the_functions(tmp_path):
    # the second walk of cut windows needs the run-wide noise first: the chunked chain
    # gives the baselines the functions give on the whole run, and no flood of peaks
    root = tmp_path / "DAQ"
    generate_run(root, "run_lf", fmt="vx2730", n_channels=2, shape="scintillator",
                 n_waveforms=300, n_samples=400, noise=3.0, noise_lf=5.0, noise_only=True, seed=4)
    ctx = make(root, tmp_path / "cache", chunk_mb=chunk_mb(50, 400))
    st_chain = np.asarray(ctx.get_data("run_lf", "st_waveforms"))
    adapter = get_adapter("vx2730")
    st = adapter.read(root, adapter.list_files(root, "run_lf"), "run_lf")
    set_baselines(st)
    np.testing.assert_array_equal(st_chain["time"], st["time"])
    np.testing.assert_array_equal(st_chain["baseline"], st["baseline"])
    assert len(ctx.get_data("run_lf", "peaks")) <= 3  # 249 per 1,000 before (0.3 now)
