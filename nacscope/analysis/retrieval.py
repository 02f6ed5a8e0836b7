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
from nacscope.errors import OptionError
from nacscope.progress import Progress

if TYPE_CHECKING:
    from nacscope.codes.format import CodeSet

RANKS = ("hamming", "dot")
#: Query rows per block: about this many (query, gallery) pairs are held at once.
BLOCK_PAIRS = 1 << 22


# --------------------------------------------------------------------------------------------------
# relevance and ranking keys
# --------------------------------------------------------------------------------------------------
def _check_labels(q_labels: np.ndarray, g_labels: np.ndarray) -> None:
    if q_labels.ndim != g_labels.ndim or q_labels.shape[1:] != g_labels.shape[1:]:
        raise OptionError(f"query and gallery labels differ in shape: {q_labels.shape} vs {g_labels.shape}")


def relevance(q_labels: np.ndarray, g_labels: np.ndarray) -> np.ndarray:
    """(Q, G) bool: same class label, or (multi-hot, 2-D labels) at least one shared label."""
    q_labels, g_labels = np.asarray(q_labels), np.asarray(g_labels)
    _check_labels(q_labels, g_labels)
    if q_labels.ndim == 1:
        return q_labels[:, None] == g_labels[None, :]
    shared = q_labels.astype(np.float32) @ g_labels.astype(np.float32).T  # (Q, G) shared-label counts
    return shared > 0.5


def _ranking_key(q: np.ndarray, g: np.ndarray, rank: str, n_bits: int) -> np.ndarray:
    """(Q, G) integer key, ascending = better: Hamming distance, or n_bits - common ones."""
    if rank == "hamming":
        return hamming_distances(q, g)
    if rank == "dot":
        return (np.asarray(n_bits, dtype=distance_dtype(n_bits)) - common_ones(q, g)).astype(distance_dtype(n_bits))
    raise OptionError(f"rank must be one of {RANKS}, got {rank!r}")


def _check_pair(q: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q, g = np.asarray(q, dtype=np.uint8), np.asarray(g, dtype=np.uint8)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise OptionError(f"query and gallery codes must be packed rows of one width, got {q.shape} and {g.shape}")
    if len(g) == 0:
        raise OptionError("the gallery is empty")
    return q, g


def _harmonic(n: int) -> np.ndarray:
    """H[0..n]: H[m] = sum_{i=1..m} 1/i (float64)."""
    h = np.zeros(n + 1)
    np.cumsum(1.0 / np.arange(1, n + 1), out=h[1:])
    return h


def tie_aware_ap_from_histograms(counts: np.ndarray, rel_counts: np.ndarray, harmonic: np.ndarray | None = None) -> np.ndarray:
    """Expected AP per query when tied items are ordered at random (McSherry & Najork's closed form).

    Args:
        counts: (Q, K) items per ranking-key value (ascending key = better rank).
        rel_counts: (Q, K) relevant items per key value.
        harmonic: H[0..G] (see :func:`_harmonic`), computed if None.

    Returns:
        (Q,) float64; 0 for a query without relevant items.
    """
    counts = counts.astype(np.float64)
    r = rel_counts.astype(np.float64)
    c = np.cumsum(counts, axis=1) - counts  # items ranked before each group
    rc = np.cumsum(r, axis=1) - r  # relevant items before each group
    if harmonic is None:
        harmonic = _harmonic(int(counts.sum(axis=1).max(initial=0)))
    ci, ti = c.astype(np.int64), counts.astype(np.int64)
    s0 = harmonic[ci + ti] - harmonic[ci]  # sum_{i=1..t} 1/(c+i)
    s1 = counts - (c + 1.0) * s0  # sum_{i=1..t} (i-1)/(c+i)
    with np.errstate(divide="ignore", invalid="ignore"):
        coef = np.where(counts > 1, (r - 1.0) / (counts - 1.0), 0.0)
        contrib = np.where(r > 0, (r / np.maximum(counts, 1.0)) * ((rc + 1.0) * s0 + coef * s1), 0.0)
    n_rel = r.sum(axis=1)
    return np.where(n_rel > 0, contrib.sum(axis=1) / np.maximum(n_rel, 1.0), 0.0)


def knn_predict(neighbour_labels: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """The label that wins the vote of each query's neighbours (ties: the smallest label id).

    Args:
        neighbour_labels: (Q, k) class ids, or (Q, k, C) multi-hot (each neighbour votes for all its labels).
        n_classes: number of classes (class ids only; inferred if None).

    Returns:
        (Q,) int64 predicted label ids.
    """
    lab = np.asarray(neighbour_labels)
    if lab.ndim == 3:
        return lab.astype(np.int64).sum(axis=1).argmax(axis=1)
    q = len(lab)
    c = int(n_classes if n_classes is not None else lab.max(initial=0) + 1)
    offs = np.arange(q)[:, None] * c + lab.astype(np.int64)  # (Q, k)
    return np.bincount(offs.ravel(), minlength=q * c).reshape(q, c).argmax(axis=1)


_NUMBA: bool | None = None
BACKENDS = ("auto", "numba", "numpy")


def _use_numba(backend: str) -> bool:
    """Whether to run the compiled kernels (``backend`` "auto" uses them when numba imports)."""
    global _NUMBA
    if backend not in BACKENDS:
        raise OptionError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "numpy":
        return False
    if _NUMBA is None:
        try:
            import nacscope.analysis._kernels  # noqa: F401
            _NUMBA = True
        except ImportError:
            _NUMBA = False
    if backend == "numba" and not _NUMBA:
        raise OptionError("the numba backend needs numba: pip install numba")
    return _NUMBA


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
    q, g = _check_pair(q_packed, g_packed)
    q_labels, g_labels = np.asarray(q_labels), np.asarray(g_labels)
    _check_labels(q_labels, g_labels)
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
    harmonic = _harmonic(n_g)

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
    n_classes = 0 if multihot else int(max(q_labels.max(initial=0), g_labels.max(initial=0))) + 1
    if _use_numba(backend):
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


# --------------------------------------------------------------------------------------------------
# k nearest neighbours
# --------------------------------------------------------------------------------------------------
def _topk_torch(q: np.ndarray, g: np.ndarray, k: int, exclude_self: bool, device: str, idx: np.ndarray,
                dist: np.ndarray, progress: Progress | None) -> None:
    """k-NN by a +-1 matrix product on a torch device; ties by index through the key d * G + j."""
    import torch

    n_g, n_bits = len(g), 8 * q.shape[1]
    gb = torch.from_numpy(np.unpackbits(g, axis=1)).to(device=device, dtype=torch.float32) * 2 - 1  # (G, D)
    cols = torch.arange(n_g, device=device)
    block = max(1, min(len(q), BLOCK_PAIRS // max(1, n_g)))
    for s in range(0, len(q), block):
        e = min(len(q), s + block)
        qb = torch.from_numpy(np.unpackbits(q[s:e], axis=1)).to(device=device, dtype=torch.float32) * 2 - 1
        d = torch.round((n_bits - qb @ gb.T) / 2).to(torch.int64)  # (B, G) exact: integers below 2**24
        if exclude_self:
            r = torch.arange(e - s, device=device)
            d[r, s + r] = n_bits + 1
        key = d * n_g + cols  # unique per row, so the k smallest come in (distance, index) order
        top = torch.topk(key, k, dim=1, largest=False, sorted=True).values
        idx[s:e] = (top % n_g).cpu().numpy()
        dist[s:e] = (top // n_g).cpu().numpy()
        if progress is not None:
            progress(e, len(q), "k-NN search")


def hamming_topk(
    q_packed: np.ndarray, g_packed: np.ndarray, k: int, *, exclude_self: bool = False,
    progress: Progress | None = None, backend: str = "auto", device: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest gallery rows of each query by Hamming distance, ties by gallery index.

    Args:
        exclude_self: query i is gallery row i and is never returned (Q == G).
        backend: "numba", "numpy" or "auto" (see :func:`retrieval_metrics`); ignored with ``device``.
        device: a torch device (e.g. "cuda"): distances from a +-1 matrix product there instead.

    Returns:
        (indices (Q, k) int64, distances (Q, k) int32), nearest first.
    """
    q, g = _check_pair(q_packed, g_packed)
    if exclude_self and len(q) != len(g):
        raise OptionError("exclude_self needs the queries to be the gallery")
    n_cand = len(g) - (1 if exclude_self else 0)
    k = int(k)
    if k < 1:
        raise OptionError(f"k must be >= 1, got {k}")
    k = min(k, n_cand)
    n_bits = 8 * q.shape[1]
    idx = np.empty((len(q), k), dtype=np.int64)
    dist = np.empty((len(q), k), dtype=np.int32)
    if device is not None:
        _topk_torch(q, g, k, exclude_self, device, idx, dist, progress)
        return idx, dist
    if _use_numba(backend):
        from nacscope.analysis import _kernels
        from nacscope.analysis.hamming import to_words

        qw, gw = to_words(q), to_words(g)
        block = 8192
        for s in range(0, len(q), block):
            e = min(len(q), s + block)
            _kernels.topk(qw[s:e], gw, k, s if exclude_self else -1, n_bits, idx[s:e], dist[s:e])
            if progress is not None:
                progress(e, len(q), "k-NN search")
        return idx, dist
    block = max(1, min(len(q), BLOCK_PAIRS // max(1, len(g))))
    for s in range(0, len(q), block):
        e = min(len(q), s + block)
        d = hamming_distances(q[s:e], g)  # (B, G)
        if exclude_self:
            r = np.arange(e - s)
            d[r, s + r] = n_bits + 1
        o = np.argsort(d, axis=1, kind="stable")[:, :k]  # radix sort of small unsigned ints
        idx[s:e], dist[s:e] = o, np.take_along_axis(d, o, axis=1)
        if progress is not None:
            progress(e, len(q), "k-NN search")
    return idx, dist


def neighbours(cs: "CodeSet", layer: str, query_row: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest rows of one sample in a code set (the sample itself excluded), for the TUI.

    Returns:
        (rows (k,) int64, Hamming distances (k,) int32), nearest first, ties by row.
    """
    n = cs.n_samples
    if not 0 <= int(query_row) < n:
        raise OptionError(f"row {query_row} out of range: the file has {n} samples")
    packed = cs.packed(layer)
    idx, dist = hamming_topk(packed[int(query_row) : int(query_row) + 1], packed, k + 1)
    keep = idx[0] != int(query_row)
    return idx[0][keep][:k], dist[0][keep][:k]


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
