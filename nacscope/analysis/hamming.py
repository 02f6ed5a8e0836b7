"""Hamming distances between rows of packed bits (the kernel every code-set analysis uses).

Rows are ``np.packbits`` output, (N, row_bytes) uint8, padding bits zero. Narrow codes (up to 512
bits) are compared as uint64 words with XOR + ``np.bitwise_count``; wide ones (ReLU layers with
thousands of units) as a matrix product of unpacked bits, ``d(a, b) = |a| + |b| - 2 a.b``, which
BLAS (or a GPU through torch) does faster than 64+ word passes. ``benchmarks/retrieval.py``
measures both.
"""

from __future__ import annotations

import numpy as np

#: Up to this many 64-bit words per row, XOR + popcount; above it, the matrix product.
MAX_POPCOUNT_WORDS = 8
#: Gallery rows per block in the matrix-product path (bounds the unpacked float32 copy).
_GEMM_BLOCK = 8192


def to_words(packed: np.ndarray) -> np.ndarray:
    """View packed rows (N, row_bytes) uint8 as (N, ceil(row_bytes / 8)) uint64, zero padded."""
    packed = np.asarray(packed, dtype=np.uint8)
    n, b = packed.shape
    w = max(1, (b + 7) // 8)
    if b == 8 * w and packed.flags.c_contiguous:
        return packed.view(np.uint64)
    out = np.zeros((n, 8 * w), dtype=np.uint8)
    out[:, :b] = packed
    return out.view(np.uint64)


def distance_dtype(n_bits: int) -> np.dtype:
    """The smallest unsigned dtype that holds distances 0..n_bits+1 (the +1 marks excluded items)."""
    if n_bits + 1 <= np.iinfo(np.uint8).max:
        return np.dtype(np.uint8)
    if n_bits + 1 <= np.iinfo(np.uint16).max:
        return np.dtype(np.uint16)
    return np.dtype(np.uint32)


def popcount_rows(packed: np.ndarray) -> np.ndarray:
    """Number of set bits per row, (N,) int64."""
    return np.bitwise_count(to_words(packed)).sum(axis=1, dtype=np.int64)


def _gemm_and_counts(q: np.ndarray, g: np.ndarray, device: str | None) -> np.ndarray:
    """(Q, G) float32 dot products of the {0,1} rows (exact below 2**24 bits)."""
    qb = np.unpackbits(q, axis=1).astype(np.float32)  # (Q, 8*row_bytes)
    out = np.empty((len(q), len(g)), dtype=np.float32)
    if device is not None:
        import torch

        qt = torch.from_numpy(qb).to(device)
        for s in range(0, len(g), _GEMM_BLOCK):
            gb = torch.from_numpy(np.unpackbits(g[s : s + _GEMM_BLOCK], axis=1).astype(np.float32)).to(device)
            out[:, s : s + len(gb)] = (qt @ gb.T).cpu().numpy()  # (Q, Gb)
        return out
    for s in range(0, len(g), _GEMM_BLOCK):
        gb = np.unpackbits(g[s : s + _GEMM_BLOCK], axis=1).astype(np.float32)  # (Gb, 8*row_bytes)
        np.matmul(qb, gb.T, out=out[:, s : s + len(gb)])
    return out


def hamming_distances(q_packed: np.ndarray, g_packed: np.ndarray, *, device: str | None = None) -> np.ndarray:
    """All Hamming distances between query rows and gallery rows.

    Args:
        q_packed: (Q, row_bytes) uint8 packed bits.
        g_packed: (G, row_bytes) uint8 packed bits (same width).
        device: None: numpy (XOR + popcount for narrow codes, BLAS for wide ones); a torch device
            ("cuda", "cpu"): the matrix product of unpacked bits on that device, for every width.

    Returns:
        (Q, G) distances in the smallest unsigned dtype that holds them (see :func:`distance_dtype`).
    """
    q_packed = np.asarray(q_packed, dtype=np.uint8)
    g_packed = np.asarray(g_packed, dtype=np.uint8)
    if q_packed.ndim != 2 or g_packed.ndim != 2 or q_packed.shape[1] != g_packed.shape[1]:
        raise ValueError(f"packed rows of different widths: {q_packed.shape} vs {g_packed.shape}")
    dtype = distance_dtype(8 * q_packed.shape[1])
    qw, gw = to_words(q_packed), to_words(g_packed)  # (Q, W), (G, W)
    if qw.shape[1] <= MAX_POPCOUNT_WORDS and device is None:
        acc = np.bitwise_count(qw[:, None, 0] ^ gw[None, :, 0]).astype(dtype)  # (Q, G)
        for w in range(1, qw.shape[1]):
            acc += np.bitwise_count(qw[:, None, w] ^ gw[None, :, w])
        return acc
    dots = _gemm_and_counts(q_packed, g_packed, device)  # (Q, G)
    pq = popcount_rows(q_packed).astype(np.float32)
    pg = popcount_rows(g_packed).astype(np.float32)
    d = pq[:, None] + pg[None, :] - 2.0 * dots
    return np.rint(d).astype(dtype)


def common_ones(q_packed: np.ndarray, g_packed: np.ndarray) -> np.ndarray:
    """(Q, G) int dot products of {0,1} codes (the authors' ranking score), popcount(q & g)."""
    q_packed = np.asarray(q_packed, dtype=np.uint8)
    g_packed = np.asarray(g_packed, dtype=np.uint8)
    dtype = distance_dtype(8 * q_packed.shape[1])
    qw, gw = to_words(q_packed), to_words(g_packed)
    if qw.shape[1] <= MAX_POPCOUNT_WORDS:
        acc = np.bitwise_count(qw[:, None, 0] & gw[None, :, 0]).astype(dtype)
        for w in range(1, qw.shape[1]):
            acc += np.bitwise_count(qw[:, None, w] & gw[None, :, w])
        return acc
    return np.rint(_gemm_and_counts(q_packed, g_packed, None)).astype(dtype)
