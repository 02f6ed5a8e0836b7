"""MoCo-NAC building blocks (NAC-NOTES §2.6): a FIFO queue of relaxed codes and the queue loss.

Not yet wired into training (see the helper report of issue #15). The loss is our reading of §2.6:
for a query view with relaxed code ``z = tanh(a)`` and noisy code ``y = m ⊙ z``, the partner's logits
``l`` give the Bernoulli log-likelihood term of §2.3, and the marginal is a logsumexp over the key
codes of the batch (from the momentum encoder) and the K queued codes. ``kappa_mode="divide"``
(default, the authors' MoCo code per NAC-NOTES §3) scales dot products by 1/κ; ``"multiply"`` by κ.
``l2`` adds λ·‖z‖² per row.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from nacscope.objectives import channel_kappa, draw_flips

__all__ = ["CodeQueue", "moco_nac_loss", "momentum_update", "KAPPA_MODES"]

KAPPA_MODES = ("divide", "multiply")


class CodeQueue:
    """K relaxed codes (K, D), FIFO: enqueue overwrites the oldest rows, ``ptr`` is the next slot."""

    def __init__(self, size: int, dim: int, *, dtype=torch.float32, device=None):
        if size < 1 or dim < 1:
            raise ValueError(f"queue size and dim must be >= 1, got {size}, {dim}")
        self.codes = torch.zeros(size, dim, dtype=dtype, device=device)  # (K, D)
        self.ptr = 0

    def enqueue(self, keys: torch.Tensor) -> None:
        """Write ``keys`` (n, D), detached, at ``ptr`` (wrapping around); n <= K."""
        k = self.codes.shape[0]
        n = keys.shape[0]
        if n > k:
            raise ValueError(f"cannot enqueue {n} keys into a queue of {k}")
        idx = (self.ptr + torch.arange(n, device=self.codes.device)) % k
        self.codes[idx] = keys.detach().to(self.codes.dtype)
        self.ptr = (self.ptr + n) % k

    def state_dict(self) -> dict:
        return {"codes": self.codes.clone(), "ptr": self.ptr}

    def load_state_dict(self, state: dict) -> None:
        self.codes = state["codes"].clone()
        self.ptr = int(state["ptr"])


def moco_nac_loss(a_q: torch.Tensor, z_k: torch.Tensor, logits: torch.Tensor, queue: torch.Tensor, p: float,
                  flips: torch.Tensor | None = None, *, kappa_mode: str = "divide", l2: float = 0.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Mean over the B query rows of the MoCo-NAC loss.

    Args:
        a_q: (B, D) query code pre-activations (scaled by 1/sqrt(D)).
        z_k: (B, D) relaxed key codes from the momentum encoder (no gradient flows into them).
        logits: (B, D) partner-view inference-head logits (computed from detached features).
        queue: (K, D) queued relaxed codes (negatives).
        p: flip probability.  flips: optional (B, D) ±1 signs.
        kappa_mode: ``divide`` (authors' MoCo code) or ``multiply`` (their current NAC code).
        l2: λ of the penalty λ·‖z‖² on the query's relaxed code.
    """
    if kappa_mode not in KAPPA_MODES:
        raise ValueError(f"kappa_mode must be one of {KAPPA_MODES}, got {kappa_mode!r}")
    kappa = channel_kappa(p)
    scale = 1.0 / kappa if kappa_mode == "divide" else kappa
    z = torch.tanh(a_q)  # (B, D)
    if flips is None:
        flips = draw_flips(tuple(z.shape), p, device=z.device, dtype=z.dtype, generator=generator)
    y = flips.to(z.dtype) * z  # (B, D)
    logits = logits.to(z.dtype)
    log_lik = (0.5 * y * logits - (F.softplus(logits) - 0.5 * logits) + math.log(2.0)).sum(dim=1)  # (B,)
    keys = torch.cat([z_k.detach(), queue.detach()], dim=0).to(z.dtype)  # (B + K, D)
    log_marginal = torch.logsumexp(scale * (y @ keys.T), dim=1)  # (B,)
    return (log_marginal - log_lik + l2 * (z * z).sum(dim=1)).mean()


@torch.no_grad()
def momentum_update(key: torch.nn.Module, query: torch.nn.Module, m: float) -> None:
    """Key encoder update θ_k ← m·θ_k + (1−m)·θ_q on parameters; buffers (BatchNorm statistics) are copied."""
    if not 0.0 <= m <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {m}")
    for pk, pq in zip(key.parameters(), query.parameters(), strict=True):
        pk.mul_(m).add_(pq.detach(), alpha=1.0 - m)
    for bk, bq in zip(key.buffers(), query.buffers(), strict=True):
        bk.copy_(bq)
