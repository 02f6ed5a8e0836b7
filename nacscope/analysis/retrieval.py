"""Hamming-distance retrieval over packed codes: k-NN, mAP, mAP@R, tie-aware mAP, precision, PR curve.

Conventions (the same in every function here, in ``nacscope analyze`` and in the TUI):

* **Ranking.** The gallery is ranked by Hamming distance to the query, ascending; items at equal
  distance are ordered by gallery index (a stable sort). ``rank="dot"`` ranks instead by the dot
  product of the {0,1} codes, descending (the number of common ones), which is what the NAC authors'
  evaluation code does; ties are again broken by gallery index.
* **Relevance.** Class labels: same label. Multi-hot labels: at least one shared label.
* **AP.** ``AP = (1 / n) * sum_{k: item k relevant} precision@k`` over the ranking, where ``n`` is
  the number of relevant items in the ranking considered (the whole gallery for ``map``, the top R
  for mAP@R). A query with no relevant item there has AP 0 and still counts in the mean.
* **Tie-aware AP** (McSherry & Najork, ECIR 2008): the expected full-ranking AP when the items of each
  group of equal distance are ordered uniformly at random. For a group of ``t`` items, ``r`` of them
  relevant, preceded by ``c`` items of which ``rc`` are relevant, its relevant items contribute
  ``(r/t) * sum_{i=1..t} (rc + 1 + (i-1)(r-1)/(t-1)) / (c+i)``, which harmonic numbers close.
* **Precision within radius r**: relevant / retrieved among items at Hamming distance <= r; a query
  that retrieves nothing scores 0. The PR curve is that precision and the recall (relevant retrieved
  / all relevant) at every radius 0..D, averaged over queries.
* **k-NN accuracy**: the query's label is predicted by a vote of its k nearest gallery items (ties
  between labels go to the smallest label id); multi-hot: the most-voted label must be one of the
  query's labels.
* **Leave-one-out** (a file without a query split): every sample queries all the others; the sample
  itself is never retrieved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

from nacscope.analysis.hamming import common_ones, distance_dtype, hamming_distances
from nacscope.analysis.knn import BACKENDS, BLOCK_PAIRS, check_pair, hamming_topk, neighbours, use_numba
from nacscope.analysis.metrics import check_labels, dense_class_ids, harmonic_numbers, knn_predict, relevance, tie_aware_ap_from_histograms
from nacscope.choices import RANKS  # noqa: F401 (re-exported)
from nacscope.errors import OptionError
from nacscope.progress import Progress

if TYPE_CHECKING:
    from nacscope.codes.format import CodeSet



__all__ = [  # the names defined here, and those of .metrics and .knn re-exported for existing callers
    "BACKENDS", "RANKS", "RetrievalResult", "average_precision_per_query", "codeset_retrieval", "hamming_topk",
    "knn_accuracy", "knn_predict", "mean_average_precision", "neighbours", "pr_curve", "precision_at_k",
    "precision_within_radius", "relevance", "retrieval_metrics", "tie_aware_ap_from_histograms", "use_numba",
]


# --------------------------------------------------------------------------------------------------
# ranking keys
# --------------------------------------------------------------------------------------------------
def _ranking_key(q: np.ndarray, g: np.ndarray, rank: str, n_bits: int) -> np.ndarray:
    """(Q, G) integer key, ascending = better: Hamming distance, or n_bits - common ones."""
    if rank == "hamming":
        return hamming_distances(q, g)
    if rank == "dot":
        return (np.asarray(n_bits, dtype=distance_dtype(n_bits)) - common_ones(q, g)).astype(distance_dtype(n_bits))
    raise OptionError(f"rank must be one of {RANKS}, got {rank!r}")


def _rank_block_numpy(q, g, q_labels, g_labels, self_offset: int, rank: str, n_bits: int, R: int,
                      ks: tuple[int, ...], knn_k: int):
    """The numpy twin of ``_kernels.rank_metrics`` for one block of queries (same outputs)."""
    b, nk = len(q), n_bits + 2
    rows = np.arange(b)
    key = _ranking_key(q, g, rank, n_bits)  # (B, G)
    hd = key if rank == "hamming" else hamming_distances(q, g)  # (B, G)
    rel = relevance(q_labels, g_labels)  # (B, G) bool
    if self_offset >= 0:
        key[rows, self_offset + rows] = n_bits + 1
        if hd is not key:
            hd[rows, self_offset + rows] = n_bits + 1
        rel[rows, self_offset + rows] = False
    n_rel = rel.sum(axis=1)
    # Full ranking, ties by gallery index: numpy's stable sort of small unsigned ints is a radix sort.
    order = np.argsort(key, axis=1, kind="stable")  # (B, G)
    rs = np.take_along_axis(rel, order, axis=1)  # (B, G) relevance in rank order
    cum = np.cumsum(rs, axis=1, dtype=np.int32)  # (B, G) relevant items in the top k
    ri, ci = np.nonzero(rs)
    prec = cum[ri, ci] / (ci + 1.0)
    ap = np.bincount(ri, weights=prec, minlength=b) / np.maximum(n_rel, 1)
    in_r = ci < R
    ap_r = np.bincount(ri[in_r], weights=prec[in_r], minlength=b) / np.maximum(cum[:, R - 1], 1)
    hits = np.stack([cum[:, k - 1] for k in ks], axis=1).astype(np.int64)  # (B, K)
    flat = (rows[:, None] * nk + key).ravel()
    kc = np.bincount(flat, minlength=b * nk).reshape(b, nk)
    krc = np.bincount(flat[rel.ravel()], minlength=b * nk).reshape(b, nk)
    if hd is key:
        hc, hrc = kc, krc
    else:
        flat = (rows[:, None] * nk + hd).ravel()
        hc = np.bincount(flat, minlength=b * nk).reshape(b, nk)
        hrc = np.bincount(flat[rel.ravel()], minlength=b * nk).reshape(b, nk)
    return ap, ap_r, hits, order[:, :knn_k], kc, krc, hc, hrc


def _numba_ranker(q, g, q_labels, g_labels, exclude_self: bool, rank: str, n_bits: int, R: int,
                  ks: tuple[int, ...], knn_k: int):
    """A function ``(s, e) -> outputs of _rank_block_numpy`` for queries s..e, run by the numba kernel."""
    from nacscope.analysis import _kernels
    from nacscope.analysis.hamming import to_words

    qw, gw = to_words(q), to_words(g)
    multihot = g_labels.ndim == 2
    if multihot:  # relevance = any common set bit of the packed label rows
        qm, gm = to_words(np.packbits(q_labels > 0, axis=1)), to_words(np.packbits(g_labels > 0, axis=1))
        ql = gl = np.zeros(1, np.int64)
    else:
        qm = gm = np.zeros((1, 1), dtype=np.uint64)
        ql, gl = q_labels.astype(np.int64), g_labels.astype(np.int64)
    ks_arr = np.array(ks, dtype=np.int64)
    nk = n_bits + 2

    def run(s: int, e: int):
        b = e - s
        ap, ap_r = np.zeros(b), np.zeros(b)
        hits = np.zeros((b, len(ks)), dtype=np.int64)
        top = np.zeros((b, knn_k), dtype=np.int64)
        kc, krc = np.zeros((b, nk), dtype=np.int64), np.zeros((b, nk), dtype=np.int64)
        hc, hrc = (np.zeros((b, nk), dtype=np.int64), np.zeros((b, nk), dtype=np.int64)) if rank == "dot" else (kc, krc)
        _kernels.rank_metrics(qw[s:e], gw, gl if multihot else ql[s:e], gl, qm[s:e] if multihot else qm, gm, multihot,
                              rank == "dot", s if exclude_self else -1, n_bits, R, ks_arr, knn_k, ap, ap_r, hits, top,
                              kc, krc, hc, hrc)
        return ap, ap_r, hits, top, kc, krc, hc, hrc

    return run


# --------------------------------------------------------------------------------------------------
# the one pass that computes everything
# --------------------------------------------------------------------------------------------------
@dataclass
class RetrievalResult:
    """Per-query retrieval metrics of one ranking (see the module docstring for definitions)."""

    rank: str
    n_bits: int
    R: int
    ks: tuple[int, ...]
    radius: int
    knn_k: int
    ap: np.ndarray  # (Q,) full-ranking AP, ties by gallery index
    ap_at_r: np.ndarray  # (Q,) AP over the top R
    tie_ap: np.ndarray  # (Q,) expected full-ranking AP under random tie order
    precision_at_k: dict[int, np.ndarray]  # k -> (Q,)
    precision_radius: np.ndarray  # (Q,) precision within Hamming radius `radius` (0 if nothing retrieved)
    knn_correct: np.ndarray  # (Q,) bool
    n_relevant: np.ndarray  # (Q,) relevant gallery items per query
    pr_precision: np.ndarray  # (n_bits + 1,) mean precision within radius r, r = 0..n_bits
    pr_recall: np.ndarray  # (n_bits + 1,) mean recall within radius r
    notes: list[str] = field(default_factory=list)

    @property
    def n_queries(self) -> int:
        return int(len(self.ap))

    def summary(self) -> dict:
        """The JSON block ``retrieval.<layer>`` of ``nacscope analyze --json``."""

        def mean(a: np.ndarray) -> float | None:
            return float(np.mean(a)) if len(a) else None

        out = {
            "rank": self.rank,
            "n_queries": self.n_queries,
            "map": mean(self.ap),
            # the NAC authors' averaging: queries with no relevant gallery item are left out (multi-label sets)
            "map_skip_no_relevant": mean(self.ap[self.n_relevant > 0]),
            "queries_without_relevant": int(np.sum(self.n_relevant == 0)),
            f"map_at_{self.R}": mean(self.ap_at_r),
            "tie_aware_map": mean(self.tie_ap),
            **{f"precision_at_{k}": mean(v) for k, v in self.precision_at_k.items()},
            f"precision_radius_{self.radius}": mean(self.precision_radius),
            "knn_accuracy": mean(self.knn_correct.astype(np.float64)),
            "knn_k": self.knn_k,
            "mean_relevant": mean(self.n_relevant.astype(np.float64)),
        }
        return out


def retrieval_metrics(
    q_packed: np.ndarray,
    g_packed: np.ndarray,
    q_labels: np.ndarray,
    g_labels: np.ndarray,
    *,
    n_bits: int | None = None,
    R: int | None = None,
    ks: Sequence[int] = (100,),
    radius: int = 2,
    knn_k: int = 10,
    rank: str = "hamming",
    exclude_self: bool = False,
    progress: Progress | None = None,
    backend: str = "auto",
) -> RetrievalResult:
    """Rank the gallery for every query once and compute all retrieval metrics from that ranking.

    Args:
        q_packed, g_packed: (Q, row_bytes) and (G, row_bytes) packed codes.
        q_labels, g_labels: (Q,) / (G,) class ids, or (Q, C) / (G, C) multi-hot.
        n_bits: code length (defaults to 8 * row_bytes; only sets the PR-curve length and dot key).
        R: cut-off of mAP@R (None: the whole gallery). Clipped to the gallery size.
        ks: cut-offs of precision@k (clipped to the gallery size).
        radius: Hamming radius of the precision-within-radius metric.
        knn_k: neighbours that vote in k-NN classification.
        rank: "hamming" or "dot" (see the module docstring).
        exclude_self: leave-one-out: query i is gallery item i and is never retrieved (Q == G).
        progress: ``progress(done, total, message)``; raise from it to cancel.
        backend: "numba" (compiled counting-sort kernel), "numpy" (radix argsort of (B, G) blocks), or
            "auto" (numba when it imports).
    """
    q, g = check_pair(q_packed, g_packed)
    q_labels, g_labels = np.asarray(q_labels), np.asarray(g_labels)
    check_labels(q_labels, g_labels)
    if len(q_labels) != len(q) or len(g_labels) != len(g):
        raise OptionError("labels must have one row per code")
    if rank not in RANKS:
        raise OptionError(f"rank must be one of {RANKS}, got {rank!r}")
    if exclude_self and len(q) != len(g):
        raise OptionError("leave-one-out needs the queries to be the gallery")
    n_bits = int(n_bits or 8 * q.shape[1])
    n_q, n_g = len(q), len(g)
    n_cand = n_g - 1 if exclude_self else n_g  # items a query can retrieve
    if n_cand < 1:
        raise OptionError("retrieval needs at least two samples")
    R_eff = n_cand if R is None else max(1, min(int(R), n_cand))
    ks_eff = tuple(sorted({max(1, min(int(k), n_cand)) for k in ks}))
    knn_k = max(1, min(int(knn_k), n_cand))
    harmonic = harmonic_numbers(n_g)

    ap = np.zeros(n_q)
    ap_r = np.zeros(n_q)
    tie_ap = np.zeros(n_q)
    p_at_k = {k: np.zeros(n_q) for k in ks_eff}
    p_rad = np.zeros(n_q)
    knn_ok = np.zeros(n_q, dtype=bool)
    n_rel_all = np.zeros(n_q, dtype=np.int64)
    pr_p = np.zeros(n_bits + 1)
    pr_r = np.zeros(n_bits + 1)
    multihot = g_labels.ndim == 2
    if not multihot and min(q_labels.min(initial=0), g_labels.min(initial=0)) < 0:
        raise OptionError("class labels must be non-negative integers")
    if not multihot:
        q_labels, g_labels = dense_class_ids(q_labels, g_labels)
    n_classes = 0 if multihot else int(max(q_labels.max(initial=0), g_labels.max(initial=0))) + 1
    if use_numba(backend):
        rank_block = _numba_ranker(q, g, q_labels, g_labels, exclude_self, rank, n_bits, R_eff, ks_eff, knn_k)
        block = max(1, min(n_q, 4096))
    else:
        def rank_block(s: int, e: int):
            return _rank_block_numpy(q[s:e], g, q_labels[s:e], g_labels, s if exclude_self else -1, rank, n_bits,
                                     R_eff, ks_eff, knn_k)

        block = max(1, min(n_q, BLOCK_PAIRS // max(1, n_g)))

    for s in range(0, n_q, block):
        e = min(n_q, s + block)
        rows = np.arange(e - s)
        ap_b, apr_b, hits, top, kc, krc, hc, hrc = rank_block(s, e)
        ap[s:e], ap_r[s:e] = ap_b, apr_b
        for t, k in enumerate(ks_eff):
            p_at_k[k][s:e] = hits[:, t] / k
        n_rel = krc.sum(axis=1)
        n_rel_all[s:e] = n_rel

        pred = knn_predict(g_labels[top], n_classes)  # (B,)
        knn_ok[s:e] = (q_labels[s:e][rows, pred] > 0) if multihot else (pred == q_labels[s:e])
        tie_ap[s:e] = tie_aware_ap_from_histograms(kc, krc, harmonic)
        ret = np.cumsum(hc[:, : n_bits + 1], axis=1)  # (B, D+1) retrieved within radius r
        relret = np.cumsum(hrc[:, : n_bits + 1], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            prec_r = np.where(ret > 0, relret / np.maximum(ret, 1), 0.0)  # (B, D+1)
            rec_r = np.where(n_rel[:, None] > 0, relret / np.maximum(n_rel[:, None], 1), 0.0)
        p_rad[s:e] = prec_r[:, min(radius, n_bits)]
        pr_p += prec_r.sum(axis=0)
        pr_r += rec_r.sum(axis=0)
        if progress is not None:
            progress(e, n_q, "ranking")

    notes = []
    if rank == "dot":
        notes.append("ranked by the dot product of {0,1} codes (the NAC authors' evaluation), not Hamming distance")
    return RetrievalResult(
        rank=rank, n_bits=n_bits, R=R_eff if R is not None else n_cand, ks=ks_eff, radius=int(radius), knn_k=knn_k,
        ap=ap, ap_at_r=ap_r, tie_ap=tie_ap, precision_at_k=p_at_k, precision_radius=p_rad, knn_correct=knn_ok,
        n_relevant=n_rel_all, pr_precision=pr_p / max(n_q, 1), pr_recall=pr_r / max(n_q, 1), notes=notes,
    )


# --------------------------------------------------------------------------------------------------
# single-metric entry points (thin wrappers over the one pass)
# --------------------------------------------------------------------------------------------------
def average_precision_per_query(
    query_packed, gallery_packed, query_labels, gallery_labels, *, R: int | None = None, rank: str = "hamming",
    tie_aware: bool = False, exclude_self: bool = False,
) -> np.ndarray:
    """(Q,) AP of each query: over the top R (whole gallery if None), or the tie-aware full-ranking AP."""
    res = retrieval_metrics(query_packed, gallery_packed, query_labels, gallery_labels, R=R, rank=rank,
                            exclude_self=exclude_self)
    if tie_aware:
        return res.tie_ap
    return res.ap if R is None else res.ap_at_r


def mean_average_precision(
    query_packed, gallery_packed, query_labels, gallery_labels, *, R: int | None = None, rank: str = "hamming",
    tie_aware: bool = False, exclude_self: bool = False,
) -> float:
    """mAP over the top R of the ranking (whole gallery if None); ``tie_aware`` gives the expected full-ranking mAP.

    Example::

        mean_average_precision(q_bits, g_bits, q_y, g_y)           # full ranking, Hamming, stable ties
        mean_average_precision(q_bits, g_bits, q_y, g_y, R=1000)   # mAP@1000
    """
    return float(np.mean(average_precision_per_query(
        query_packed, gallery_packed, query_labels, gallery_labels, R=R, rank=rank, tie_aware=tie_aware,
        exclude_self=exclude_self,
    )))


def precision_at_k(query_packed, gallery_packed, query_labels, gallery_labels, k: int = 100, *,
                   rank: str = "hamming", exclude_self: bool = False) -> float:
    """Mean fraction of relevant items among the first k of the ranking."""
    res = retrieval_metrics(query_packed, gallery_packed, query_labels, gallery_labels, ks=(k,), rank=rank,
                            exclude_self=exclude_self)
    return float(np.mean(next(iter(res.precision_at_k.values()))))


def precision_within_radius(query_packed, gallery_packed, query_labels, gallery_labels, radius: int = 2, *,
                            exclude_self: bool = False) -> float:
    """Mean precision of the items within Hamming distance ``radius`` (a query retrieving nothing scores 0)."""
    res = retrieval_metrics(query_packed, gallery_packed, query_labels, gallery_labels, radius=radius,
                            exclude_self=exclude_self)
    return float(np.mean(res.precision_radius))


def pr_curve(query_packed, gallery_packed, query_labels, gallery_labels, *,
             exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision-recall by Hamming radius: (radii 0..D, mean precision, mean recall)."""
    res = retrieval_metrics(query_packed, gallery_packed, query_labels, gallery_labels, exclude_self=exclude_self)
    return np.arange(res.n_bits + 1), res.pr_precision, res.pr_recall


def knn_accuracy(query_packed, gallery_packed, query_labels, gallery_labels, k: int = 10, *,
                 rank: str = "hamming", exclude_self: bool = False) -> float:
    """Fraction of queries whose label wins the vote of their k nearest gallery items."""
    res = retrieval_metrics(query_packed, gallery_packed, query_labels, gallery_labels, knn_k=k, rank=rank,
                            exclude_self=exclude_self)
    return float(np.mean(res.knn_correct))


def codeset_retrieval(
    cs: "CodeSet", layer: str, *, R: int | None = 1000, ks: Sequence[int] = (100,), radius: int = 2,
    knn_k: int = 10, rank: str = "hamming", progress: Progress | None = None,
) -> RetrievalResult | None:
    """Retrieval metrics of one layer of a code set; None if the file has no labels.

    Queries are the file's query samples against the rest; without a query split, leave-one-out.
    """
    labels = cs.labels()
    if labels is None:
        return None
    packed = cs.packed(layer)
    units = cs.layer(layer).units
    mask = cs.query_mask
    if mask is not None and mask.any() and (~mask).any():
        return retrieval_metrics(packed[mask], packed[~mask], labels[mask], labels[~mask], n_bits=units, R=R, ks=ks,
                                 radius=radius, knn_k=knn_k, rank=rank, progress=progress)
    return retrieval_metrics(packed, packed, labels, labels, n_bits=units, R=R, ks=ks, radius=radius, knn_k=knn_k,
                             rank=rank, exclude_self=True, progress=progress)
