"""The paper's linear evaluation: crop+flip, and the SGD probe against a float64 numpy reference."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from nacscope.analysis.linear_eval import LinearEvalConfig, crop_flip, linear_eval
from nacscope.data import load_dataset
from nacscope.nets import load_checkpoint

MODEL = Path(__file__).resolve().parents[2] / "models" / "digits-nac"


def test_crop_flip_equals_slicing_each_sample():
    x = torch.randint(0, 256, (9, 3, 6, 5), dtype=torch.uint8)
    pad = 2
    got = crop_flip(x, torch.Generator().manual_seed(7), pad)
    g = torch.Generator().manual_seed(7)  # the same draws, in the documented order: rows, columns, flips
    oy, ox = torch.randint(0, 2 * pad + 1, (9,), generator=g), torch.randint(0, 2 * pad + 1, (9,), generator=g)
    flip = torch.rand(9, generator=g) < 0.5
    padded = np.zeros((9, 3, 6 + 2 * pad, 5 + 2 * pad), dtype=np.uint8)
    padded[:, :, pad:-pad, pad:-pad] = x.numpy()
    for i in range(9):
        crop = padded[i, :, oy[i] : oy[i] + 6, ox[i] : ox[i] + 5]
        want = crop[:, :, ::-1] if flip[i] else crop
        assert np.array_equal(got[i].numpy(), want), i


def _numpy_probe(h: np.ndarray, y: np.ndarray, w0: np.ndarray, b0: np.ndarray, cfg: LinearEvalConfig,
                 perms: list[np.ndarray], n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Softmax regression by SGD with Nesterov momentum (torch's form), cosine lr per step, float64."""
    w, b = w0.astype(np.float64), b0.astype(np.float64)
    vw, vb = np.zeros_like(w), np.zeros_like(b)
    steps = cfg.epochs * math.ceil(len(h) / cfg.batch_size)
    step = 0
    for perm in perms:
        for s in range(0, len(h), cfg.batch_size):
            idx = perm[s : s + cfg.batch_size]
            logits = h[idx] @ w.T + b  # (B, C)
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(idx)), y[idx]] -= 1.0  # d(mean cross-entropy)/d(logits) * B
            gw, gb = p.T @ h[idx] / len(idx), p.mean(axis=0)
            lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / steps))
            for param, grad, buf in ((w, gw, vw), (b, gb, vb)):
                buf *= cfg.momentum
                buf += grad if step else grad - buf  # torch: the first step's buffer is the gradient itself
                param -= lr * (grad + cfg.momentum * buf)
            step += 1
    return w, b


def test_paper_probe_matches_a_numpy_reference():
    model, _ = load_checkpoint(MODEL)
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    cfg = LinearEvalConfig(epochs=3, batch_size=256, lr=0.05, augment=False, seed=4)
    res = linear_eval(model, train, test, protocol="paper", config=cfg)
    with torch.no_grad():  # raw features h, computed here by a plain forward
        h = model(train.normalize(train.images))[0].double().numpy()
        h_test = model(test.normalize(test.images))[0].double().numpy()
    torch.manual_seed(cfg.seed)
    init = torch.nn.Linear(h.shape[1], 10)  # torch's default init, the classifier's starting point
    g = torch.Generator().manual_seed(cfg.seed)
    perms = [torch.randperm(len(h), generator=g).numpy() for _ in range(cfg.epochs)]
    w, b = _numpy_probe(h, train.labels.numpy(), init.weight.detach().numpy(), init.bias.detach().numpy(), cfg,
                        perms, 10)
    assert np.allclose(res.head["weight"], w, atol=1e-4) and np.allclose(res.head["bias"], b, atol=1e-4)
    top1 = float(np.mean((h_test @ w.T + b).argmax(axis=1) == test.labels.numpy()))
    assert res.top1 == pytest.approx(top1, abs=1.5 / len(test))  # at most one borderline test image apart
    assert res.n_train == len(train) and res.n_test == len(test) and res.settings["features"] == "raw h"


def test_probe_command_writes_its_result_beside_nothing_else(tmp_path):
    from typer.testing import CliRunner

    from nacscope.cli import app

    out = tmp_path / "probe.json"
    r = CliRunner().invoke(app, ["probe", str(MODEL), "--dataset", "digits", "--epochs", "2", "--batch-size", "500",
                                 "--lr", "0.1", "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    rec = json.loads(out.read_text())
    assert rec["protocol"] == "paper" and 0.5 < rec["top1"] <= 1.0 and rec["dataset"] == "digits"
    assert rec["settings"]["augment"] is True and rec["settings"]["epochs"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["probe.json"]  # no temporary left behind
    bad = CliRunner().invoke(app, ["probe", str(MODEL), "--dataset", "digits", "--protocol", "slow", "-o",
                                   str(tmp_path / "x.json")])
    assert bad.exit_code == 2 and "protocol must be one of paper, fast" in bad.output
    again = CliRunner().invoke(app, ["probe", str(MODEL), "--dataset", "digits", "-o", str(out)])
    assert again.exit_code == 2 and "exists" in again.output
