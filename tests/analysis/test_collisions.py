"""Collision groups, near-collisions and nearest-neighbour distances against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nacscope.analysis import collisions as co
from nacscope.codes.format import pack_bits


def brute_groups(bits):
    groups = {}
    for i, row in enumerate(map(tuple, bits)):
        groups.setdefault(row, []).append(i)
    return sorted([g for g in groups.values() if len(g) > 1], key=lambda g: (-len(g), g[0]))


def make_codes(seed, n=120, units=12):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2, (n // 4, units))
    bits = base[rng.integers(0, len(base), n)] ^ (rng.random((n, units)) < 0.05)
    return bits.astype(np.uint8), rng.integers(0, 3, n)


@pytest.mark.parametrize("seed", range(3))
def test_groups_and_purity(seed):
    bits, y = make_codes(seed)
    rep = co.collision_groups(pack_bits(bits), y)
    ref = brute_groups(bits)
    assert [list(g) for g in rep.groups] == ref
    for g, pur, mixed in zip(ref, rep.purity, rep.mixed):
        counts = np.bincount(y[g])
        assert pur == pytest.approx(counts.max() / len(g))
        assert mixed == (len(set(y[g])) > 1)
    s = rep.summary()
    assert s["collision_groups"] == len(ref)
    assert s["samples_in_collisions"] == sum(map(len, ref))
    assert s["largest_group"] == max(map(len, ref))
    assert s["mixed_label_groups"] == sum(len(set(y[g])) > 1 for g in ref)


def test_multihot_purity():
    bits = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [0, 1]])
    y = np.array([[1, 1, 0], [1, 0, 0], [1, 0, 1], [0, 1, 0], [1, 0, 0]], dtype=np.uint8)
    rep = co.collision_groups(pack_bits(bits), y)
    assert rep.purity.tolist() == [1.0, 0.5]  # label 0 shared by all of group 1; nothing by all of group 2
    assert rep.mixed.tolist() == [False, True]


def test_no_labels_and_no_collisions():
    rep = co.collision_groups(pack_bits(np.eye(4, dtype=np.uint8)))
    s = rep.summary()
    assert s["collision_groups"] == 0 and s["samples_in_collisions"] == 0 and s["largest_group"] == 1
    assert s["mixed_label_groups"] is None


@pytest.mark.parametrize("units", [12, 200])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_near_collisions_and_nn(units, digits_codes, backend):
    if units == 12:
        bits, _ = make_codes(5, units=units)
    else:
        bits = np.concatenate([digits_codes[0]["fc1"], digits_codes[0]["fc2"]], axis=1)[:150]
        bits = np.concatenate([bits, bits[:, :104]], axis=1)[:, :units]
    n = len(bits)
    d = np.array([[int((bits[i] != bits[j]).sum()) for j in range(n)] for i in range(n)])
    for r in (0, 1, 2):
        pairs = [(i, j) for i, j in itertools.combinations(range(n), 2) if d[i, j] <= r]
        got = co.near_collisions(pack_bits(bits), r, backend=backend)
        assert got["pairs"] == len(pairs)
        assert got["samples"] == len({i for p in pairs for i in p})
    np.fill_diagonal(d, 10**9)
    np.testing.assert_array_equal(co.nn_hamming_distances(pack_bits(bits), backend=backend), d.min(axis=1))
    rows = np.array([3, 0, 7])
    nn, within = co.neighbour_stats(pack_bits(bits), (1, 2), rows=rows, backend=backend)
    np.testing.assert_array_equal(nn, d.min(axis=1)[rows])
    np.testing.assert_array_equal(within[1], (d <= 2).sum(axis=1)[rows])


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_single_sample_nn(backend):
    assert co.nn_hamming_distances(pack_bits(np.ones((1, 5))), backend=backend).tolist() == [-1]
