"""Bit health of a layer's codes: activation rates, dead and stuck bits, entropy, correlation.

Definitions (also in ``docs/analysis.md``):

* rate of bit j: fraction of samples where unit j is on (1).
* dead bit: never on (rate 0); stuck bit: always on (rate 1).
* bit entropy: sum over bits of the binary entropy ``H(p) = -p log2 p - (1-p) log2 (1-p)`` of their
  rates, in bits (an upper bound on the code's information if bits were independent).
* correlation: Pearson correlation between bits over the samples (constant bits excluded).
* effective bits: the participation ratio ``(sum l)^2 / sum l^2`` of the eigenvalues ``l`` of that
  correlation matrix: the number of non-constant bits when they are uncorrelated, 1 when all are
  copies of one bit.
"""

from __future__ import annotations


import numpy as np

from nacscope.progress import Progress

#: Above this many non-constant bits the (units x units) correlation matrix is not formed.
MAX_CORRELATION_BITS = 4096
#: Unpacked bits held at once (bounds memory for layers with many units).
_BLOCK_ELEMENTS = 1 << 25


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Elementwise binary entropy in bits (0 at p = 0 and p = 1)."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return np.where((p > 0) & (p < 1), h, 0.0)


def bit_health(
    packed: np.ndarray, units: int, *, max_correlation_bits: int = MAX_CORRELATION_BITS,
    progress: Progress | None = None,
) -> dict:
    """Per-bit statistics of (N, row_bytes) packed codes with ``units`` bits.

    Returns:
        A dict with scalars ``n_samples, n_bits, dead_bits, stuck_bits, bit_entropy,
        mean_bit_entropy, mean_rate, mean_abs_correlation, effective_bits`` (the last two None when
        there are fewer than two non-constant bits, fewer than two samples, or more than
        ``max_correlation_bits`` non-constant bits) and arrays ``rates`` (units,), ``dead`` and
        ``stuck`` (indices), ``correlation`` ((k, k) over the non-constant bits ``varying``, or None).
    """
    packed = np.asarray(packed, dtype=np.uint8)
    n = len(packed)
    rows_per_block = max(1, _BLOCK_ELEMENTS // max(1, units))
    ones = np.zeros(units, dtype=np.int64)
    for s in range(0, n, rows_per_block):
        blk = np.unpackbits(packed[s : s + rows_per_block], axis=1, count=units)  # (b, units)
        ones += blk.sum(axis=0, dtype=np.int64)
    rates = ones / n if n else np.zeros(units)
    dead = np.flatnonzero(ones == 0)
    stuck = np.flatnonzero(ones == n) if n else np.zeros(0, dtype=np.int64)
    varying = np.flatnonzero((ones > 0) & (ones < n))
    ent = binary_entropy(rates)
    out = {
        "n_samples": int(n),
        "n_bits": int(units),
        "dead_bits": int(len(dead)),
        "stuck_bits": int(len(stuck)),
        "bit_entropy": float(ent.sum()),
        "mean_bit_entropy": float(ent.mean()) if units else None,
        "mean_rate": float(rates.mean()) if units and n else None,
        "mean_abs_correlation": None,
        "effective_bits": None,
        "rates": rates,
        "dead": dead,
        "stuck": stuck,
        "varying": varying,
        "correlation": None,
    }
    k = len(varying)
    if n < 2 or k < 1 or k > max_correlation_bits:
        if k == 1:
            out["effective_bits"] = 1.0
        return out
    # Covariance accumulated over row blocks: C = X^T X / n - mu mu^T on the varying bits.
    gram = np.zeros((k, k), dtype=np.float64)
    rows_per_block = min(rows_per_block, 1 << 16)  # float32 counts stay exact (< 2**24) per block
    for s in range(0, n, rows_per_block):
        blk = np.unpackbits(packed[s : s + rows_per_block], axis=1, count=units)[:, varying].astype(np.float32)
        gram += (blk.T @ blk).astype(np.float64)  # (k, k) co-activation counts of this block
        if progress is not None:
            progress(min(n, s + rows_per_block), n, "bit correlation")
    mu = rates[varying]
    cov = gram / n - np.outer(mu, mu)
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    np.fill_diagonal(corr, 1.0)
    out["correlation"] = corr
    if k > 1:
        off = np.abs(corr[~np.eye(k, dtype=bool)])
        out["mean_abs_correlation"] = float(off.mean())
    # sum(l) = trace = k and sum(l^2) = ||corr||_F^2, so no eigen-decomposition is needed.
    out["effective_bits"] = float(k * k / np.square(corr).sum())
    return out


def bit_health_summary(health: dict) -> dict:
    """The JSON-able scalars of :func:`bit_health`."""
    keys = ("dead_bits", "stuck_bits", "bit_entropy", "mean_bit_entropy", "mean_rate", "mean_abs_correlation",
            "effective_bits")
    return {k: health[k] for k in keys}
