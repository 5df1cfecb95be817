"""Cache faults: every damaged, interrupted or contested entry ends in a right result or a clear error.

Each case damages a real cache entry of the standard chain (or interferes with
its write) and then asks for the data again: the answer must equal what a
fresh computation gives, or be an error that names the entry; never a wrong
array. ``pytest tests/reliability/test_cache_faults.py`` runs them all (a few
seconds).
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from waveform_analysis import Context, standard_plugins
from waveform_analysis.core.storage import CacheStorage, verify_folder
from waveform_analysis.core.storage import entry as entry_mod
from waveform_analysis.errors import CacheWriteError
from waveform_analysis.synthetic import generate_runs

RUN = "run_001"


@pytest.fixture(scope="module")
def daq(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("faults") / "DAQ"
    generate_runs(root, [RUN], n_waveforms=200, n_samples=128, seed=11)
    return root


def make_ctx(daq: Path, cache: Path, **kw) -> Context:
    ctx = Context(storage_dir=cache, config={"data_root": str(daq)}, **kw)
    ctx.register(standard_plugins())
    return ctx


def entry_paths(ctx: Context, name: str) -> tuple[Path, Path]:
    return ctx.storage.paths(RUN, name, ctx.key_for(RUN, name))


@pytest.fixture()
def truth(daq, tmp_path) -> np.ndarray:
    return np.array(make_ctx(daq, tmp_path / "reference").get_data(RUN, "peaks"))


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.rglob("*.tmp"))


# -- damaged entries ----------------------------------------------------------------------------


def truncate_npy(npy: Path, meta: Path) -> None:
    npy.write_bytes(npy.read_bytes()[: npy.stat().st_size // 2])


def corrupt_json(npy: Path, meta: Path) -> None:
    meta.write_text(meta.read_text()[:40] + "}{ not json")


def delete_npy(npy: Path, meta: Path) -> None:
    npy.unlink()


def delete_json(npy: Path, meta: Path) -> None:
    meta.unlink()


def json_for_other_shape(npy: Path, meta: Path) -> None:
    rec = json.loads(meta.read_text())
    rec["shape"] = [rec["shape"][0] + 1]
    meta.write_text(json.dumps(rec))


def garbage_header(npy: Path, meta: Path) -> None:
    data = bytearray(npy.read_bytes())
    data[:6] = b"NOTNPY"
    npy.write_bytes(bytes(data))


DAMAGE = [truncate_npy, corrupt_json, delete_npy, delete_json, json_for_other_shape, garbage_header]


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__)
def test_a_damaged_entry_is_recomputed(daq, tmp_path, truth, damage):
    cache = tmp_path / "cache"
    ctx = make_ctx(daq, cache)
    ctx.get_data(RUN, "peaks")
    damage(*entry_paths(ctx, "peaks"))
    again = make_ctx(daq, cache).get_data(RUN, "peaks")  # a new process would see the same files
    assert np.array_equal(np.asarray(again), truth)
    assert all(c.ok for c in verify_folder(cache))


def overwrite_inside(npy: Path) -> None:
    """Change bytes in the middle of the data without changing the file's size."""
    with open(npy, "r+b") as f:
        f.seek(npy.stat().st_size - 64)
        f.write(b"\x7f" * 32)


def test_bytes_changed_in_place_are_caught_by_verify_and_by_verify_cache(daq, tmp_path, truth):
    cache = tmp_path / "cache"
    ctx = make_ctx(daq, cache)
    ctx.get_data(RUN, "peaks")
    npy, _ = entry_paths(ctx, "peaks")
    overwrite_inside(npy)
    bad = [c for c in verify_folder(cache) if not c.ok]
    assert [(c.data_name, c.status) for c in bad] == [("peaks", "mismatch")]
    # the default (verify_cache=False) memory-maps without reading every byte: documented
    checked = make_ctx(daq, cache, verify_cache=True).get_data(RUN, "peaks")
    assert np.array_equal(np.asarray(checked), truth)
    assert all(c.ok for c in verify_folder(cache))


# -- writes that fail or are interrupted ------------------------------------------------------------


def test_disk_full_half_way_leaves_nothing_and_names_the_entry(daq, tmp_path, truth, monkeypatch):
    cache = tmp_path / "cache"
    ctx = make_ctx(daq, cache)
    ctx.get_data(RUN, "st_waveforms")
    real_write = entry_mod.write_piece

    def write_then_fail(f, piece):
        f.write(b"\0" * 1000)  # half an entry reached the disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(entry_mod, "write_piece", write_then_fail)
    with pytest.raises(CacheWriteError) as info:
        ctx.get_data(RUN, "peaks")
    assert info.value.errno == errno.ENOSPC and "peaks-" in str(info.value) and "nothing was kept" in str(info.value)
    npy, meta = entry_paths(ctx, "peaks")
    assert not npy.exists() and not meta.exists() and leftovers(cache) == []
    monkeypatch.setattr(entry_mod, "write_piece", real_write)
    assert np.array_equal(np.asarray(make_ctx(daq, cache).get_data(RUN, "peaks")), truth)


KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    from waveform_analysis.core.storage import CacheStorage, entry

    def write_and_die(f, piece):
        f.write(b"partial")
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)  # pulled the plug in the middle of the write

    entry.write_piece = write_and_die
    CacheStorage(sys.argv[1]).save("r", "x", "k" * 20, np.arange(10), {})
    """
)


def test_a_writer_killed_mid_save_leaves_no_entry_and_its_temp_file_is_cleaned(tmp_path):
    root = tmp_path / "cache"
    script = tmp_path / "killed.py"
    script.write_text(KILLED_WRITER)
    res = subprocess.run([sys.executable, str(script), str(root)], capture_output=True, timeout=120)
    assert res.returncode == -signal.SIGKILL
    assert leftovers(root), "the killed writer should have left its temporary file"
    s = CacheStorage(root)
    assert s.load("r", "x", "k" * 20) is None  # no entry: no JSON was committed
    out = s.save("r", "x", "k" * 20, np.arange(10), {})  # the next write of that entry cleans up
    assert np.array_equal(out, np.arange(10)) and leftovers(root) == []


def test_cache_clear_removes_stale_temp_files(tmp_path):
    s = CacheStorage(tmp_path)
    s.save("r", "x", "k" * 20, np.arange(3), {})
    (tmp_path / "r" / ".x-kkkkkkkkkkkkkkkkkkkk.npy.999999.deadbeef0000.tmp").write_bytes(b"partial")
    assert s.delete("r") == 3 and not (tmp_path / "r").exists()


def write_same_key(root: str, value: int, n: int) -> None:
    s = CacheStorage(root)
    for _ in range(n):
        s.save("r", "x", "k" * 20, np.full(50_000, value, dtype=np.int64), {"writer": value})


def test_two_processes_writing_one_key_leave_one_consistent_entry(tmp_path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=write_same_key, args=(str(tmp_path), v, 15)) for v in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    s = CacheStorage(tmp_path)
    arr = s.load("r", "x", "k" * 20, verify=True)
    meta = json.loads((tmp_path / "r" / f"x-{'k' * 20}.json").read_text())
    assert arr is not None and len(set(np.asarray(arr).tolist())) == 1
    assert int(arr[0]) == meta["writer"]  # data and metadata come from the same writer
    assert leftovers(tmp_path) == [] and all(c.ok for c in verify_folder(tmp_path))


# -- security -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("run_id", ["../x", "a/../../b", "..", "/etc", "x\\y", ""])
def test_a_run_id_cannot_reach_outside_the_cache(daq, tmp_path, run_id):
    from waveform_analysis.errors import ConfigError

    ctx = make_ctx(daq, tmp_path / "cache")
    with pytest.raises(ConfigError):
        ctx.get_data(run_id, "peaks")
    assert not (tmp_path / "x").exists() and not (tmp_path / "b").exists()


def test_a_pickle_planted_in_the_cache_is_never_loaded(daq, tmp_path, truth):
    import pickle

    cache = tmp_path / "cache"
    ctx = make_ctx(daq, cache)
    ctx.get_data(RUN, "peaks")
    npy, meta = entry_paths(ctx, "peaks")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    npy.write_bytes(pickle.dumps(Evil()))
    rec = json.loads(meta.read_text())
    rec["file_size"] = npy.stat().st_size
    meta.write_text(json.dumps(rec))
    again = make_ctx(daq, cache).get_data(RUN, "peaks")
    assert not marker.exists() and np.array_equal(np.asarray(again), truth)


def test_temp_files_of_a_live_writer_are_left_alone(tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        tmp = folder / f".x-{'k' * 20}.npy.{live.pid}.abcdef012345.tmp"
        tmp.write_bytes(b"in progress elsewhere")
        os.utime(tmp, (time.time(), time.time()))
        CacheStorage(tmp_path).save("r", "x", "k" * 20, np.arange(3), {})
        assert tmp.exists()
    finally:
        live.kill()
        live.wait()
