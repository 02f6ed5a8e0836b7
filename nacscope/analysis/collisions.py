"""Code collisions: samples with identical codes, near-collisions, nearest-neighbour distances.

* A collision group is a set of >= 2 samples with the same code (one shared linear region).
* Label purity of a group: the largest fraction of its members that carry one label (class labels:
  the majority class; multi-hot: the most common label). A group mixes labels when purity < 1.
* A near-collision within radius r: a pair of samples at Hamming distance <= r (identical codes
  included). ``near_collisions`` counts those pairs and the samples that have at least one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from nacscope.analysis.hamming import hamming_distances
from nacscope.analysis.patterns import region_sizes
from nacscope.progress import Progress

_BLOCK_PAIRS = 1 << 22


@dataclass
class CollisionReport:
    """Groups of identical codes, largest first (ties: by first member)."""

    n_samples: int
    group_of: np.ndarray  # (N,) pattern id of every sample
    groups: list[np.ndarray]  # member rows of each group of size >= 2, ascending
    sizes: np.ndarray  # (n_groups,) sizes
    purity: np.ndarray | None  # (n_groups,) label purity, None without labels
    mixed: np.ndarray | None  # (n_groups,) bool: members carry different labels

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    def summary(self) -> dict:
        """Scalars for ``nacscope analyze --json``."""
        has = self.purity is not None
        return {
            "collision_groups": self.n_groups,
            "samples_in_collisions": int(self.sizes.sum()),
            "largest_group": int(self.sizes.max(initial=1 if self.n_samples else 0)),
            "mixed_label_groups": int(self.mixed.sum()) if has else None,
            "samples_in_mixed_groups": int(self.sizes[self.mixed].sum()) if has else None,
            "mean_group_purity": (float(self.purity.mean()) if self.n_groups else None) if has else None,
        }


def _purity(labels: np.ndarray, members: np.ndarray) -> float:
    lab = labels[members]
    if lab.ndim == 1:
        return float(np.unique(lab, return_counts=True)[1].max() / len(lab))
    return float(lab.astype(np.int64).sum(axis=0).max() / len(lab))


def _class_purity(labels: np.ndarray, group: np.ndarray, multi: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """(len(multi),) majority-label fraction of each group ``multi[i]``, for (N,) class labels, vectorised."""
    pos = np.full(len(sizes), -1, dtype=np.int64)
    pos[multi] = np.arange(len(multi))
    rows = np.flatnonzero(pos[group] >= 0)  # samples in a group of size >= 2
    g = pos[group[rows]]
    lab = labels[rows].astype(np.int64)
    lab -= lab.min(initial=0)
    pair, counts = np.unique(g * (int(lab.max(initial=0)) + 1) + lab, return_counts=True)
    best = np.zeros(len(multi), dtype=np.int64)
    np.maximum.at(best, pair // (int(lab.max(initial=0)) + 1), counts)
    return best / sizes[multi]


def collision_groups(packed: np.ndarray, labels: np.ndarray | None = None) -> CollisionReport:
    """Find the groups of samples with identical codes.

    Args:
        packed: (N, row_bytes) packed codes.
        labels: (N,) class ids or (N, C) multi-hot, or None.
    """
    group, sizes = region_sizes(packed)
    n = len(group)
    multi = np.flatnonzero(sizes > 1)
    order = np.argsort(group, kind="stable")  # rows grouped, ascending within each group
    starts = np.concatenate([[0], np.cumsum(sizes)])
    # Largest first, ties by first member (groups are numbered by first appearance: by first member).
    multi = multi[np.lexsort((multi, -sizes[multi]))]
    groups = [order[starts[g] : starts[g + 1]] for g in multi]
    gsizes = sizes[multi].astype(np.int64)
    purity = mixed = None
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer):
            purity = _class_purity(labels, group, multi, sizes)
        else:
            purity = np.array([_purity(labels, m) for m in groups], dtype=np.float64)
        mixed = purity < 1.0
    return CollisionReport(n, group, groups, gsizes, purity, mixed)


def neighbour_stats(
    packed: np.ndarray, radii: Sequence[int] = (1, 2), *, rows: np.ndarray | None = None,
    progress: Progress | None = None, backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-neighbour distance and neighbours within each radius, in one pass over all pairs.

    Args:
        packed: (N, row_bytes) packed codes.
        radii: Hamming radii.
        rows: the samples to compute this for (all if None); their neighbours are searched among all.
        backend: "numba", "numpy" or "auto" (see :func:`nacscope.analysis.retrieval.retrieval_metrics`).

    Returns:
        ``(nn, within)``: (n,) int64 Hamming distance to the nearest other sample (-1 if N == 1), and
        (len(radii), n) int64 number of other samples at distance <= r.
    """
    from nacscope.analysis.knn import use_numba

    packed = np.asarray(packed, dtype=np.uint8)
    n = len(packed)
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    nn = np.full(len(rows), -1, dtype=np.int64)
    within = np.zeros((len(radii), len(rows)), dtype=np.int64)
    if n < 2:
        return nn, within
    if use_numba(backend):
        from nacscope.analysis import _kernels
        from nacscope.analysis.hamming import to_words

        words = to_words(packed)
        rad = np.asarray(radii, dtype=np.int64)
        block = max(1, min(len(rows), (1 << 28) // max(1, n * words.shape[1])))
        for s in range(0, len(rows), block):
            r = rows[s : s + block]
            w = np.zeros((len(radii), len(r)), dtype=np.int64)
            _kernels.neighbour_counts(words[r], words, r, rad, nn[s : s + len(r)], w)
            within[:, s : s + len(r)] = w
            if progress is not None:
                progress(s + len(r), len(rows), "nearest neighbours")
        return nn, within
    block = max(1, min(len(rows), _BLOCK_PAIRS // n))
    big = np.iinfo(np.int64).max
    for s in range(0, len(rows), block):
        r = rows[s : s + block]
        d = hamming_distances(packed[r], packed).astype(np.int64)  # (B, N)
        d[np.arange(len(r)), r] = big  # a sample is not its own neighbour
        nn[s : s + len(r)] = d.min(axis=1)
        for i, rad in enumerate(radii):
            within[i, s : s + len(r)] = (d <= rad).sum(axis=1)
        if progress is not None:
            progress(s + len(r), len(rows), "nearest neighbours")
    return nn, within


def nn_hamming_distances(packed: np.ndarray, *, progress: Progress | None = None, backend: str = "auto") -> np.ndarray:
    """(N,) Hamming distance from each sample to its nearest other sample (0 for a collision)."""
    return neighbour_stats(packed, (), progress=progress, backend=backend)[0]


def near_collisions(packed: np.ndarray, radius: int, *, progress: Progress | None = None, backend: str = "auto") -> dict:
    """Pairs of samples within Hamming distance ``radius`` (identical codes included).

    Returns:
        ``{"radius", "pairs", "samples"}``: unordered pairs at distance <= radius, and samples with at
        least one other sample that close.
    """
    _, within = neighbour_stats(packed, (int(radius),), progress=progress, backend=backend)
    return {"radius": int(radius), "pairs": int(within[0].sum() // 2), "samples": int((within[0] > 0).sum())}


def nn_histogram(nn: np.ndarray) -> dict[str, int]:
    """{distance: samples whose nearest neighbour is that far}."""
    nn = np.asarray(nn)
    nn = nn[nn >= 0]
    counts = np.bincount(nn) if len(nn) else np.zeros(0, dtype=np.int64)
    return {str(d): int(c) for d, c in enumerate(counts) if c}


def near_collision_pairs(packed: np.ndarray, radius: int, *, limit: int | None = None, block: int = 1024,
                         progress: Progress | None = None) -> np.ndarray:
    """The pairs of samples within Hamming distance ``radius`` (identical codes included), nearest first.

    Args:
        packed: (N, row_bytes) uint8 packed codes.
        radius: largest Hamming distance listed.
        limit: keep only the first ``limit`` pairs of the sorted list (None: all).
        block: query rows per distance block ((block, N) distances in memory at a time).

    Returns:
        (P, 3) int64 rows ``(i, j, distance)`` with i < j, sorted by distance, then i, then j.
    """
    n = len(packed)
    parts = []
    for s in range(0, n, block):
        d = hamming_distances(packed[s : s + block], packed)  # (B, N)
        i, j = np.nonzero(d <= int(radius))
        i = i + s
        keep = j > i
        parts.append(np.stack([i[keep], j[keep], d[i[keep] - s, j[keep]]], axis=1).astype(np.int64))
        if progress:
            progress(min(n, s + block), n, f"pairs within radius {radius}")
    pairs = np.concatenate(parts) if parts else np.zeros((0, 3), dtype=np.int64)
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0], pairs[:, 2]))]  # (P, 3)
    return pairs if limit is None else pairs[:limit]
