"""Large-file paths (query subsets, vectorised collision groups, the hash-collision fallback) on small
data with forced small thresholds, against brute force written from the definitions."""

from __future__ import annotations

import numpy as np
import pytest

from nacscope.analysis import patterns as regions, scale
from nacscope.analysis.collisions import collision_groups
from nacscope.analysis.engine import analyze_codeset, analyze_layer, analyze_retrieval
from nacscope.analysis.retrieval import codeset_retrieval
from nacscope.codes.format import CodeSet
from tests.helpers import reference_map


def _codes_with_duplicates(n=600, bits=24, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 2, (5, bits), dtype=np.uint8)
    y = rng.integers(0, 5, n)
    b = centres[y] ^ (rng.random((n, bits)) < 0.08).astype(np.uint8)
    dup = rng.choice(n, n // 4, replace=False)
    src = rng.integers(0, n, len(dup))
    b[dup] = b[src]
    y[dup[::3]] = (y[src[::3]] + 1) % 5  # some groups mix labels
    return b, y


def _brute_groups(bits, y):
    """Groups of identical rows from a dict of row tuples, ordered largest first then by first member."""
    by: dict[tuple, list[int]] = {}
    for i, row in enumerate(map(tuple, bits)):
        by.setdefault(row, []).append(i)
    groups = sorted((m for m in by.values() if len(m) > 1), key=lambda m: (-len(m), m[0]))
    purity = [max(np.bincount(y[m])) / len(m) for m in groups]
    return groups, purity, len(by)


def test_collision_groups_equal_brute_force():
    bits, y = _codes_with_duplicates()
    groups, purity, n_distinct = _brute_groups(bits, y)
    rep = collision_groups(np.packbits(bits, axis=1), y)
    assert [g.tolist() for g in rep.groups] == groups
    assert rep.sizes.tolist() == [len(g) for g in groups]
    assert rep.purity.tolist() == purity  # exact: the same division
    assert rep.mixed.tolist() == [p < 1 for p in purity]
    assert rep.mixed.any() and not rep.mixed.all()
    assert len(np.unique(rep.group_of)) == n_distinct


def test_negative_class_labels_purity():
    bits, y = _codes_with_duplicates(seed=3)
    rep = collision_groups(np.packbits(bits, axis=1), y - 2)
    assert rep.purity.tolist() == _brute_groups(bits, y)[1]


def test_hash_collision_falls_back_to_exact_grouping(monkeypatch):
    bits, y = _codes_with_duplicates(seed=1)
    packed = np.packbits(bits, axis=1)
    want_group, want_sizes = regions.region_sizes(packed)
    # Every row hashing alike: the row check must see the collision and group the rows themselves.
    monkeypatch.setattr(regions, "_row_hashes", lambda w: np.zeros(len(w), dtype=np.uint64))
    group, sizes = regions.region_sizes(packed)
    assert np.array_equal(group, want_group) and np.array_equal(sizes, want_sizes)
    assert len(sizes) == _brute_groups(bits, y)[2]


def test_subset_size_and_rows():
    assert scale.subset_size(100, 1000, max_pairs=10**6) == 100
    assert scale.subset_size(100, 1000, max_pairs=50_000, min_queries=10) == 50
    assert scale.subset_size(100, 1000, max_pairs=10, min_queries=10) == 10
    rows = scale.subset_rows(np.arange(3, 103), 20, seed=4)
    assert len(rows) == 20 and len(set(rows.tolist())) == 20 and np.all(np.diff(rows) > 0)
    assert rows.min() >= 3 and rows.max() <= 102
    assert np.array_equal(rows, scale.subset_rows(np.arange(3, 103), 20, seed=4))
    assert scale.nn_row_count(1000, 500, max_pairs=10**9) == 500
    assert scale.nn_row_count(1000, 500, max_pairs=100_000, min_rows=5) == 100


def test_subset_leave_one_out_equals_brute_force(tmp_path, make_codeset, monkeypatch):
    monkeypatch.setattr(scale, "MIN_QUERIES", 10)
    bits, y = _codes_with_duplicates(n=300)
    with CodeSet(make_codeset(tmp_path / "c.h5", {"fc": bits}, y)) as cs:
        full = scale.subset_retrieval(cs, "fc", R=None, max_pairs=10**9)
        ref = codeset_retrieval(cs, "fc", R=None)
        assert full.subset is None and np.array_equal(full.result.ap, ref.ap)
        sub = scale.subset_retrieval(cs, "fc", R=None, max_pairs=40 * 299)
    rows = sub.query_rows
    assert len(rows) == 40 and sub.subset == {"n_queries": 40, "of": 300, "seed": 0,
                                              "gallery": "all rows except the subset queries"}
    gal = np.setdiff1d(np.arange(300), rows)
    assert sub.n_gallery == len(gal) == 260
    assert np.isclose(sub.result.ap.mean(), reference_map(bits[rows], bits[gal], y[rows], y[gal]), atol=1e-12)
    # k-NN votes from brute-force distances, ties by gallery index.
    d = (bits[rows][:, None, :] != bits[gal][None, :, :]).sum(-1)
    top = np.argsort(d, axis=1, kind="stable")[:, :10]
    pred = np.array([np.bincount(y[gal][t], minlength=5).argmax() for t in top])
    assert np.array_equal(sub.result.knn_correct, pred == y[rows])


def test_subset_query_split_keeps_whole_gallery(tmp_path, make_codeset, monkeypatch):
    monkeypatch.setattr(scale, "MIN_QUERIES", 10)
    bits, y = _codes_with_duplicates(n=300, seed=2)
    is_query = np.zeros(300, dtype=bool)
    is_query[::3] = True
    with CodeSet(make_codeset(tmp_path / "q.h5", {"fc": bits}, y, is_query=is_query)) as cs:
        sub = scale.subset_retrieval(cs, "fc", R=50, max_pairs=30 * 200)
    rows = sub.query_rows
    assert len(rows) == 30 and is_query[rows].all() and sub.subset["of"] == 100
    assert sub.n_gallery == 200
    g = ~is_query
    assert np.isclose(sub.result.ap_at_r.mean(), reference_map(bits[rows], bits[g], y[rows], y[g], R=50), atol=1e-12)


def test_engine_records_the_subset(tmp_path, make_codeset, monkeypatch):
    bits, y = _codes_with_duplicates(n=300, seed=5)
    monkeypatch.setattr(scale, "MAX_PAIRS", 25 * 299)
    monkeypatch.setattr(scale, "MIN_QUERIES", 10)
    with CodeSet(make_codeset(tmp_path / "e.h5", {"fc": bits}, y)) as cs:
        summary, arrays = analyze_retrieval(cs, "fc", use_cache=False)
        layer, _ = analyze_layer(cs, "fc", use_cache=False)
        out = analyze_codeset(cs, use_cache=False)
    assert summary["query_subset"]["n_queries"] == 25 and summary["n_queries"] == 25
    assert summary["n_gallery"] == 275 and len(arrays["query_rows"]) == 25
    gal = np.setdiff1d(np.arange(300), arrays["query_rows"])
    assert np.isclose(summary["map"], reference_map(bits[arrays["query_rows"]], bits[gal], y[arrays["query_rows"]],
                                                    y[gal]), atol=1e-12)
    assert layer["nn_rows"] == 25 * 299 // 300  # nearest-neighbour rows x samples within the same pair budget
    assert any("subset of 25 of 300 queries" in n for n in out["notes"])


@pytest.mark.slow
def test_umap_on_a_recorded_subsample(tmp_path, make_codeset):
    from nacscope.analysis.projection import umap_embed, umap_projection

    bits, y = _codes_with_duplicates(n=200, seed=6)
    with CodeSet(make_codeset(tmp_path / "u.h5", {"fc": bits}, y)) as cs:
        coords, info = umap_projection(cs, "fc", max_samples=80, seed=3, use_cache=False)
    rows = info["rows"]
    assert info["params"]["subsample"] == 80 and len(rows) == 80
    assert np.array_equal(rows, scale.subset_rows(np.arange(200), 80, 3))
    others = np.setdiff1d(np.arange(200), rows)
    assert coords.shape == (200, 2) and np.isnan(coords[others]).all() and np.isfinite(coords[rows]).all()
    # The embedded rows are UMAP of exactly those codes (seeded, single-threaded: deterministic).
    want = umap_embed(np.packbits(bits[rows], axis=1), packed=True, seed=3)
    assert np.allclose(coords[rows], want)
