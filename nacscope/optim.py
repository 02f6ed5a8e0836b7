"""The authors' LARS update rule (NAC-NOTES §3), as ``--optimizer lars-paper``.

For every parameter ``w`` with gradient ``g`` (biases and BatchNorm parameters included, no exclusions):

    d     = g + wd · w                                  (weight decay on every parameter)
    trust = η · ‖w‖ / ‖d‖   if ‖w‖ > 0 and ‖d‖ > 0, else 0
    v     = μ · v + lr · trust · d                      (the learning rate is folded into the buffer)
    w     = w − v

The quirk, reproduced on purpose: in the authors' code the guard meant to skip zero-norm parameters is
always true, so a parameter whose norm is 0 gets a trust ratio of 0 and never moves. Every
zero-initialised bias (all BatchNorm biases of ResNet-50; the conv and BatchNorm biases of VGG-16-BN) stays
exactly 0 for the whole run. timm's LARS with biases/norms excluded (``--optimizer lars``) is the
"corrected" alternative and does move them.
"""

from __future__ import annotations

import torch


class PaperLARS(torch.optim.Optimizer):
    """LARS exactly as the authors apply it (see the module docstring).

    Args:
        params: parameters or parameter groups.
        lr: learning rate (folded into the momentum buffer).
        momentum: μ.
        weight_decay: wd, applied to every parameter.
        trust_coeff: η (0.001 in the paper's runs).
    """

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 1e-6, trust_coeff: float = 0.001):
        if lr < 0 or momentum < 0 or weight_decay < 0 or trust_coeff <= 0:
            raise ValueError("lr, momentum and weight_decay must be >= 0 and trust_coeff > 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, trust_coeff=trust_coeff))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, mu, wd, eta = group["lr"], group["momentum"], group["weight_decay"], group["trust_coeff"]
            for w in group["params"]:
                if w.grad is None:
                    continue
                d = w.grad.add(w, alpha=wd)
                w_norm, d_norm = torch.linalg.vector_norm(w), torch.linalg.vector_norm(d)
                ok = (w_norm > 0) & (d_norm > 0)
                trust = torch.where(ok, eta * w_norm / torch.where(ok, d_norm, torch.ones_like(d_norm)),
                                    torch.zeros_like(w_norm))
                state = self.state[w]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(w)
                buf = state["momentum_buffer"]
                buf.mul_(mu).add_(d * trust, alpha=lr)
                w.sub_(buf)
        return loss


from nacscope.train_options import OPTIMIZERS  # noqa: E402,F401


def param_groups(model: torch.nn.Module, weight_decay: float, exclude_bias_norm: bool) -> list[dict]:
    """Two groups: weights (decayed) and biases/norm parameters (no decay, no LARS adaptation) if excluded."""
    if not exclude_bias_norm:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": weight_decay}]
    decay, plain = [], []
    for p in model.parameters():
        if p.requires_grad:
            (plain if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def make_optimizer(model: torch.nn.Module, cfg, device: torch.device) -> torch.optim.Optimizer:
    """The optimiser ``cfg.optimizer`` names (one of :data:`OPTIMIZERS`); fused SGD/AdamW kernels on CUDA.

    ``lars-paper`` ignores ``exclude_bias_norm``: the authors decay and adapt every parameter.
    """
    from nacscope.errors import OptionError

    if cfg.optimizer == "lars-paper":
        params = [p for p in model.parameters() if p.requires_grad]
        return PaperLARS(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, trust_coeff=0.001)
    groups = param_groups(model, cfg.weight_decay, cfg.exclude_bias_norm)
    fused = {"fused": True} if device.type == "cuda" else {}
    if cfg.optimizer == "lars":
        try:
            from timm.optim import Lars
        except ImportError:
            raise OptionError("--optimizer lars needs timm (pip install timm), or choose lars-paper, sgd or adamw") from None

        return Lars(groups, lr=cfg.lr, momentum=cfg.momentum, trust_coeff=0.001)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, **fused)
    return torch.optim.AdamW(groups, lr=cfg.lr, **fused)
