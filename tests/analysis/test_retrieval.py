"""Retrieval metrics against slow, obvious reference implementations and hand-worked examples."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from nacscope.analysis import retrieval as rt
from nacscope.analysis.hamming import hamming_distances
from nacscope.codes.format import pack_bits


# ----------------------------------------------------------------------------------- references
def ref_distance(a, b) -> int:
    return int(sum(int(x) != int(y) for x, y in zip(a, b)))


def ref_relevant(qa, ga) -> bool:
    if np.ndim(qa) == 0:
        return int(qa) == int(ga)
    return bool(any(int(x) and int(y) for x, y in zip(qa, ga)))


def ref_ranking(qbits, gbits, rank="hamming", skip=None):
    keys = []
    for j, gb in enumerate(gbits):
        if j == skip:
            continue
        key = ref_distance(qbits, gb) if rank == "hamming" else -int(np.dot(qbits.astype(int), gb.astype(int)))
        keys.append((key, j))
    return [j for _, j in sorted(keys)]


def ref_ap(rels, R=None):
    rels = rels[:R] if R is not None else rels
    hits, total = 0, 0.0
    for i, r in enumerate(rels, start=1):
        if r:
            hits += 1
            total += hits / i
    return total / hits if hits else 0.0


def ref_metrics(qb, gb, ql, gl, *, R=None, k=5, radius=2, knn_k=3, rank="hamming", loo=False):
    out = {"ap": [], "apR": [], "pk": [], "prad": [], "knn": []}
    for i in range(len(qb)):
        order = ref_ranking(qb[i], gb, rank, skip=i if loo else None)
        rels = [ref_relevant(ql[i], gl[j]) for j in order]
        out["ap"].append(ref_ap(rels))
        out["apR"].append(ref_ap(rels, R))
        out["pk"].append(sum(rels[:k]) / k)
        near = [j for j in range(len(gb)) if not (loo and j == i) and ref_distance(qb[i], gb[j]) <= radius]
        out["prad"].append(sum(ref_relevant(ql[i], gl[j]) for j in near) / len(near) if near else 0.0)
        top = order[:knn_k]
        if np.ndim(ql[i]) == 0:
            votes = {}
            for j in top:
                votes[int(gl[j])] = votes.get(int(gl[j]), 0) + 1
            best = max(votes.values())
            out["knn"].append(min(c for c, v in votes.items() if v == best) == int(ql[i]))
        else:
            votes = np.sum([gl[j] for j in top], axis=0)
            out["knn"].append(bool(ql[i][int(np.argmax(votes))]))
    return {k2: np.array(v, dtype=float) for k2, v in out.items()}


def brute_tie_aware_ap(keys, rels):
    """Average AP over every ordering of the items inside each group of equal keys."""
    groups = {}
    for kk, r in zip(keys, rels):
        groups.setdefault(kk, []).append(r)
    per_group = [list(set(itertools.permutations(groups[kk]))) for kk in sorted(groups)]
    aps = []
    for combo in itertools.product(*per_group):
        aps.append(ref_ap([r for g in combo for r in g]))
    # Distinct permutations of a 0/1 multiset are equally likely under a uniform random order.
    return float(np.mean(aps))


# ----------------------------------------------------------------------------------- tests
def test_hand_worked_map():
    """Query 0000; gallery at distances 0,1,1,2,3 with relevance 1,0,1,0,1."""
    q = pack_bits(np.array([[0, 0, 0, 0]]))
    g = pack_bits(np.array([[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]]))
    ql, gl = np.array([0]), np.array([0, 1, 0, 1, 0])
    # Ranking 0,1,2,3,4: precisions at the relevant items 1/1, 2/3, 3/5.
    assert rt.mean_average_precision(q, g, ql, gl) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # Top 2 holds one relevant item, at rank 1.
    assert rt.mean_average_precision(q, g, ql, gl, R=2) == pytest.approx(1.0)
    # Ties at distance 1: (irrelevant, relevant) or (relevant, irrelevant), each with probability 1/2.
    assert rt.mean_average_precision(q, g, ql, gl, tie_aware=True) == pytest.approx((1 + (2 / 3 + 1) / 2 + 3 / 5) / 3)
    assert rt.precision_within_radius(q, g, ql, gl, radius=1) == pytest.approx(2 / 3)
    assert rt.precision_at_k(q, g, ql, gl, k=4) == pytest.approx(0.5)
    # Dot ranking: common ones are all 0, so the order is by index: same as above here.
    assert rt.mean_average_precision(q, g, ql, gl, rank="dot") == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)


def test_query_without_relevant_items_counts_as_zero():
    q = pack_bits(np.array([[0, 0, 0, 0], [1, 1, 1, 1]]))
    g = pack_bits(np.array([[0, 0, 0, 0], [1, 1, 1, 0]]))
    ql, gl = np.array([0, 7]), np.array([0, 1])
    assert rt.mean_average_precision(q, g, ql, gl) == pytest.approx(0.5)
    assert rt.mean_average_precision(q, g, ql, gl, tie_aware=True) == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(6))
def test_tie_aware_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_bits, g_n = 3, int(rng.integers(4, 8))
    qb = rng.integers(0, 2, (2, n_bits))
    gb = rng.integers(0, 2, (g_n, n_bits))
    ql, gl = rng.integers(0, 2, 2), rng.integers(0, 2, g_n)
    got = rt.average_precision_per_query(pack_bits(qb), pack_bits(gb), ql, gl, tie_aware=True)
    for i in range(2):
        keys = [ref_distance(qb[i], x) for x in gb]
        rels = [int(ql[i] == y) for y in gl]
        assert got[i] == pytest.approx(brute_tie_aware_ap(keys, rels), abs=1e-12)


@pytest.mark.parametrize(
    "n_bits,n_q,n_g,n_classes,multihot,rank,loo",
    [
        (8, 7, 40, 3, False, "hamming", False),
        (13, 5, 30, 2, False, "dot", False),
        (70, 6, 25, 4, False, "hamming", False),
        (600, 4, 20, 3, False, "hamming", False),  # wide: matrix-product distances
        (16, 30, 30, 3, False, "hamming", True),
        (10, 6, 35, 4, True, "hamming", False),
        (9, 25, 25, 3, True, "dot", True),
    ],
)
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_metrics_equal_reference_on_random_codes(n_bits, n_q, n_g, n_classes, multihot, rank, loo, backend):
    rng = np.random.default_rng(n_bits * 100 + n_q)
    # Few distinct codes so that ties are common.
    base = rng.integers(0, 2, (6, n_bits))
    gb = base[rng.integers(0, 6, n_g)] ^ (rng.random((n_g, n_bits)) < 0.1)
    qb = gb.copy() if loo else base[rng.integers(0, 6, n_q)] ^ (rng.random((n_q, n_bits)) < 0.1)
    if multihot:
        gl = (rng.random((n_g, n_classes)) < 0.3).astype(np.uint8)
        ql = gl.copy() if loo else (rng.random((n_q, n_classes)) < 0.3).astype(np.uint8)
    else:
        gl = rng.integers(0, n_classes, n_g)
        ql = gl.copy() if loo else rng.integers(0, n_classes, n_q)
    res = rt.retrieval_metrics(pack_bits(qb), pack_bits(gb), ql, gl, n_bits=n_bits, R=10, ks=(5,), radius=2,
                               knn_k=3, rank=rank, exclude_self=loo, backend=backend)
    ref = ref_metrics(qb, gb, ql, gl, R=10, k=5, radius=2, knn_k=3, rank=rank, loo=loo)
    np.testing.assert_allclose(res.ap, ref["ap"], atol=1e-12)
    np.testing.assert_allclose(res.ap_at_r, ref["apR"], atol=1e-12)
    np.testing.assert_allclose(res.precision_at_k[5], ref["pk"], atol=1e-12)
    np.testing.assert_allclose(res.precision_radius, ref["prad"], atol=1e-12)
    np.testing.assert_array_equal(res.knn_correct, ref["knn"].astype(bool))


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_metrics_equal_reference_on_digits(digits_codes, backend):
    layers, y = digits_codes
    bits = layers["fc2"]
    rng = np.random.default_rng(1)
    qi = rng.choice(len(bits), 15, replace=False)
    gi = np.setdiff1d(np.arange(len(bits)), qi)[:300]
    res = rt.retrieval_metrics(pack_bits(bits[qi]), pack_bits(bits[gi]), y[qi], y[gi], n_bits=32, R=50, ks=(5,),
                               knn_k=3, backend=backend)
    ref = ref_metrics(bits[qi], bits[gi], y[qi], y[gi], R=50, k=5, knn_k=3)
    np.testing.assert_allclose(res.ap, ref["ap"], atol=1e-12)
    np.testing.assert_allclose(res.ap_at_r, ref["apR"], atol=1e-12)
    np.testing.assert_allclose(res.precision_radius, ref["prad"], atol=1e-12)
    np.testing.assert_array_equal(res.knn_correct, ref["knn"].astype(bool))
    tie_ref = []
    for i in range(len(qi)):
        keys = (bits[gi] != bits[qi[i]]).sum(1)
        rels = (y[gi] == y[qi[i]]).astype(np.int64)
        counts = np.bincount(keys, minlength=34)[None]
        relc = np.bincount(keys, weights=rels, minlength=34)[None]
        tie_ref.append(rt.tie_aware_ap_from_histograms(counts, relc)[0])
    np.testing.assert_allclose(res.tie_ap, tie_ref, atol=1e-12)
    assert 0.1 < res.ap.mean() < 1  # real structure: better than chance (0.1) on digits


def test_pr_curve_against_reference():
    rng = np.random.default_rng(3)
    qb, gb = rng.integers(0, 2, (4, 6)), rng.integers(0, 2, (20, 6))
    ql, gl = rng.integers(0, 2, 4), rng.integers(0, 2, 20)
    radii, p, r = rt.pr_curve(pack_bits(qb), pack_bits(gb), ql, gl)
    assert list(radii) == list(range(9))  # 8 bits stored (one byte)
    for rad in range(7):
        ps, rs = [], []
        for i in range(4):
            near = [j for j in range(20) if ref_distance(qb[i], gb[j]) <= rad]
            rel = [j for j in near if ql[i] == gl[j]]
            n_rel = sum(ql[i] == gl)
            ps.append(len(rel) / len(near) if near else 0.0)
            rs.append(len(rel) / n_rel if n_rel else 0.0)
        assert p[rad] == pytest.approx(np.mean(ps)) and r[rad] == pytest.approx(np.mean(rs))
    assert r[6] == pytest.approx(np.mean([1.0 if (ql[i] == gl).any() else 0.0 for i in range(4)]))


@pytest.mark.parametrize("n_bits", [8, 64, 100, 700])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_hamming_distances_and_topk(n_bits, backend):
    rng = np.random.default_rng(n_bits)
    qb, gb = rng.integers(0, 2, (5, n_bits)), rng.integers(0, 2, (200, n_bits))
    gb[50] = gb[10]  # a tie
    d = hamming_distances(pack_bits(qb), pack_bits(gb))
    ref = np.array([[ref_distance(a, b) for b in gb] for a in qb])
    np.testing.assert_array_equal(d, ref)
    if backend == "numpy":  # the torch matrix-product paths (what a GPU runs), here on the CPU
        np.testing.assert_array_equal(hamming_distances(pack_bits(qb), pack_bits(gb), device="cpu"), ref)
        idx, dist = rt.hamming_topk(pack_bits(qb), pack_bits(gb), 7, device="cpu")
        for i in range(5):
            want = sorted(range(200), key=lambda j: (ref[i, j], j))[:7]
            assert list(idx[i]) == want and list(dist[i]) == [ref[i, j] for j in want]
    for k in (1, 7, 200):
        idx, dist = rt.hamming_topk(pack_bits(qb), pack_bits(gb), k, backend=backend)
        for i in range(5):
            want = sorted(range(200), key=lambda j: (ref[i, j], j))[:k]
            assert list(idx[i]) == want
            assert list(dist[i]) == [ref[i, j] for j in want]


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_topk_excludes_self_and_keeps_index_order_on_ties(backend):
    g = pack_bits(np.array([[1, 0], [1, 0], [1, 0], [0, 1]]))
    idx, dist = rt.hamming_topk(g, g, 2, exclude_self=True, backend=backend)
    assert idx.tolist() == [[1, 2], [0, 2], [0, 1], [0, 1]]
    assert dist.tolist() == [[0, 0], [0, 0], [0, 0], [2, 2]]
    if backend == "numpy":
        idx, dist = rt.hamming_topk(g, g, 2, exclude_self=True, device="cpu")
        assert idx.tolist() == [[1, 2], [0, 2], [0, 1], [0, 1]] and dist.tolist() == [[0, 0], [0, 0], [0, 0], [2, 2]]


def test_tie_aware_closed_form_matches_definition_on_big_group():
    # One group of t items, r relevant, after c items with rc relevant: compare with the per-position sum.
    t, r, c, rc = 9, 4, 5, 2
    counts = np.array([[c, t]])
    rel = np.array([[rc, r]])
    got = rt.tie_aware_ap_from_histograms(counts, rel)[0]
    # First group (c items, rc relevant) is itself tied: expected precision contributions by the same rule.
    exp = sum((rc / c) * (1 + (i - 1) * (rc - 1) / (c - 1)) / i for i in range(1, c + 1))
    exp += sum((r / t) * (rc + 1 + (i - 1) * (r - 1) / (t - 1)) / (c + i) for i in range(1, t + 1))
    assert got == pytest.approx(exp / (r + rc))
    assert math.isfinite(got)


def test_bad_inputs():
    g = pack_bits(np.zeros((3, 8)))
    with pytest.raises(Exception, match="rank"):
        rt.mean_average_precision(g, g, np.zeros(3), np.zeros(3), rank="cosine")
    with pytest.raises(Exception, match="width"):
        rt.hamming_topk(g, np.zeros((3, 2), np.uint8), 1)
    with pytest.raises(Exception, match="k must be"):
        rt.hamming_topk(g, g, 0)


def test_map_skipping_queries_without_relevant_items_by_hand():
    """Multi-hot labels, 2 queries, 3 gallery items: query 1 shares no label with any item.

    Query 0's ranking by Hamming distance is g0 (d=0, relevant), g1 (d=1, not), g2 (d=2, relevant):
    AP = (1/1 + 2/3) / 2 = 5/6. Query 1's AP is 0 and counts in ``map`` (5/12) but not in the authors'
    averaging (5/6)."""
    from nacscope.analysis.retrieval import retrieval_metrics

    g = np.packbits(np.array([[0, 0, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0]],
                             dtype=np.uint8), axis=1)
    q = np.packbits(np.zeros((2, 8), dtype=np.uint8), axis=1)
    g_labels = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]])
    q_labels = np.array([[1, 0, 0], [0, 0, 1]])
    s = retrieval_metrics(q, g, q_labels, g_labels, n_bits=8, R=3, ks=(1,), knn_k=1).summary()
    assert s["map"] == pytest.approx(5 / 12) and s["map_skip_no_relevant"] == pytest.approx(5 / 6)
    assert s["queries_without_relevant"] == 1
