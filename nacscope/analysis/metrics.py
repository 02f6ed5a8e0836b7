"""Retrieval metrics that need no ranking code: relevance, tie-aware AP from histograms, k-NN votes.

Conventions are those of :mod:`nacscope.analysis.retrieval` (its module docstring).
"""

from __future__ import annotations

import numpy as np

from nacscope.errors import OptionError


def check_labels(q_labels: np.ndarray, g_labels: np.ndarray) -> None:
    if q_labels.ndim != g_labels.ndim or q_labels.shape[1:] != g_labels.shape[1:]:
        raise OptionError(f"query and gallery labels differ in shape: {q_labels.shape} vs {g_labels.shape}")


def dense_class_ids(*labels: np.ndarray) -> tuple[np.ndarray, ...]:
    """Class ids renumbered 0..K-1 in their order when they are sparse (an id >= the number of labels).

    Votes and per-class tables index arrays by class id: ids such as 2**62 (a corrupt file, hashed
    labels) would allocate exabytes. Renumbering keeps equality and order, so every metric (and the
    k-NN rule "ties: the smallest id") is unchanged; dense ids are returned as they are.
    """
    arrays = [np.asarray(a) for a in labels]
    total = sum(a.size for a in arrays)
    if not total or max(int(a.max(initial=0)) for a in arrays) < total:
        return tuple(arrays)
    _, inverse = np.unique(np.concatenate([a.ravel() for a in arrays]), return_inverse=True)
    out, start = [], 0
    for a in arrays:
        out.append(inverse[start : start + a.size].reshape(a.shape).astype(np.int64))
        start += a.size
    return tuple(out)


def relevance(q_labels: np.ndarray, g_labels: np.ndarray) -> np.ndarray:
    """(Q, G) bool: same class label, or (multi-hot, 2-D labels) at least one shared label."""
    q_labels, g_labels = np.asarray(q_labels), np.asarray(g_labels)
    check_labels(q_labels, g_labels)
    if q_labels.ndim == 1:
        return q_labels[:, None] == g_labels[None, :]
    shared = q_labels.astype(np.float32) @ g_labels.astype(np.float32).T  # (Q, G) shared-label counts
    return shared > 0.5


def harmonic_numbers(n: int) -> np.ndarray:
    """H[0..n]: H[m] = sum_{i=1..m} 1/i (float64)."""
    h = np.zeros(n + 1)
    np.cumsum(1.0 / np.arange(1, n + 1), out=h[1:])
    return h


def tie_aware_ap_from_histograms(counts: np.ndarray, rel_counts: np.ndarray, harmonic: np.ndarray | None = None) -> np.ndarray:
    """Expected AP per query when tied items are ordered at random (McSherry & Najork's closed form).

    Args:
        counts: (Q, K) items per ranking-key value (ascending key = better rank).
        rel_counts: (Q, K) relevant items per key value.
        harmonic: H[0..G] (see :func:`harmonic_numbers`), computed if None.

    Returns:
        (Q,) float64; 0 for a query without relevant items.
    """
    counts = counts.astype(np.float64)
    r = rel_counts.astype(np.float64)
    c = np.cumsum(counts, axis=1) - counts  # items ranked before each group
    rc = np.cumsum(r, axis=1) - r  # relevant items before each group
    if harmonic is None:
        harmonic = harmonic_numbers(int(counts.sum(axis=1).max(initial=0)))
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
