"""One training step: the learning-rate schedule, the two views' forward passes, loss and update."""

from __future__ import annotations

import math

import torch


from nacscope.training.config import TrainConfig


def lr_at(step: int, cfg: TrainConfig, steps_per_epoch: int) -> float:
    """Linear warm-up from lr 0 at step 0 over ``warmup_epochs`` (as the authors'), then cosine decay to 0."""
    total = cfg.epochs * steps_per_epoch
    warm = int(round(cfg.warmup_epochs * steps_per_epoch))
    if step < warm:
        return cfg.lr * step / warm
    progress = (step - warm) / max(1, total - warm)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _fp32(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


def forward_views(model: torch.nn.Module, x_1: torch.Tensor, x_2: torch.Tensor, mode: str) -> tuple[torch.Tensor, ...]:
    """``(a_1, a_2, logits_1, logits_2)``, each (B, D), of the two views ``x_1``, ``x_2`` (B, C, H, W).

    ``per-view``: two model calls (BatchNorm normalises each view's batch on its own, the authors' step);
    ``joint``: one call on the 2B views concatenated (BatchNorm over both views mixed).
    """
    if mode == "joint":
        b = x_1.shape[0]
        _, a, logits = model(torch.cat([x_1, x_2]))  # (2B, D) each
        return a[:b], a[b:], logits[:b], logits[b:]
    _, a_1, logits_1 = model(x_1)
    _, a_2, logits_2 = model(x_2)
    return a_1, a_2, logits_1, logits_2


def train_step(model, optimizer, x_1: torch.Tensor, x_2: torch.Tensor, cfg: TrainConfig, *, gather: bool = False,
               generator: torch.Generator | None = None, bf16: bool = False, moco=None) -> torch.Tensor:
    """One optimiser step on a batch of view pairs (B, C, H, W) each; returns the detached loss.

    The caller sets the learning rate. The NAC flips are drawn from ``generator``. ``nac-moco`` needs
    ``moco`` (a :class:`nacscope.training.moco_step.MocoState`) and always forwards the views one at a time.
    """
    from nacscope.objectives import nac_loss, simclr_loss

    if cfg.objective == "nac-moco":
        from nacscope.training.moco_step import moco_train_step

        return moco_train_step(model, moco, optimizer, x_1, x_2, cfg, generator=generator, bf16=bf16)

    with torch.autocast(x_1.device.type, dtype=torch.bfloat16, enabled=bf16):
        a_1, a_2, logits_1, logits_2 = (_fp32(t) for t in forward_views(model, x_1, x_2, cfg.forward))
    if cfg.objective == "nac":
        loss = nac_loss(a_1, a_2, logits_1, logits_2, cfg.p, gather=gather, generator=generator)
    else:
        loss = simclr_loss(a_1, a_2, cfg.temperature, gather=gather)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()
