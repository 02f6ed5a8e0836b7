"""Cached analysis results in the sidecar beside a code set: keyed by params; the code set itself never changes."""

from __future__ import annotations


import warnings

import numpy as np
import pytest

from nacscope.codes import CodeSet, CodeSetWriter, LayerSpec, read_projection, write_cached, write_projection
from nacscope.codes import cache as cache_mod
from nacscope.codes.validate import validate
from nacscope.errors import CodeSetError


@pytest.fixture()
def small(tmp_path):
    path = tmp_path / "c.h5"
    with CodeSetWriter(path, [LayerSpec("code", 16, kind="code")]) as w:
        w.append({"code": np.random.default_rng(0).integers(0, 2, (40, 16)).astype(bool)})
    return path


def test_cached_result_is_reused_only_with_identical_params(small):
    with CodeSet(small) as cs:
        arr = np.arange(2000, dtype=np.int32)
        assert write_cached(cs, "x.code", {"k": 3, "rank": "hamming"}, {"map": 0.5}, {"a": arr})
        hit = cs.cached("x.code", {"rank": "hamming", "k": 3})  # key order does not matter
        assert hit["result"] == {"map": 0.5}
        np.testing.assert_array_equal(hit["arrays"]["a"], arr)
        assert cs.cached("x.code", {"k": 4, "rank": "hamming"}) is None
        assert cs.cached("y.code", {"k": 3, "rank": "hamming"}) is None
        # Replacing keeps one entry under the key.
        write_cached(cs, "x.code", {"k": 4}, {"map": 0.7})
        assert cs.cached("x.code", {"k": 4})["result"] == {"map": 0.7}
        assert cs.cached("x.code", {"k": 3, "rank": "hamming"}) is None
        # The reader still works after the reopen.
        assert cs.bits("code").shape == (40, 16)
    assert validate(small) == []


def test_projection_round_trip_and_shape_check(small):
    with CodeSet(small) as cs:
        xy = np.random.default_rng(1).normal(size=(40, 2))
        assert write_projection(cs, "umap.code", xy, {"seed": 0})
        np.testing.assert_allclose(read_projection(cs, "umap.code", {"seed": 0}), xy.astype(np.float32))
        assert read_projection(cs, "umap.code", {"seed": 1}) is None
        with pytest.raises(CodeSetError, match=r"\(40, 2\)"):
            write_projection(cs, "bad", np.zeros((39, 2)), {})
    assert validate(small) == []


def test_partial_file_is_not_written(tmp_path):
    w = CodeSetWriter(tmp_path / "p.h5", [LayerSpec("code", 8)])
    w.append({"code": np.ones((3, 8), bool)})
    try:
        cs = CodeSet(tmp_path / "p.h5")  # the .partial, followed via SWMR
        assert cs.swmr and not cache_mod.can_write(cs)
        assert write_cached(cs, "x", {}, {"v": 1}) is False
        cs.close()
    finally:
        w.close()


def test_cache_lives_in_a_sidecar_and_the_code_set_is_never_written(small):
    before = small.read_bytes()
    with CodeSet(small) as cs:
        assert write_cached(cs, "x", {"k": 1}, {"v": 1}, {"a": np.arange(5)})
        assert write_projection(cs, "umap.code", np.zeros((40, 2)), {"seed": 0}, trustworthiness=0.5)
        assert cache_mod.cached_keys(cs) == ["x"]
        assert cache_mod.projection_names(cs) == ["umap.code"]
        assert cache_mod.projection_attrs(cs, "umap.code")["trustworthiness"] == 0.5
    assert small.read_bytes() == before  # bit-identical: results went to the sidecar
    assert cache_mod.cache_path(small).is_file()
    assert validate(small) == []


def test_sidecar_of_another_file_is_ignored(small, tmp_path):
    with CodeSet(small) as cs:
        write_cached(cs, "x", {}, {"v": 1})
    # A new code set written under the same name: the old sidecar no longer applies.
    small.unlink()
    with CodeSetWriter(small, [LayerSpec("code", 16, kind="code")]) as w:
        w.append({"code": np.ones((41, 16), bool)})
    with CodeSet(small) as cs:
        assert cs.cached("x", {}) is None


def test_corrupt_entry_is_ignored_with_one_warning(small):
    import h5py

    with CodeSet(small) as cs:
        write_cached(cs, "x", {}, {"v": 1})
    with h5py.File(cache_mod.cache_path(small), "r+") as f:
        f["analysis/x"].attrs["result"] = "{not json"
    with CodeSet(small) as cs, pytest.warns(cache_mod.CacheWarning, match="corrupt cache entry analysis/x"):
        assert cs.cached("x", {}) is None


def _lock(path):
    from nacscope.codes.lockfile import FileLock

    return FileLock(cache_mod.cache_path(path).with_name(cache_mod.cache_path(path).name + ".lock"))


def test_second_writer_waits_for_the_lock_and_loses_nothing(small):
    import threading

    with CodeSet(small) as cs:
        write_cached(cs, "first", {}, {"v": 1})
        done = threading.Event()

        def second():
            write_cached(cs, "second", {}, {"v": 2})
            done.set()

        with _lock(small):  # another writer is in the middle of a rewrite
            t = threading.Thread(target=second)
            t.start()
            assert not done.wait(0.3)  # it waits instead of writing past the lock
        t.join()
        assert cache_mod.cached_keys(cs) == ["first", "second"]
        assert cs.cached("second", {})["result"] == {"v": 2}


def test_lock_held_too_long_leaves_the_result_uncached_with_one_warning(small, monkeypatch):
    from nacscope.codes import lockfile

    monkeypatch.setattr(lockfile, "LOCK_TIMEOUT_S", 0.2)
    with CodeSet(small) as cs, _lock(small):
        with pytest.warns(cache_mod.CacheWarning, match="result not cached .*for over 0 s") as rec:
            assert write_cached(cs, "x", {}, {"v": 1}) is False
        assert len(rec) == 1
    with CodeSet(small) as cs:
        assert cs.cached("x", {}) is None


@pytest.mark.parametrize("damage", ["array changed", "array removed", "result changed", "digest removed"])
def test_damaged_entry_fails_its_digest_and_is_recomputed(small, damage):
    import h5py

    with CodeSet(small) as cs:
        write_cached(cs, "x", {"k": 1}, {"v": [1, 2]}, {"a": np.arange(10), "b": np.ones(3)})
    with h5py.File(cache_mod.cache_path(small), "r+") as f:
        e = f["analysis/x"]
        if damage == "array changed":
            e["a"][3] = 99
        elif damage == "array removed":
            del e["b"]
        elif damage == "result changed":
            e.attrs["result"] = '{"v": [1, 3]}'  # valid JSON, wrong value
        else:
            del e.attrs["digest"]  # as written by an older nacscope: recomputed without a warning
    with CodeSet(small) as cs:
        if damage == "digest removed":
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                assert cs.cached("x", {"k": 1}) is None
        else:
            with pytest.warns(cache_mod.CacheWarning, match="checksum mismatch"):
                assert cs.cached("x", {"k": 1}) is None
        # Rewriting the entry makes it whole again.
        write_cached(cs, "x", {"k": 1}, {"v": [1, 2]}, {"a": np.arange(10)})
        assert cs.cached("x", {"k": 1})["result"] == {"v": [1, 2]}


def test_damaged_projection_fails_its_digest(small):
    import h5py

    with CodeSet(small) as cs:
        write_projection(cs, "umap.code", np.ones((40, 2)), {"seed": 0}, trustworthiness=0.9)
    with h5py.File(cache_mod.cache_path(small), "r+") as f:
        f["projections/umap.code"].attrs["trustworthiness"] = "not a number"
    with CodeSet(small) as cs, pytest.warns(cache_mod.CacheWarning, match="checksum mismatch"):
        assert read_projection(cs, "umap.code", {"seed": 0}) is None


def test_unreadable_sidecar_is_ignored_and_replaced(small):
    with CodeSet(small) as cs:
        write_cached(cs, "x", {}, {"v": 1})
    side = cache_mod.cache_path(small)
    side.write_bytes(side.read_bytes()[:600])  # truncated
    with CodeSet(small) as cs:
        with pytest.warns(cache_mod.CacheWarning, match="unreadable"):
            assert cs.cached("x", {}) is None
            assert cache_mod.cached_keys(cs) == []
        assert write_cached(cs, "y", {}, {"v": 2})
    with CodeSet(small) as cs, warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cs.cached("y", {})["result"] == {"v": 2}
