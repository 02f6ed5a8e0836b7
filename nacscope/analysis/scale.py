"""Analyses of millions of codes: query subsets that bound the work of all-pairs statistics.

Distinct patterns and collisions are exact at any size (:mod:`nacscope.analysis.patterns` sorts
64-bit row hashes, checks every row against its group's first row, and sorts the rows themselves
if two different rows ever share a hash); their memory is a few (N,) int64 arrays.

Retrieval and nearest-neighbour statistics cost one Hamming distance per (query, gallery) pair.
Above :data:`MAX_PAIRS` pairs the queries are a seeded random subset of ``MAX_PAIRS // gallery``
rows (at least :data:`MIN_QUERIES`), recorded in the result (``query_subset``):

* a file with a query split: a subset of its query rows, against the whole gallery (the non-query
  rows), exactly what :func:`~nacscope.analysis.retrieval.retrieval_metrics` gives for those queries;
* a file without one (leave-one-out): a subset of all rows, against all the *other* rows (the
  gallery is every sample that is not a subset query: leave-one-out without the other queries).

The numba ranking kernel streams the gallery per query with O(G) int32 scratch per thread, so the
gallery itself is not cut into blocks (``benchmarks/scale.py`` measures time and peak memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from nacscope.progress import Progress

if TYPE_CHECKING:
    from nacscope.analysis.retrieval import RetrievalResult
    from nacscope.codes.format import CodeSet

#: (query, gallery) pairs computed in full before the queries become a random subset (60,000 rows
#: leave-one-out, CIFAR-10's size, stays whole).
MAX_PAIRS = 4_000_000_000
#: Fewest queries of a subset, however large the gallery.
MIN_QUERIES = 200
SUBSET_SEED = 0


def subset_size(n_queries: int, n_gallery: int, max_pairs: int | None = None, min_queries: int | None = None) -> int:
    """How many of ``n_queries`` queries to rank against ``n_gallery`` items within ``max_pairs`` pairs."""
    max_pairs = MAX_PAIRS if max_pairs is None else int(max_pairs)
    min_queries = MIN_QUERIES if min_queries is None else int(min_queries)
    if n_queries * n_gallery <= max_pairs:
        return n_queries
    return min(n_queries, max(min_queries, max_pairs // max(1, n_gallery)))


def subset_rows(candidates: np.ndarray, m: int, seed: int = SUBSET_SEED) -> np.ndarray:
    """``m`` rows of ``candidates`` drawn without replacement (seeded), ascending; all of them if m >= len."""
    candidates = np.asarray(candidates, dtype=np.int64)
    if m >= len(candidates):
        return candidates
    return np.sort(np.random.default_rng(seed).choice(candidates, m, replace=False))


@dataclass
class SubsetRetrieval:
    """A retrieval result with the queries and gallery it was computed on."""

    result: "RetrievalResult"
    split: str  # "query" or "leave-one-out"
    query_rows: np.ndarray  # (Q,) file rows of the queries
    n_candidates: int  # queries there were before the subset
    n_gallery: int
    seed: int

    @property
    def subset(self) -> dict | None:
        """``{"n_queries", "of", "seed", "gallery"}`` when the queries are a subset, else None."""
        if len(self.query_rows) == self.n_candidates:
            return None
        gallery = "all non-query rows" if self.split == "query" else "all rows except the subset queries"
        return {"n_queries": int(len(self.query_rows)), "of": int(self.n_candidates), "seed": self.seed,
                "gallery": gallery}


def subset_retrieval(
    cs: "CodeSet", layer: str, *, R: int | None = 1000, ks: Sequence[int] = (100,), radius: int = 2,
    knn_k: int = 10, rank: str = "hamming", max_pairs: int | None = None, seed: int = SUBSET_SEED,
    progress: Progress | None = None,
) -> SubsetRetrieval | None:
    """Retrieval metrics of one layer, on a seeded query subset when the file is large (see the module doc).

    Below ``max_pairs`` pairs this is :func:`~nacscope.analysis.retrieval.codeset_retrieval` exactly.
    Returns None for a file without labels.
    """
    from nacscope.analysis.retrieval import codeset_retrieval, retrieval_metrics

    labels = cs.labels()
    if labels is None:
        return None
    n = cs.n_samples
    mask = cs.query_mask
    split = "query" if mask is not None and mask.any() and (~mask).any() else "leave-one-out"
    cand = np.flatnonzero(mask) if split == "query" else np.arange(n)
    n_gallery = int(n - len(cand)) if split == "query" else n - 1
    m = subset_size(len(cand), n_gallery, max_pairs)
    if m == len(cand):
        res = codeset_retrieval(cs, layer, R=R, ks=ks, radius=radius, knn_k=knn_k, rank=rank, progress=progress)
        assert res is not None
        return SubsetRetrieval(res, split, cand, len(cand), n_gallery, seed)
    rows = subset_rows(cand, m, seed)
    packed = cs.packed(layer)
    gallery = np.ones(n, dtype=bool)
    gallery[mask if split == "query" else rows] = False
    res = retrieval_metrics(packed[rows], packed[gallery], labels[rows], labels[gallery], n_bits=cs.layer(layer).units,
                            R=R, ks=ks, radius=radius, knn_k=knn_k, rank=rank, progress=progress)
    res.notes.append(f"queries: a seeded random subset of {m} of {len(cand)} "
                     + ("query rows against all non-query rows" if split == "query"
                        else "rows against all rows except the subset queries"))
    return SubsetRetrieval(res, split, rows, len(cand), int(gallery.sum()), seed)


def nn_row_count(n: int, nn_rows: int, max_pairs: int | None = None, min_rows: int | None = None) -> int:
    """Samples whose nearest-neighbour statistics are computed among ``n``: at most ``nn_rows``, within ``max_pairs``."""
    max_pairs = MAX_PAIRS if max_pairs is None else int(max_pairs)
    min_rows = MIN_QUERIES if min_rows is None else int(min_rows)
    return min(n, int(nn_rows), max(min_rows, max_pairs // max(1, n)))
