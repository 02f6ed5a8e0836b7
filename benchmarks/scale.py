"""Analyses of millions of codes: time and peak memory of distinct patterns, collisions and retrieval.

Usage: python benchmarks/scale.py [--rows 1000000,10000000] [--bits 128] [--queries 200] [--cases ...]

Data (built in each child, outside the measurement): 100 class centres, each code its class centre
with every bit flipped with probability 1/8, then 20% of the rows replaced by copies of random
other rows (collisions). Each case runs in a fresh process (``_child.py``): wall time and the peak
resident memory (VmHWM) above the inputs. Cases:

* ``distinct``: ``regions.distinct_patterns`` (exact: hashes sorted, every row checked).
* ``collisions``: ``collisions.collision_groups`` with class labels (groups, purity).
* ``map-numba``: ``retrieval_metrics`` of ``--queries`` query rows against all the other rows
  (every metric: full mAP, mAP@1000, tie-aware mAP, P@100, radius-2 precision, PR, 10-NN vote).
* ``knn-numba``: ``knn.hamming_topk`` (k=10) of the same queries against the whole gallery.
* ``knn-faiss``: faiss ``IndexBinaryFlat.search`` (k=10) of the same, default threads.
* ``analyze``: the whole ``analyze_codeset`` (what ``nacscope analyze --json`` runs, no cache) of a
  one-layer code set of these rows written to a temporary file (not in the default cases).

numba and faiss run on the machine's cores (2 here); both sides get the same cores.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _child import report, run_child  # noqa: E402

CASES = ["distinct", "collisions", "map-numba", "knn-numba", "knn-faiss"]


def make_codes(n: int, bits: int, seed: int = 0, chunk: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
    """(N, bits/8) packed structured codes with duplicated rows, and (N,) labels (100 classes)."""
    rng = np.random.default_rng(seed)
    nb = bits // 8
    centres = rng.integers(0, 256, (100, nb), dtype=np.uint8)
    labels = rng.integers(0, 100, n).astype(np.int64)
    packed = np.empty((n, nb), dtype=np.uint8)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        r = rng.integers(0, 256, (3, e - s, nb), dtype=np.uint8)
        packed[s:e] = centres[labels[s:e]] ^ (r[0] & r[1] & r[2])  # each bit flipped with p = 1/8
    dup = rng.choice(n, n // 5, replace=False)
    src = rng.integers(0, n, len(dup))
    packed[dup], labels[dup] = packed[src], labels[src]
    return packed, labels


def child(case: str, a) -> None:
    packed, labels = make_codes(a.rows, a.bits)
    qrows = np.sort(np.random.default_rng(1).choice(a.rows, a.queries, replace=False))
    if case == "distinct":
        from nacscope.analysis.patterns import distinct_patterns

        report(lambda: distinct_patterns(packed), lambda p: {"distinct": p})
    elif case == "collisions":
        from nacscope.analysis.collisions import collision_groups

        report(lambda: collision_groups(packed, labels), lambda r: {"groups": r.n_groups})
    elif case == "map-numba":
        from nacscope.analysis.retrieval import retrieval_metrics

        keep = np.ones(a.rows, dtype=bool)
        keep[qrows] = False
        q, yq, g, yg = packed[qrows], labels[qrows], packed[keep], labels[keep]
        del packed
        report(lambda: retrieval_metrics(q, g, yq, yg, R=1000, ks=(100,)), lambda r: {"map": float(r.ap.mean())})
    elif case == "knn-numba":
        from nacscope.analysis.knn import hamming_topk

        report(lambda: hamming_topk(packed[qrows], packed, 10), lambda r: {"dist_sum": int(r[1].sum())})
    elif case == "knn-faiss":
        import faiss

        def run():
            index = faiss.IndexBinaryFlat(a.bits)
            index.add(packed)
            return index.search(packed[qrows], 10)

        report(run, lambda r: {"dist_sum": int(r[0].sum()), "threads": faiss.omp_get_max_threads()})
    elif case == "analyze":
        import tempfile

        from nacscope.analysis.engine import analyze_codeset
        from nacscope.codes.format import CodeSet, CodeSetWriter, LayerSpec

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "codes.h5")
            with CodeSetWriter(path, [LayerSpec("fc", a.bits, kind="relu")], label_kind="class") as w:
                for s in range(0, a.rows, 1 << 20):
                    w.append({"fc": np.unpackbits(packed[s : s + (1 << 20)], axis=1)}, labels=labels[s : s + (1 << 20)])
            del packed, labels
            with CodeSet(path) as cs:
                report(lambda: analyze_codeset(cs, use_cache=False),
                       lambda r: {"distinct": r["layers"]["fc"]["distinct_patterns"],
                                  "map": r["retrieval"]["fc"]["map"], "queries": r["retrieval"]["fc"]["n_queries"]})
    else:
        raise SystemExit(f"unknown case {case}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="1000000,10000000")
    ap.add_argument("--bits", type=int, default=128)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--child", default=None)
    a, _ = ap.parse_known_args()
    if a.child:
        a.rows = int(a.rows)
        child(a.child, a)
        return
    print("| rows | case | seconds | peak MiB above inputs | result |")
    print("|---:|---|---:|---:|---|")
    for rows in a.rows.split(","):
        for case in a.cases.split(","):
            r = run_child(__file__, case, ["--rows", rows, "--bits", str(a.bits), "--queries", str(a.queries)])
            extra = {k: v for k, v in r.items() if k not in ("seconds", "peak_mib")}
            print(f"| {int(rows):,} | {case} | {r['seconds']:.2f} | {r['peak_mib']:.0f} | {extra} |", flush=True)


if __name__ == "__main__":
    main()
