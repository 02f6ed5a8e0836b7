"""The MoCo-NAC training step (``--objective nac-moco``, NAC-NOTES §2.6) and its resumable state.

Our reading of §2.6 (the notes name the parts, not the order; see :mod:`nacscope.moco` for the loss):

1. momentum update of the key encoder, ``θ_k ← m·θ_k + (1−m)·θ_q`` (buffers copied), before the keys
   are computed (MoCo's order: the key encoder lags the query encoder by the previous step);
2. relaxed key codes ``z_k = tanh(a_k)`` of both views from the key encoder, without gradient;
3. the query encoder forwards each view on its own (per view, as the authors' step); the inference
   head reads the **detached** features of the partner view, so its log-likelihood term trains the head
   alone, never the encoder;
4. the symmetric loss ``½·(L(view 1 | key of view 2) + L(view 2 | key of view 1))``, each the queue loss
   of :func:`nacscope.moco.moco_nac_loss` with the L2 penalty ``λ‖z‖²``; flips (2B, D) drawn from the
   step's generator, rows 0..B−1 for view 1;
5. after the optimiser step, both views' keys (2B, D) are enqueued (view 1 first), oldest overwritten.

Several ranks (torchrun, DDP): the keys of every rank are gathered (rank order), so each query meets the
global batch's keys as in one process, and enqueued on every rank (view 1's, then view 2's), so the
queues stay identical; each rank's loss is the mean over its rows, so DDP's gradient average is the
gradient of the global batch's mean; and with ``--sync-bn`` the key encoder's
BatchNorm also sees the global batch: the step then equals one process on the global batch
(``tests/test_moco_ddp.py``). Without ``--sync-bn`` BatchNorm is per rank (MoCo's shuffle-BN is not built).

Measured, not yet understood: on digits (mlp, 32 bits, AdamW lr 2e-3, K 1024, m 0.99, λ 0, 10 epochs) the
codes collapse to one pattern in both κ modes (loss 2.9 after epoch 2, 23.5 after epoch 10). This reading
of §2.6 is tested against its own float64 reference, not against the authors' code.
"""

from __future__ import annotations

import copy

import torch

from nacscope.moco import CodeQueue, moco_nac_loss, momentum_update


def _fp32(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


class MocoState:
    """Key encoder (a frozen copy of the query model, updated by momentum) and the queue of relaxed codes."""

    def __init__(self, model: torch.nn.Module, size: int, bits: int, device=None):
        self.key = copy.deepcopy(_unwrap(model))
        for p in self.key.parameters():
            p.requires_grad_(False)
        self.key.train()
        dtype = next(self.key.parameters()).dtype
        self.queue = CodeQueue(size, bits, dtype=dtype, device=device)

    def state_dict(self) -> dict:
        """Plain tensors and ints (loadable with ``torch.load(weights_only=True)``)."""
        return {"key": self.key.state_dict(), "queue": self.queue.codes.clone(), "ptr": int(self.queue.ptr)}

    def load_state_dict(self, state: dict) -> None:
        self.key.load_state_dict(state["key"])
        self.queue.load_state_dict({"codes": state["queue"].to(self.queue.codes.device), "ptr": state["ptr"]})


def moco_forward(model, moco: MocoState, x_1: torch.Tensor, x_2: torch.Tensor, cfg,
                 generator: torch.Generator | None = None,
                 flips: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Steps 1–4 above: ``(loss, keys)`` with keys (2·W·B, D) the relaxed key codes of the global batch
    (view 1, then view 2) to enqueue after the update.

    ``flips`` (2B, D) of ±1, rows 0..B−1 for view 1, are drawn from ``generator`` unless given."""
    from nacscope.objectives import draw_flips

    inner = _unwrap(model)
    momentum_update(moco.key, inner, cfg.moco_momentum)
    with torch.no_grad():
        z_k1 = torch.tanh(moco.key(x_1)[1])  # (B, D)
        z_k2 = torch.tanh(moco.key(x_2)[1])  # (B, D)
    h_1, a_1, _ = model(x_1)  # (B, F), (B, D)
    h_2, a_2, _ = model(x_2)
    logits_1 = _fp32(inner.predictor(h_1.detach()) * inner.scale)  # (B, D): predicts view 2's code
    logits_2 = _fp32(inner.predictor(h_2.detach()) * inner.scale)  # (B, D): predicts view 1's code
    # every query meets the whole global batch's keys (and the queue), as in one process
    a_1, a_2, z_k1, z_k2 = _fp32(a_1), _fp32(a_2), _fp32(gather_rows(z_k1)), _fp32(gather_rows(z_k2))
    b = x_1.shape[0]
    if flips is None:
        flips = draw_flips((2 * b, a_1.shape[1]), cfg.p, device=a_1.device, dtype=a_1.dtype, generator=generator)
    flips = flips.to(a_1.dtype)
    queue = moco.queue.codes
    kw = dict(kappa_mode=cfg.moco_kappa, l2=cfg.moco_l2)
    loss = 0.5 * (moco_nac_loss(a_1, z_k2, logits_2, queue, cfg.p, flips[:b], **kw)
                  + moco_nac_loss(a_2, z_k1, logits_1, queue, cfg.p, flips[b:], **kw))
    return loss, torch.cat([z_k1, z_k2])


def moco_train_step(model, moco: MocoState, optimizer, x_1: torch.Tensor, x_2: torch.Tensor, cfg, *,
                    generator: torch.Generator | None = None, bf16: bool = False,
                    flips: torch.Tensor | None = None) -> torch.Tensor:
    """One MoCo-NAC optimiser step on view pairs (B, C, H, W) each (this rank's share of the global batch
    under torchrun); returns the detached loss."""
    with torch.autocast(x_1.device.type, dtype=torch.bfloat16, enabled=bf16):
        loss, keys = moco_forward(model, moco, x_1, x_2, cfg, generator, flips)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    moco.queue.enqueue(keys)
    return loss.detach()


def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """Every rank's rows (b, D) in rank order, (W·b, D): the global batch's. One process: ``x`` itself.
    No gradient flows (keys are computed without one)."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)
