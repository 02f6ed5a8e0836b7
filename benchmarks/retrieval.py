"""Hamming retrieval: full-ranking mAP and k-NN search, nacscope against the usual implementations.

Usage: python benchmarks/retrieval.py [--queries 10000] [--gallery 50000] [--bits 64] [--k 100]

Data: class-structured random codes (10 classes, each code its class centre with 20% of the bits
flipped), like a hashing evaluation on CIFAR-10 (10,000 queries x 50,000 gallery at 64 bits).
Each case runs in a fresh process (time and its own peak memory):

* ``map-argsort``: the straightforward numpy implementation of a Hamming ranking: distance from
  float dot products of +-1 codes, ``np.argsort`` per query, AP from a cumsum (the baseline).
* ``map-authors-dot``: the NAC authors' ranking (NAC-NOTES §4): the gallery ordered by the dot
  product of {0,1} codes (common ones), descending, ``np.argsort`` per query. It is *not* a Hamming
  ranking and gives a different mAP; ``map-numba-dot`` is nacscope's ``rank="dot"`` of the same.
* ``map-numpy``: nacscope's numpy backend (blocks of queries, radix argsort, all metrics).
* ``map-numba``: nacscope's default backend (counting-sort kernel, all metrics: mAP, mAP@1000,
  tie-aware mAP, P@100, precision within radius 2, PR curve, k-NN accuracy).
* ``knn-faiss``: faiss ``IndexBinaryFlat.search`` (k nearest, its own tie order), default OpenMP
  threads; ``knn-faiss-1thread`` the same on one thread.
* ``knn-numba`` / ``knn-numpy``: ``nacscope.analysis.hamming_topk`` (ties by gallery index).

Prints a Markdown table with the ratios, and checks that the mAP values agree.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _child import report, run_cases  # noqa: E402

CASES = ["map-argsort", "map-authors-dot", "map-numpy", "map-numba", "map-numba-dot", "knn-faiss", "knn-faiss-1thread", "knn-numpy", "knn-numba"]


def make_data(n_q: int, n_g: int, bits: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 2, (10, bits), dtype=np.uint8)
    yq, yg = rng.integers(0, 10, n_q), rng.integers(0, 10, n_g)
    q = np.packbits(centres[yq] ^ (rng.random((n_q, bits)) < 0.2), axis=1)
    g = np.packbits(centres[yg] ^ (rng.random((n_g, bits)) < 0.2), axis=1)
    return q, g, yq, yg


def map_argsort(q, g, yq, yg, block: int = 500, *, dot01: bool = False) -> float:
    """mAP by argsort per query: of the Hamming distance (float dot of +-1 codes), or with ``dot01`` of
    minus the dot product of {0,1} codes (the authors' ranking)."""
    bits = q.shape[1] * 8
    g01 = np.unpackbits(g, axis=1).astype(np.float32)  # (G, D)
    gb = g01 * 2 - 1
    aps = []
    for s in range(0, len(q), block):
        q01 = np.unpackbits(q[s : s + block], axis=1).astype(np.float32)  # (B, D)
        key = -(q01 @ g01.T) if dot01 else 0.5 * (bits - (q01 * 2 - 1) @ gb.T)  # (B, G) ascending = better
        for i in range(len(q01)):
            order = np.argsort(key[i])
            rel = (yg[order] == yq[s + i]).astype(np.float64)
            hits = np.cumsum(rel)
            n = rel.sum()
            aps.append(float((hits / np.arange(1, len(rel) + 1) * rel).sum() / n) if n else 0.0)
    return float(np.mean(aps))


def child(case: str, a) -> None:
    q, g, yq, yg = make_data(a.queries, a.gallery, a.bits)
    if case in ("map-argsort", "map-authors-dot"):
        report(lambda: map_argsort(q, g, yq, yg, dot01=case == "map-authors-dot"), lambda m: {"map": m})
    elif case.startswith("map-"):
        from nacscope.analysis.retrieval import retrieval_metrics

        backend = case.split("-")[1]
        rank = "dot" if case.endswith("-dot") else "hamming"
        retrieval_metrics(q[:2], g[:100], yq[:2], yg[:100], backend=backend, rank=rank)  # compile / warm up
        report(lambda: retrieval_metrics(q, g, yq, yg, R=1000, ks=(100,), backend=backend, rank=rank),
               lambda r: {"map": float(r.ap.mean()), "tie_aware_map": float(r.tie_ap.mean())})
    elif case.startswith("knn-faiss"):
        import faiss

        if case.endswith("1thread"):  # OpenMP threads spin on a shared, loaded machine: try one
            faiss.omp_set_num_threads(1)

        def run():
            index = faiss.IndexBinaryFlat(a.bits)
            index.add(g)
            return index.search(q, a.k)

        report(run, lambda r: {"dist_sum": int(r[0].sum()), "threads": faiss.omp_get_max_threads()})
    elif case.startswith("knn-"):
        from nacscope.analysis.retrieval import hamming_topk

        backend = case.split("-")[1]
        hamming_topk(q[:2], g[:100], 5, backend=backend)
        report(lambda: hamming_topk(q, g, a.k, backend=backend), lambda r: {"dist_sum": int(r[1].sum())})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--queries", type=int, default=10000)
    p.add_argument("--gallery", type=int, default=50000)
    p.add_argument("--bits", type=int, default=64)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--child", default=None)
    a = p.parse_args()
    if a.child:
        child(a.child, a)
        return
    args = ["--queries", str(a.queries), "--gallery", str(a.gallery), "--bits", str(a.bits), "--k", str(a.k)]
    res = run_cases(__file__, a.cases, args)
    print(f"\n{a.queries} queries x {a.gallery} gallery, {a.bits} bits, k = {a.k}\n")
    print("| case | seconds | peak MiB (above inputs) | result | vs baseline |")
    print("|---|---:|---:|---|---:|")
    for case, r in res.items():
        base = res.get(("map-authors-dot" if case.endswith("-dot") else "map-argsort") if case.startswith("map")
                       else "knn-faiss")
        ratio = f"{base['seconds'] / r['seconds']:.1f}x" if base else "-"
        result = (f"mAP {r['map']:.6f}" + (f", tie-aware {r['tie_aware_map']:.6f}" if "tie_aware_map" in r else "")
                  if case.startswith("map") else f"sum of distances {r['dist_sum']}")
        print(f"| {case} | {r['seconds']:.2f} | {r['peak_mib']:.0f} | {result} | {ratio} |")
    knn = [r["dist_sum"] for c, r in res.items() if c.startswith("knn")]
    if len(set(knn)) > 1:
        print("\nWARNING: k-NN distance sums differ between implementations")


if __name__ == "__main__":
    main()
