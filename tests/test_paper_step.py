"""The paper presets' step against a slow reference written from NAC-NOTES §2-§3 (float64).

Reference: the two views go through the network in two separate calls (train-mode BatchNorm on each view's
batch), the NAC loss is written out from §2.3, and the authors' LARS rule of §3 is applied element by element
with Python floats: d = g + wd·w, trust = η‖w‖/‖d‖ (0 when ‖w‖ = 0), v = μv + lr·trust·d, w = w − v.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torchvision
from torch import nn

from nacscope.nets.model import NACModel, build_model
from nacscope.training import apply_preset, lr_at, make_optimizer, train_step


def tiny_resnet() -> NACModel:
    enc = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
                        torchvision.models.resnet.BasicBlock(6, 6), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return NACModel(enc, 6, bits=8, arch="tiny-resnet")


def tiny_vgg() -> NACModel:
    return build_model("convnet", 8, in_channels=3, image_size=8, widths=(4, 6))


def reference_nac_loss(a1, a2, l1, l2, p, u):
    """L_i of NAC-NOTES §2.3 for the 2B views, mean; ``u`` the uniforms deciding the flips (flip where u < p)."""
    kappa = 0.5 * math.log((1 - p) / p)
    z = torch.tanh(torch.cat([a1, a2]))  # (2B, D)
    m = torch.where(u < p, -1.0, 1.0).to(z.dtype)
    y = m * z
    logits = torch.cat([l2, l1])  # row i: the partner view's prediction
    total = 0.0
    for i in range(z.shape[0]):
        ll = sum(0.5 * y[i, d] * logits[i, d] - torch.log(2 * torch.cosh(0.5 * logits[i, d])) + math.log(2)
                 for d in range(z.shape[1]))
        lse = torch.logsumexp(torch.stack([kappa * (y[i] * z[k]).sum() for k in range(z.shape[0])]), 0)
        total = total + (lse - ll)
    return total / z.shape[0]


def reference_step(model, x1, x2, cfg, u, lr, bufs):
    """One step of the authors' rule on a copy of ``model``; returns (model, momentum buffers)."""
    _, a1, l1 = model(x1)  # view 1 alone: its own BatchNorm statistics
    _, a2, l2 = model(x2)
    loss = reference_nac_loss(a1, a2, l1, l2, cfg.p, u)
    params = list(model.parameters())
    grads = torch.autograd.grad(loss, params)
    new_bufs = []
    with torch.no_grad():
        for w, g, v in zip(params, grads, bufs):
            wf, gf, vf = w.flatten().tolist(), g.flatten().tolist(), v.flatten().tolist()
            d = [gi + cfg.weight_decay * wi for gi, wi in zip(gf, wf)]
            w_norm = math.sqrt(sum(wi * wi for wi in wf))
            d_norm = math.sqrt(sum(di * di for di in d))
            trust = 0.001 * w_norm / d_norm if w_norm > 0 and d_norm > 0 else 0.0
            vf = [cfg.momentum * vi + lr * trust * di for vi, di in zip(vf, d)]
            w.copy_(torch.tensor([wi - vi for wi, vi in zip(wf, vf)], dtype=w.dtype).view_as(w))
            new_bufs.append(torch.tensor(vf, dtype=w.dtype).view_as(w))
    return model, new_bufs


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["paper-cifar10-linear", "paper-cifar10-hash"])
@pytest.mark.parametrize("make", [tiny_resnet, tiny_vgg])
def test_preset_step_equals_reference(preset, make):
    torch.manual_seed(0)
    model = make().double().train()
    cfg = apply_preset(preset, {"bits": 8, "epochs": 2})
    assert (cfg.forward, cfg.optimizer, cfg.bf16) == ("per-view", "lars-paper", False)
    with torch.no_grad():  # non-zero weights everywhere except the zero-initialised biases
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
    ref = copy.deepcopy(model)
    opt = make_optimizer(model, cfg, torch.device("cpu"))
    spe = 4  # steps per epoch: the warm-up gives lr 0 at step 0, so take steps 0..2
    bufs = [torch.zeros_like(p) for p in ref.parameters()]
    g = torch.Generator().manual_seed(5)
    zero_biases = [n for n, p in model.named_parameters() if n.endswith("bias") and not p.any()]
    assert zero_biases  # BatchNorm biases start at 0
    for step in range(3):
        x1, x2 = torch.randn(2, 6, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(step))
        lr = lr_at(step, cfg, spe)
        assert (lr == 0.0) == (step == 0)
        for group in opt.param_groups:
            group["lr"] = lr
        state = g.get_state()
        u = torch.rand((12, 8), generator=torch.Generator().manual_seed(0).set_state(state))
        train_step(model, opt, x1, x2, cfg, generator=g)
        ref, bufs = reference_step(ref, x1, x2, cfg, u, lr, bufs)
        for (name, p), q in zip(model.named_parameters(), ref.parameters()):
            torch.testing.assert_close(p, q, rtol=0, atol=1e-10, msg=name)
        for p, b in zip(model.parameters(), bufs):
            torch.testing.assert_close(opt.state[p]["momentum_buffer"], b, rtol=0, atol=1e-10)
        for (n1, b1), (_, b2) in zip(model.named_buffers(), ref.named_buffers()):
            torch.testing.assert_close(b1, b2, rtol=0, atol=1e-10, msg=n1)  # BatchNorm running statistics
    moved = dict(model.named_parameters())
    assert all(not moved[n].any() for n in zero_biases)  # the authors' quirk: zero-norm parameters never move
    assert moved["head.0.bias"].ne(ref.head[0].bias).sum() == 0


def test_joint_forward_is_not_the_per_view_step():
    torch.manual_seed(0)
    model = tiny_vgg().double().train()
    x1, x2 = torch.randn(2, 6, 3, 8, 8, dtype=torch.float64)
    from nacscope.training import forward_views

    a_sep = forward_views(copy.deepcopy(model), x1, x2, "per-view")[0]
    a_joint = forward_views(copy.deepcopy(model), x1, x2, "joint")[0]
    assert (a_sep - a_joint).abs().max() > 1e-3  # BatchNorm over 2B mixed views differs
