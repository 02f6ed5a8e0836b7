"""Training objectives: the NAC loss (NAC-NOTES §2), SimCLR's NT-Xent, and a DDP gather that keeps gradients.

Both losses take an optional ``gather`` flag: with it, the negatives (the codes ``z_k`` of the NAC
logsumexp, the keys of NT-Xent) come from every rank of the default process group through
:func:`all_gather_with_grad`, so that the loss averaged over ranks equals the single-process loss on
the global batch, and so do its gradients (DDP averages them over ranks).
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F

__all__ = ["all_gather_with_grad", "channel_kappa", "draw_flips", "nac_loss", "simclr_loss"]


def _world() -> tuple[int, int]:
    """(rank, world size) of the default process group, (0, 1) when none is initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _AllGather(torch.autograd.Function):
    """Concatenate a tensor from all ranks along dim 0; backward sums the gradients over ranks.

    Every rank's loss depends on every rank's rows, so the gradient of the summed loss with respect to
    this rank's rows is the sum, over ranks, of their gradients for that slice: an all-reduce of the
    incoming gradient followed by taking this rank's slice.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # x: (n, ...)
        rank, world = _world()
        ctx.rank, ctx.n = rank, x.shape[0]
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)  # (world * n, ...)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Gather ``x`` (n, ...) from every rank into (world * n, ...), rank order, keeping gradients.

    Without an initialised process group (or with one rank) this returns ``x`` itself.
    """
    _, world = _world()
    if world == 1:
        return x
    return _AllGather.apply(x)


def channel_kappa(p: float) -> float:
    """κ = ½·log((1−p)/p): the log-likelihood scale of a binary symmetric channel with flip probability p."""
    if not 0.0 < p < 0.5:
        raise ValueError(f"flip probability p must be in (0, 0.5), got {p}")
    return 0.5 * math.log((1.0 - p) / p)


def draw_flips(
    shape: tuple[int, ...], p: float, *, device=None, dtype=torch.float32, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random channel signs m ∈ {−1, +1} with P(m = −1) = p."""
    u = torch.rand(shape, device=device, generator=generator)
    return torch.where(u < p, -1.0, 1.0).to(dtype)


def nac_loss(
    a_1: torch.Tensor,
    a_2: torch.Tensor,
    logits_1: torch.Tensor,
    logits_2: torch.Tensor,
    p: float,
    flips: torch.Tensor | None = None,
    *,
    gather: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""The Neural Activation Coding loss, mean of ``L_i`` over the 2B views (NAC-NOTES §2).

    Rows ``0..B-1`` of the 2B views are view 1, rows ``B..2B-1`` view 2. With ``z = tanh(a)`` (relaxed
    code), ``m`` the channel signs (``flips``, P(m = −1) = p), ``y = m ⊙ z`` (noisy code),
    ``κ = ½·log((1−p)/p)`` and ``l`` the logits of the *partner* view's inference head (for a view-1 row
    ``logits_2``'s row, which is computed from view 2's features, for a view-2 row ``logits_1``'s row):

    .. math::

        L_i = -\sum_d \big[\tfrac12 y_{i,d} l_d - \log(2\cosh(\tfrac12 l_d)) + \log 2\big]
              + \operatorname{logsumexp}_{k=1..2B} \big(\kappa\, y_i \cdot z_k\big)

    The first sum is the Bernoulli log-likelihood of the code in exponential-family form, taken
    linearly in the continuous ``y`` (not ``log σ(y·l)``). The logsumexp runs over all 2B relaxed codes,
    the view's own ``z_i`` included. ``log(2 cosh(l/2))`` is computed stably as ``softplus(l) − l/2``.

    Args:
        a_1, a_2: (B, D) code-layer pre-activations of views 1 and 2, already scaled by 1/sqrt(D).
        logits_1: (B, D) inference-head logits from view 1's features (they predict view 2's code).
        logits_2: (B, D) inference-head logits from view 2's features (they predict view 1's code).
        p: channel flip probability, in (0, 0.5).
        flips: optional (2B, D) ±1 signs (rows as above); drawn with probability ``p`` when None.
        gather: under torch.distributed, take the logsumexp over the codes of all ranks (global batch).
        generator: random generator for the flips drawn here.

    Returns:
        Scalar tensor: mean of ``L_i`` over this process's 2B views.
    """
    if a_1.shape != a_2.shape or logits_1.shape != a_1.shape or logits_2.shape != a_1.shape or a_1.dim() != 2:
        raise ValueError(
            f"nac_loss needs four (B, D) tensors of one shape, got {tuple(a_1.shape)}, {tuple(a_2.shape)}, "
            f"{tuple(logits_1.shape)}, {tuple(logits_2.shape)}"
        )
    kappa = channel_kappa(p)
    z = torch.tanh(torch.cat([a_1, a_2], dim=0))  # (2B, D)
    if flips is None:
        flips = draw_flips(tuple(z.shape), p, device=z.device, dtype=z.dtype, generator=generator)
    elif flips.shape != z.shape:
        raise ValueError(f"flips must have shape {tuple(z.shape)}, got {tuple(flips.shape)}")
    y = flips.to(z.dtype) * z  # (2B, D)
    logits = torch.cat([logits_2, logits_1], dim=0).to(z.dtype)  # (2B, D): partner's prediction of row i
    log_lik = (0.5 * y * logits - (F.softplus(logits) - 0.5 * logits) + math.log(2.0)).sum(dim=1)  # (2B,)
    keys = all_gather_with_grad(z) if gather else z  # (2B·world, D)
    log_marginal = torch.logsumexp(kappa * (y @ keys.T), dim=1)  # (2B,)
    return (log_marginal - log_lik).mean()


def simclr_loss(
    z_1: torch.Tensor, z_2: torch.Tensor, temperature: float = 0.5, *, gather: bool = False
) -> torch.Tensor:
    """SimCLR's NT-Xent loss, mean over the 2B views.

    Head outputs are L2-normalised; for view ``i`` the positive is its partner, the negatives every
    other view (self-similarity masked out). With ``gather`` the keys come from all ranks.

    Args:
        z_1, z_2: (B, D) head outputs of the two views.
        temperature: τ > 0.
        gather: under torch.distributed, contrast against the views of all ranks.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    b = z_1.shape[0]
    q = F.normalize(torch.cat([z_1, z_2], dim=0).float(), dim=1)  # (2B, D)
    rank, _ = _world() if gather else (0, 1)
    keys = all_gather_with_grad(q) if gather else q  # (2B·world, D), rank blocks of [view 1; view 2]
    sim = q @ keys.T / temperature  # (2B, 2B·world)
    rows = torch.arange(2 * b, device=q.device)
    own = rank * 2 * b + rows  # column of each row's own key
    partner = rank * 2 * b + (rows + b) % (2 * b)
    cols = torch.arange(sim.shape[1], device=q.device)
    sim = sim.masked_fill(cols[None, :] == own[:, None], float("-inf"))  # drop self-similarity
    return F.cross_entropy(sim, partner)
