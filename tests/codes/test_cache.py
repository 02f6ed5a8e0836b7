"""Cached analysis results inside a code set: keyed by params, safe against Ctrl-C."""

from __future__ import annotations

import os
import signal

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


def test_ctrl_c_during_a_cache_write_is_held_until_the_write_is_done(small):
    with CodeSet(small) as cs:
        real = cs.n_samples
        with pytest.raises(KeyboardInterrupt):
            with cache_mod._reopened_for_writing(cs, "test") as f:
                os.kill(os.getpid(), signal.SIGINT)  # arrives mid-update
                f.require_group("analysis").create_group("late").attrs["params"] = "{}"
                f["analysis/late"].attrs["result"] = "1"
        assert cs.n_samples == real and "late" in cs.f["analysis"]
    assert validate(small) == []
