"""The on-disk cache: atomic writes, corrupt entries, no unpickling."""

from __future__ import annotations

import json
import pickle
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from waveform_analysis import Context, Plugin
from waveform_analysis.core.storage import CacheStorage
from waveform_analysis.errors import CacheError

CALLS: Counter = Counter()
REC = np.dtype([("time", "i8"), ("wave", "i2", (4,))])


class Records(Plugin):
    provides = "records"
    version = "1"

    def compute(self, context, run_id):
        CALLS["records"] += 1
        out = np.zeros(100, REC)
        out["time"] = np.arange(100)
        out["wave"] = np.arange(400).reshape(100, 4)
        return out


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()


def make(tmp_path):
    c = Context(storage_dir=tmp_path / "store", config={"data_root": str(tmp_path / "DAQ")})
    c.register(Records)
    return c


def entry(tmp_path, c):
    key = c.key_for("r", "records")
    base = tmp_path / "store" / "r" / f"records-{key}"
    return base.with_suffix(".npy"), base.with_suffix(".json")


def test_roundtrip_structured(tmp_path):
    s = CacheStorage(tmp_path)
    a = np.zeros(3, REC)
    a["wave"][1] = 7
    m = s.save("r", "x", "k" * 20, a, {"version": "1"})
    assert isinstance(m, np.memmap)
    np.testing.assert_array_equal(m, a)
    np.testing.assert_array_equal(s.load("r", "x", "k" * 20), a)
    assert s.load("r", "x", "other") is None


def test_crash_between_npy_and_json_is_no_entry(tmp_path):
    c = make(tmp_path)
    c.get_data("r", "records")
    npy, meta = entry(tmp_path, c)
    meta.unlink()  # as if the process died after moving the .npy into place
    c2 = make(tmp_path)
    assert not c2.is_cached("r", "records")
    CALLS.clear()
    c2.get_data("r", "records")
    assert CALLS["records"] == 1
    assert meta.exists()


def test_leftover_temp_files_are_ignored(tmp_path):
    c = make(tmp_path)
    folder = tmp_path / "store" / "r"
    folder.mkdir(parents=True)
    npy, _ = entry(tmp_path, c)
    (folder / f".{npy.name}.123.abc.tmp").write_bytes(b"partial")
    assert c.get_data("r", "records").shape == (100,)
    assert CALLS["records"] == 1


@pytest.mark.parametrize(
    "damage",
    [
        lambda npy, meta: npy.write_bytes(npy.read_bytes()[:-100]),  # truncated
        lambda npy, meta: npy.write_bytes(b"\x00" * npy.stat().st_size),  # bad header, same size
        lambda npy, meta: meta.write_text("{not json"),
        lambda npy, meta: npy.unlink(),
        lambda npy, meta: meta.write_text(
            json.dumps({**json.loads(meta.read_text()), "shape": [99]})
        ),
    ],
    ids=["truncated", "bad-header", "bad-json", "missing-npy", "shape-mismatch"],
)
def test_corrupt_entry_is_deleted_and_recomputed(tmp_path, damage):
    c = make(tmp_path)
    good = np.array(c.get_data("r", "records"))
    npy, meta = entry(tmp_path, c)
    damage(npy, meta)
    CALLS.clear()
    c2 = make(tmp_path)
    out = c2.get_data("r", "records")
    np.testing.assert_array_equal(out, good)
    assert CALLS["records"] == 1
    # and the rewritten entry is valid for the next reader
    CALLS.clear()
    np.testing.assert_array_equal(make(tmp_path).get_data("r", "records"), good)
    assert CALLS["records"] == 0


def test_pickle_payload_in_cache_is_never_loaded(tmp_path):
    """A shared cache folder could hold a crafted object-array .npy; it must not be unpickled."""
    c = make(tmp_path)
    c.get_data("r", "records")
    npy, meta = entry(tmp_path, c)

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    arr = np.array([Evil()], dtype=object)
    with open(npy, "wb") as f:
        np.save(f, arr, allow_pickle=True)
    m = json.loads(meta.read_text())
    m.update(file_size=npy.stat().st_size, shape=[1], dtype="|O")
    meta.write_text(json.dumps(m))
    CALLS.clear()
    out = make(tmp_path).get_data("r", "records")
    assert not marker.exists()
    assert out.dtype == REC and CALLS["records"] == 1


def test_storage_refuses_object_arrays(tmp_path):
    s = CacheStorage(tmp_path)
    with pytest.raises(CacheError):
        s.save("r", "x", "k" * 20, np.array([None], dtype=object), {})
    assert not list(tmp_path.rglob("*.npy"))


def test_concurrent_writers_end_with_one_valid_entry(tmp_path):
    a = np.arange(10_000, dtype=np.float64)

    def write(_):
        s = CacheStorage(tmp_path)
        return np.array(s.save("r", "x", "k" * 20, a, {}))

    with ThreadPoolExecutor(4) as pool:
        for out in pool.map(write, range(8)):
            np.testing.assert_array_equal(out, a)
    files = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert files == ["x-" + "k" * 20 + ".json", "x-" + "k" * 20 + ".npy"]
    np.testing.assert_array_equal(CacheStorage(tmp_path).load("r", "x", "k" * 20), a)


def test_readonly_storage_does_not_write_or_delete(tmp_path):
    s = CacheStorage(tmp_path)
    s.save("r", "x", "k" * 20, np.arange(3), {})
    ro = CacheStorage(tmp_path, readonly=True)
    with pytest.raises(CacheError):
        ro.save("r", "y", "k" * 20, np.arange(3), {})
    (tmp_path / "r" / ("x-" + "k" * 20 + ".npy")).write_bytes(b"junk")
    assert ro.load("r", "x", "k" * 20) is None
    assert (tmp_path / "r" / ("x-" + "k" * 20 + ".npy")).exists()
    assert ro.delete("r") == 0


def test_delete_matches_data_name_exactly(tmp_path):
    s = CacheStorage(tmp_path)
    s.save("r", "basic", "a" * 20, np.arange(3), {})
    s.save("r", "basic-features", "b" * 20, np.arange(3), {})
    s.delete("r", "basic")
    assert s.load("r", "basic", "a" * 20) is None
    assert s.load("r", "basic-features", "b" * 20) is not None


def test_context_pickles_without_memory(tmp_path):
    c = make(tmp_path)
    c.get_data("r", "records")
    state = pickle.dumps(c)
    assert len(state) < 5000  # the cached array is not in it


def test_two_contexts_racing_on_one_entry(tmp_path):
    """Separate Contexts (no shared lock) computing the same entry at once: one valid entry."""
    import threading

    barrier = threading.Barrier(4)

    class Slow(Records):
        def compute(self, context, run_id):
            barrier.wait(timeout=60)
            return super().compute(context, run_id)

    def run(_):
        c = Context(storage_dir=tmp_path / "store", config={"data_root": str(tmp_path / "DAQ")})
        c.register(Slow)
        return np.array(c.get_data("r", "records"))

    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(run, range(4)))
    for o in outs:
        np.testing.assert_array_equal(o, outs[0])
    files = sorted(p.name for p in (tmp_path / "store" / "r").iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".npy")
    CALLS.clear()
    assert make(tmp_path).get_data("r", "records").shape == (100,)
    assert CALLS["records"] == 0


def test_corrupt_entry_is_logged(tmp_path):
    from loguru import logger

    c = make(tmp_path)
    c.get_data("r", "records")
    npy, _ = entry(tmp_path, c)
    npy.write_bytes(npy.read_bytes()[:50])
    messages: list[str] = []
    sink = logger.add(messages.append, level="WARNING", format="{message}")
    try:
        make(tmp_path).get_data("r", "records")
    finally:
        logger.remove(sink)
    assert any("corrupt cache entry" in m and npy.name in m for m in messages)


def _flip_bytes_in_place(npy: Path) -> None:
    """Overwrite data bytes near the end of ``npy`` without changing its size."""
    raw = bytearray(npy.read_bytes())
    raw[-8:] = bytes(b ^ 0xFF for b in raw[-8:])
    npy.write_bytes(bytes(raw))


def test_checksum_stored_and_verified(tmp_path):
    from waveform_analysis.core.storage import file_checksum, verify_entry, verify_folder

    c = make(tmp_path)
    c.get_data("r", "records")
    npy, meta = entry(tmp_path, c)
    stored = json.loads(meta.read_text())
    assert stored["checksum"] == file_checksum(npy)
    assert len(stored["checksum"]) == 32
    assert verify_entry(meta).status == "ok"
    assert c.storage.verify("r", "records", c.key_for("r", "records")).ok

    size = npy.stat().st_size
    _flip_bytes_in_place(npy)
    assert npy.stat().st_size == size
    check = verify_entry(meta)
    assert check.status == "mismatch" and not check.ok
    assert [e.status for e in verify_folder(tmp_path / "store")] == ["mismatch"]
    # without verification the same-size change goes unnoticed (that is why the option exists)
    assert make(tmp_path).get_data("r", "records")["wave"][-1, -1] != 399


def test_verify_cache_recomputes_a_changed_entry(tmp_path):
    c = make(tmp_path)
    c.get_data("r", "records")
    npy, _ = entry(tmp_path, c)
    _flip_bytes_in_place(npy)
    CALLS.clear()
    messages = []
    from loguru import logger

    sink = logger.add(messages.append, level="WARNING")
    try:
        v = Context(
            storage_dir=tmp_path / "store",
            config={"data_root": str(tmp_path / "DAQ")},
            verify_cache=True,
        )
        v.register(Records)
        out = v.get_data("r", "records")
    finally:
        logger.remove(sink)
    assert CALLS["records"] == 1
    assert out["wave"][-1, -1] == 399
    assert any("checksum" in str(m) and npy.name in str(m) for m in messages)
    assert v.clone().verify_cache is True


def test_entry_without_checksum_is_unchecked(tmp_path):
    from waveform_analysis.core.storage import verify_entry

    c = make(tmp_path)
    c.get_data("r", "records")
    _, meta = entry(tmp_path, c)
    m = json.loads(meta.read_text())
    del m["checksum"]
    meta.write_text(json.dumps(m))
    check = verify_entry(meta)
    assert check.status == "unchecked" and check.ok


def test_one_entry_check_for_loads_and_verification(tmp_path):
    # a load and verify_entry judge an entry by the same check_entry
    from waveform_analysis.core.storage import verify_entry
    from waveform_analysis.core.storage.verify import check_entry

    c = make(tmp_path)
    c.get_data("r", "records")
    key = c.key_for("r", "records")
    npy, meta_path = entry(tmp_path, c)
    meta = json.loads(meta_path.read_text())
    assert check_entry(meta, npy) == ("ok", "")
    assert check_entry(meta, npy, checksum=False) == ("unchecked", "")
    _flip_bytes_in_place(npy)
    status, detail = check_entry(meta, npy)
    assert status == "mismatch" == verify_entry(meta_path).status and "checksum" in detail
    assert c.storage.load("r", "records", key) is not None  # size only
    assert c.storage.load("r", "records", key, verify=True) is None  # deleted as corrupt
    assert check_entry(meta, npy)[0] == "missing"
    npy.write_bytes(b"short")
    assert check_entry(meta, npy)[0] == "size"
    npy.write_bytes(b"x" * meta["file_size"])
    assert check_entry({**meta, "checksum_algorithm": "md0"}, npy)[0] == "unreadable"


def test_one_array_check_for_results_and_pieces(tmp_path):
    from waveform_analysis.core.storage import check_array

    check_array(np.zeros(3), "x")
    with pytest.raises(CacheError, match=r"^plugin P returned builtins\.list, not a numpy array"):
        check_array([1], "plugin P returned")
    writer = CacheStorage(tmp_path).writer("r", "d", "k" * 20, {})
    with pytest.raises(CacheError, match="cannot cache 'd': a piece is an array of dtype object"):
        writer.append(np.array([None]))
    writer.abort()
    assert not list(tmp_path.rglob("*.tmp"))
