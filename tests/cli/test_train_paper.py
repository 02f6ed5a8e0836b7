"""`nacscope train --preset paper-cifar10-hash` on a fabricated CIFAR-10 folder: its first steps are the authors'."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from tests import helpers


def write_cifar10(root, n_per_batch: int, n_test: int, seed: int = 0):
    """``cifar-10-batches-py`` as the CIFAR authors pickled it: dicts with batch_label, labels, data, filenames."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, n in [(f"data_batch_{i}", n_per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        batch = {
            b"batch_label": f"{name} of 5".encode(),
            b"labels": [int(v) for v in rng.integers(0, 10, n)],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),  # rows: 1024 R, 1024 G, 1024 B
            b"filenames": [f"img_{name}_{i}.png".encode() for i in range(n)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"num_cases_per_batch": n_per_batch, b"label_names": [f"c{i}".encode() for i in range(10)],
                     b"num_vis": 3072}, f, protocol=2)


def reference_loss(a1, a2, l1, l2, p, u):
    """NAC-NOTES §2.3, vectorised over views; flips where u < p."""
    kappa = 0.5 * math.log((1 - p) / p)
    z = torch.tanh(torch.cat([a1, a2]))
    y = torch.where(u < p, -1.0, 1.0) * z
    logits = torch.cat([l2, l1])
    ll = (0.5 * y * logits - torch.log(2 * torch.cosh(0.5 * logits)) + math.log(2)).sum(1)
    return (torch.logsumexp(kappa * y @ z.T, 1) - ll).mean()


def authors_lars(params, grads, bufs, lr, wd=1e-6, mu=0.9, eta=0.001):
    with torch.no_grad():
        for w, g, v in zip(params, grads, bufs):
            d = g + wd * w
            wn, dn = float(w.norm()), float(d.norm())
            trust = eta * wn / dn if wn > 0 and dn > 0 else 0.0
            v.mul_(mu).add_(lr * trust * d)
            w.sub_(v)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*MD5.*")
def test_paper_hash_preset_first_steps_match_reference(tmp_path):
    from nacscope.data import Augment, load_dataset
    from nacscope.data.augment import RECIPES
    from nacscope.nets import build_model

    write_cifar10(tmp_path / "R", n_per_batch=26, n_test=10)  # 130 training images: 2 steps of 64
    run = tmp_path / "run"
    r = helpers.invoke("train", "--preset", "paper-cifar10-hash", "--dataset", "cifar10", "--root", tmp_path / "R",
                       "--epochs", "1", "--batch-size", "64", "--device", "cpu", "--quiet", "--no-baseline", "--out", run)
    assert r.exit_code == 0, r.output
    ck = torch.load(run / "last.pt", weights_only=True)
    assert ck["step"] == 2 and ck["config"]["optimizer"] == "lars-paper" and ck["config"]["forward"] == "per-view"

    # the reference: the same seeds, two separate forwards, the authors' rule; lr 0 at step 0, then 3.0 / 200
    data = load_dataset("cifar10", "train", root=tmp_path / "R")
    torch.manual_seed(0)
    ref = build_model("vgg16_bn", 64, in_channels=3, image_size=32).train()
    g_shuffle = torch.Generator().manual_seed(0)
    g_aug = torch.Generator().manual_seed(0)
    perm = torch.randperm(130, generator=g_shuffle)
    augment = Augment(RECIPES["cifar"], data.mean, data.std)
    params = list(ref.parameters())
    bufs = [torch.zeros_like(p) for p in params]
    for step in range(2):
        batch = data.images[perm[step * 64 : (step + 1) * 64]]
        views = augment(torch.cat([batch, batch]), g_aug)
        _, a1, l1 = ref(views[:64])
        _, a2, l2 = ref(views[64:])
        u = torch.rand((128, 64), generator=g_aug)
        loss = reference_loss(a1, a2, l1, l2, 0.4, u)
        authors_lars(params, torch.autograd.grad(loss, params), bufs, lr=3.0 * step / (100 * 2))
    got = ck["model"]
    for name, want in ref.state_dict().items():
        torch.testing.assert_close(got[name], want, rtol=1e-4, atol=1e-6, msg=name)
    state = ck["optimizer"]["state"]
    for i, b in enumerate(bufs):
        torch.testing.assert_close(state[i]["momentum_buffer"], b, rtol=1e-4, atol=1e-9)
    zero = [n for n, p in build_model("vgg16_bn", 64, in_channels=3, image_size=32).named_parameters()
            if n.endswith("bias") and not p.any()]
    assert zero and all(not got[n].any() for n in zero)  # zero-initialised biases never move
