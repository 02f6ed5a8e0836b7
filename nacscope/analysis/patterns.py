"""Distinct activation patterns in the data (the data-side "regions"), per layer and cumulatively.

Each activation pattern of a ReLU layer is one linear region of the network up to that layer (when
the layer holds every ReLU of its depth); the joint pattern of all layers up to and including a
layer is the network's region there (``cumulative``). Counting is exact.

Rows are grouped by a 64-bit hash of their uint64 words, ``np.unique`` on the hashes (one sort of
N integers instead of N rows of row_bytes), and a check that every row equals the first row of its
group; if two different rows ever shared a hash, the rows themselves are sorted instead
(``np.unique`` on a void view). ``benchmarks/distinct.py`` compares this with ``np.unique(axis=0)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from nacscope.analysis.hamming import to_words
from nacscope.progress import Progress

if TYPE_CHECKING:
    from nacscope.codes.format import CodeSet

_HASH_SEED = 0x9E3779B97F4A7C15
#: uint64 words held at once in temporaries (bounds memory for wide layers).
_BLOCK_WORDS = 1 << 22


def _rows_per_block(words_per_row: int) -> int:
    return max(1, _BLOCK_WORDS // max(1, words_per_row))


def _row_hashes(words: np.ndarray) -> np.ndarray:
    """(N,) uint64 hash of each row of (N, W) uint64 words: sum of mixed words times odd multipliers."""
    n, w = words.shape
    mult = np.random.default_rng(_HASH_SEED).integers(1, 2**63, size=w, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    h = np.zeros(n, dtype=np.uint64)
    step = _rows_per_block(w)
    with np.errstate(over="ignore"):
        for s in range(0, n, step):
            blk = words[s : s + step]  # (b, W)
            x = blk ^ (blk >> np.uint64(31))
            x *= mult  # wraps mod 2**64
            h[s : s + len(blk)] = x.sum(axis=1, dtype=np.uint64)
            h[s : s + len(blk)] ^= h[s : s + len(blk)] >> np.uint64(29)
    return h


def _group_rows_exact(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group equal rows by sorting the rows themselves (the slow, sure fallback)."""
    packed = np.ascontiguousarray(packed)
    void = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first, inverse = np.unique(void, return_index=True, return_inverse=True)
    return first, inverse.ravel()


def region_sizes(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group identical rows.

    Args:
        packed: (N, row_bytes) uint8 packed activation patterns.

    Returns:
        ``(group_id, sizes)``: (N,) int64 id of each row's pattern, and (P,) int64 number of rows of
        each of the P distinct patterns. Groups are numbered in order of first appearance.
    """
    packed = np.asarray(packed, dtype=np.uint8)
    n = len(packed)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    words = to_words(packed)  # (N, W)
    _, first, inverse = np.unique(_row_hashes(words), return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    rep = first[inverse]  # (N,) first row with the same hash
    same = np.ones(n, dtype=bool)
    step = _rows_per_block(words.shape[1])
    for s in range(0, n, step):
        e = min(n, s + step)
        same[s:e] = (words[s:e] == words[rep[s:e]]).all(axis=1)
    if not same.all():  # a hash collision between different rows: fall back to sorting rows
        first, inverse = _group_rows_exact(packed)
    # Renumber groups by first appearance (stable, independent of the hash).
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    group = rank[inverse].astype(np.int64)
    return group, np.bincount(group).astype(np.int64)


def distinct_patterns(packed: np.ndarray) -> int:
    """Number of distinct rows (activation patterns) in (N, row_bytes) packed bits."""
    return int(len(region_sizes(packed)[1]))


def combine_groups(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Group ids of the joint pattern of two groupings of the same rows, numbered by first appearance."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    joint = a * (int(b.max(initial=0)) + 1) + b
    _, first, inverse = np.unique(joint, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse.ravel()].astype(np.int64)


def size_histogram(sizes: np.ndarray) -> dict[int, int]:
    """{group size: number of regions of that size}."""
    counts = np.bincount(np.asarray(sizes, dtype=np.int64))
    return {int(s): int(c) for s, c in enumerate(counts) if c}


def region_stats(group: np.ndarray, sizes: np.ndarray) -> dict:
    """Summary of a grouping: distinct regions, shared ones, and the size histogram."""
    n = int(len(group))
    p = int(len(sizes))
    shared = int((sizes > 1).sum())
    return {
        "n_samples": n,
        "distinct_patterns": p,
        "distinct_fraction": (p / n) if n else None,
        "regions_with_multiple_samples": shared,
        "fraction_regions_multiple": (shared / p) if p else None,
        "largest_region": int(sizes.max(initial=0)),
        "size_histogram": {str(k): v for k, v in size_histogram(sizes).items()},
    }


def cumulative_distinct(
    cs: "CodeSet", layers: Sequence[str] | None = None, *, group_of: dict[str, np.ndarray] | None = None,
    progress: Progress | None = None,
) -> dict[str, dict]:
    """The network's regions at each requested layer: distinct joint patterns of all layers up to it.

    The region at a layer is the joint pattern of every layer of the file up to and including it, in
    file (forward) order, whether or not those earlier layers were requested.

    Args:
        cs: an open code set.
        layers: the layers to report (all if None).
        group_of: per-layer pattern ids already computed (from :func:`region_sizes`), to skip re-grouping.

    Returns:
        ``{layer: region_stats(...)}`` of the joint pattern up to that layer, for the requested layers.
    """
    order = cs.layer_names
    wanted = list(layers) if layers is not None else order
    upto = order[: max(order.index(n) for n in wanted) + 1] if wanted else []
    out: dict[str, dict] = {}
    joint: np.ndarray | None = None
    for i, name in enumerate(upto):
        group = group_of[name] if group_of and name in group_of else region_sizes(cs.packed(name))[0]
        joint = group if joint is None else combine_groups(joint, group)
        if name in wanted:
            out[name] = region_stats(joint, np.bincount(joint))
        if progress is not None:
            progress(i + 1, len(upto), "cumulative regions")
    return out
