"""MoCo-NAC training (``--objective nac-moco``): one step against a float64 reference, bit-exact resume."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from nacscope.errors import OptionError
from nacscope.nets import build_model
from nacscope.training import TrainConfig, apply_preset, train, validate
from nacscope.training.moco_step import MocoState, moco_train_step


def _ref_step_loss(key, query, x_1, x_2, queue, flips, p, m, l2, mode):
    """The §2.6 loss written from the maths, python floats: returns (loss, keys as lists, expected key params)."""
    key = copy.deepcopy(key)
    with torch.no_grad():
        for pk, pq in zip(key.parameters(), query.parameters()):
            pk.copy_(m * pk + (1 - m) * pq)  # θ_k ← m θ_k + (1−m) θ_q
        for bk, bq in zip(key.buffers(), query.buffers()):
            bk.copy_(bq)
        scale = 1 / math.sqrt(query.bits)
        zk = [[[math.tanh(float(v)) for v in row] for row in key.head(key.encoder(x)) * scale] for x in (x_1, x_2)]
        h = [query.encoder(x) for x in (x_1, x_2)]
        a = [query.head(hh) * scale for hh in h]
        lg = [query.predictor(hh) * scale for hh in h]
    kappa = 0.5 * math.log((1 - p) / p)
    s = 1 / kappa if mode == "divide" else kappa
    b, d = x_1.shape[0], query.bits
    qrows = [[float(v) for v in row] for row in queue]
    halves = []
    for v, partner in ((0, 1), (1, 0)):  # query view v, positive key and logits from the partner view
        total = 0.0
        for i in range(b):
            z = [math.tanh(float(a[v][i, j])) for j in range(d)]
            y = [float(flips[v * b + i, j]) * z[j] for j in range(d)]
            l = [float(lg[partner][i, j]) for j in range(d)]
            ll = sum(0.5 * y[j] * l[j] - math.log(2 * math.cosh(0.5 * l[j])) + math.log(2) for j in range(d))
            dots = [s * sum(y[j] * k[j] for j in range(d)) for k in zk[partner] + qrows]
            mx = max(dots)
            lse = mx + math.log(sum(math.exp(t - mx) for t in dots))
            total += lse - ll + l2 * sum(t * t for t in z)
        halves.append(total / b)
    return 0.5 * (halves[0] + halves[1]), zk[0] + zk[1], [pk.clone() for pk in key.parameters()]


@pytest.mark.parametrize("mode", ["divide", "multiply"])
def test_one_step_loss_queue_and_momentum_match_float64_reference(mode):
    torch.manual_seed(0)
    model = build_model("mlp", 6, in_channels=1, image_size=4, hidden=(10,)).double()
    cfg = TrainConfig(objective="nac-moco", bits=6, p=0.2, moco_queue=11, moco_momentum=0.7, moco_l2=0.05,
                      moco_kappa=mode)
    moco = MocoState(model, 11, 6)
    with torch.no_grad():  # a key encoder that differs from the query, a filled queue, pointer near the end
        for pk in moco.key.parameters():
            pk.add_(0.1 * torch.randn_like(pk))
    moco.queue.codes = torch.tanh(torch.randn(11, 6, dtype=torch.float64))
    moco.queue.ptr = 9
    x_1, x_2 = torch.randn(4, 1, 4, 4, dtype=torch.float64), torch.randn(4, 1, 4, 4, dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    flips = torch.where(torch.rand((8, 6), generator=g.clone_state()) < 0.2, -1.0, 1.0)  # what the step will draw
    queue_before = moco.queue.codes.clone()
    ref_loss, ref_keys, ref_key_params = _ref_step_loss(moco.key, model, x_1, x_2, queue_before, flips, 0.2, 0.7,
                                                        0.05, mode)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    loss = moco_train_step(model, moco, opt, x_1, x_2, cfg, generator=g)
    assert abs(float(loss) - ref_loss) < 1e-10
    for got, want in zip(moco.key.parameters(), ref_key_params):
        assert torch.allclose(got, want, atol=1e-14, rtol=0)
    # 8 keys written at slots 9, 10, 0..5 (wrap-around); slots 6..8 keep their old codes; pointer 9+8 mod 11 = 6
    want = queue_before.clone()
    for n, slot in enumerate([9, 10, 0, 1, 2, 3, 4, 5]):
        want[slot] = torch.tensor(ref_keys[n], dtype=torch.float64)
    assert torch.allclose(moco.queue.codes, want, atol=1e-14, rtol=0) and moco.queue.ptr == 6


def test_inference_head_reads_detached_features():
    """The encoder's gradient equals the gradient of the loss with the logits held constant: the inference
    head's term reaches the encoder only through the query code y, never through the head's input."""
    torch.manual_seed(1)
    model = build_model("mlp", 5, in_channels=1, image_size=4, hidden=(8,)).double()
    cfg = TrainConfig(objective="nac-moco", bits=5, p=0.1, moco_queue=8, moco_momentum=1.0, moco_kappa="multiply")
    moco = MocoState(model, 8, 5)
    x_1, x_2 = torch.randn(3, 1, 4, 4, dtype=torch.float64), torch.randn(3, 1, 4, 4, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    flips = torch.where(torch.rand((6, 5), generator=g.clone_state()) < 0.1, -1.0, 1.0).double()
    ref = copy.deepcopy(model)
    kappa, sc = 0.5 * math.log(9.0), 1 / math.sqrt(5)
    with torch.no_grad():
        zk = [torch.tanh(ref.head(ref.encoder(x)) * sc) for x in (x_1, x_2)]
        lg = [ref.predictor(ref.encoder(x)) * sc for x in (x_1, x_2)]  # constants
    total = 0.0
    for v, partner in ((0, 1), (1, 0)):
        y = flips[3 * v: 3 * v + 3] * torch.tanh(ref.head(ref.encoder((x_1, x_2)[v])) * sc)
        l = lg[partner]
        ll = (0.5 * y * l - torch.log(2 * torch.cosh(0.5 * l)) + math.log(2)).sum(1)
        lse = torch.logsumexp(kappa * y @ torch.cat([zk[partner], torch.zeros(8, 5, dtype=torch.float64)]).T, 1)
        total = total + 0.5 * (lse - ll).mean()
    total.backward()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    moco_train_step(model, moco, opt, x_1, x_2, cfg, generator=g)
    for (name, p), pr in zip(model.encoder.named_parameters(), ref.encoder.parameters()):
        assert torch.allclose(p.grad, pr.grad, atol=1e-12, rtol=0), name
    assert model.predictor[0].weight.grad.abs().sum() > 0


def _state(path):
    return torch.load(path, weights_only=True)


@pytest.mark.slow
def test_moco_resume_is_bit_exact(tmp_path):
    cfg = dict(dataset="digits", arch="mlp", hidden=[64], bits=8, epochs=2, batch_size=128, log_every=4,
               device="cpu", seed=3, objective="nac-moco", moco_queue=512, moco_momentum=0.9, moco_l2=0.01)
    train(TrainConfig(**cfg), tmp_path / "a", progress=False)
    first = train(TrainConfig(**cfg, stop_after_epochs=1), tmp_path / "b", progress=False)
    assert first.stopped_early and first.epochs_done == 1
    mid = _state(tmp_path / "b" / "last.pt")["extra"]["moco"]
    assert mid["ptr"] == (11 * 256) % 512 and mid["queue"].abs().sum() > 0
    train(TrainConfig(**cfg), tmp_path / "b", resume=True, progress=False)
    a, b = _state(tmp_path / "a" / "last.pt"), _state(tmp_path / "b" / "last.pt")
    assert a["step"] == b["step"] == 22
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    ma, mb = a["extra"]["moco"], b["extra"]["moco"]
    assert ma["ptr"] == mb["ptr"] == (22 * 256) % 512 and torch.equal(ma["queue"], mb["queue"])
    for k, v in ma["key"].items():
        assert torch.equal(v, mb["key"][k]), k
    assert not torch.equal(ma["key"]["head.2.weight"], a["model"]["head.2.weight"])  # the key lags the query


def test_moco_options_are_validated_and_preset_exists():
    with pytest.raises(OptionError, match="moco_queue must be >= 2 x the batch size") as info:
        validate(TrainConfig(objective="nac-moco", batch_size=128, moco_queue=100))
    assert info.value.for_cli().startswith("--moco-queue must be")  # the library's name, the CLI's flag
    with pytest.raises(OptionError, match="moco_kappa"):
        validate(TrainConfig(objective="nac-moco", moco_kappa="times"))
    cfg = apply_preset("paper-imagenet", {"bits": 64})
    assert (cfg.objective, cfg.arch, cfg.bits, cfg.moco_kappa, cfg.forward) == ("nac-moco", "resnet50", 64, "divide", "per-view")
