"""k nearest neighbours by Hamming distance over packed codes (numba, numpy or a torch device).

Ties are broken by gallery index, as everywhere in :mod:`nacscope.analysis.retrieval`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nacscope.analysis.hamming import hamming_distances
from nacscope.errors import OptionError
from nacscope.progress import Progress

if TYPE_CHECKING:
    from nacscope.codes.format import CodeSet

#: Query rows per block: about this many (query, gallery) pairs are held at once.
BLOCK_PAIRS = 1 << 22


def check_pair(q: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q, g = np.asarray(q, dtype=np.uint8), np.asarray(g, dtype=np.uint8)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise OptionError(f"query and gallery codes must be packed rows of one width, got {q.shape} and {g.shape}")
    if len(g) == 0:
        raise OptionError("the gallery is empty")
    return q, g


_NUMBA: bool | None = None
BACKENDS = ("auto", "numba", "numpy")


def use_numba(backend: str) -> bool:
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
    q, g = check_pair(q_packed, g_packed)
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
    if use_numba(backend):
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
