"""Distinct patterns and region sizes against set() and dict counting."""

from __future__ import annotations

import numpy as np
import pytest

from nacscope.analysis import patterns as rg
from nacscope.codes.format import CodeSet, pack_bits


def ref_groups(bits):
    first = {}
    ids = []
    for row in map(tuple, bits):
        first.setdefault(row, len(first))
        ids.append(first[row])
    return np.array(ids), np.bincount(ids)


@pytest.mark.parametrize("n,units,p_dup", [(1, 3, 0.0), (50, 1, 0.0), (300, 7, 0.3), (400, 64, 0.5), (200, 130, 0.2),
                                           (100, 4096, 0.5)])
def test_distinct_and_sizes_random(n, units, p_dup):
    rng = np.random.default_rng(units)
    bits = rng.integers(0, 2, (n, units)).astype(np.uint8)
    dup = rng.random(n) < p_dup
    bits[dup] = bits[rng.integers(0, max(1, n // 10), dup.sum())]
    assert rg.distinct_patterns(pack_bits(bits)) == len(set(map(tuple, bits)))
    group, sizes = rg.region_sizes(pack_bits(bits))
    ref_g, ref_s = ref_groups(bits)
    np.testing.assert_array_equal(group, ref_g)
    np.testing.assert_array_equal(sizes, ref_s)


def test_distinct_on_digits(digits_codes):
    layers, _ = digits_codes
    for bits in layers.values():
        assert rg.distinct_patterns(pack_bits(bits)) == len(set(map(tuple, bits)))


def test_hash_collision_falls_back_to_exact(monkeypatch):
    bits = np.random.default_rng(0).integers(0, 2, (100, 20)).astype(np.uint8)
    monkeypatch.setattr(rg, "_row_hashes", lambda w: np.zeros(len(w), dtype=np.uint64))  # every row collides
    assert rg.distinct_patterns(pack_bits(bits)) == len(set(map(tuple, bits)))
    np.testing.assert_array_equal(rg.region_sizes(pack_bits(bits))[0], ref_groups(bits)[0])


def test_empty():
    g, s = rg.region_sizes(np.zeros((0, 4), np.uint8))
    assert len(g) == 0 and len(s) == 0
    assert rg.distinct_patterns(np.zeros((0, 4), np.uint8)) == 0


def test_cumulative_distinct(tmp_path, digits_codes, make_codeset):
    layers, y = digits_codes
    # Make fc2 coarse so the joint count differs from both layers alone.
    layers = {"fc1": layers["fc1"][:, :6], "fc2": layers["fc2"][:, :5]}
    path = make_codeset(tmp_path / "c.h5", layers, y)
    with CodeSet(path) as cs:
        got = rg.cumulative_distinct(cs)
    joint = np.concatenate([layers["fc1"], layers["fc2"]], axis=1)
    assert got["fc1"]["distinct_patterns"] == len(set(map(tuple, layers["fc1"])))
    assert got["fc2"]["distinct_patterns"] == len(set(map(tuple, joint)))
    sizes = ref_groups(joint)[1]
    assert got["fc2"]["regions_with_multiple_samples"] == int((sizes > 1).sum())
    assert got["fc2"]["size_histogram"] == {str(k): int(v) for k, v in enumerate(np.bincount(sizes)) if v}


def test_region_stats_fraction():
    group, sizes = rg.region_sizes(pack_bits(np.array([[0, 1], [0, 1], [1, 1], [0, 0], [0, 0], [0, 0]])))
    st = rg.region_stats(group, sizes)
    assert st["distinct_patterns"] == 3 and st["regions_with_multiple_samples"] == 2
    assert st["fraction_regions_multiple"] == pytest.approx(2 / 3) and st["largest_region"] == 3
    assert st["size_histogram"] == {"1": 1, "2": 1, "3": 1}
