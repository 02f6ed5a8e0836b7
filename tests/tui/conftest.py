"""Code sets for the TUI tests: scikit-learn's digits through a fixed random ReLU MLP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import random_relu_codes


def digits_layers(widths=(32, 16, 10), seed: int = 3) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Activation patterns of a fixed random ReLU MLP on the digits.

    Returns:
        ({layer: (N, units) bool}, labels (N,), thumbnails (N, 8, 8, 1) uint8 scaled 0..255).
        The last layer is named ``code`` (kind "code"); with 10 bits it has many collisions.
    """
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    codes = random_relu_codes(x, widths, seed)  # {"fc1": ..., "fcK": ...}: the last one is the code layer
    out = {("code" if i == len(codes) - 1 else name): bits for i, (name, bits) in enumerate(codes.items())}
    thumbs = (x.reshape(-1, 8, 8, 1) * 255 / 16).round().astype(np.uint8)
    return out, y.astype(np.int64), thumbs


def write_digits_codeset(path: Path, *, split: bool = True, labels: bool = True, rows: int | None = None) -> Path:
    """Write the digits code set to ``path`` (complete, renamed on close; fixed creation time)."""
    from nacscope.codes import CodeSetWriter, LayerSpec

    layers, y, thumbs = digits_layers()
    n = len(y) if rows is None else rows
    specs = [LayerSpec(name, b.shape[1], kind="code" if name == "code" else "relu") for name, b in layers.items()]
    is_query = np.arange(len(y)) % 10 == 0
    with CodeSetWriter(path, specs, label_kind="class" if labels else None,
                       class_names=[f"digit{i}" for i in range(10)] if labels else None,
                       has_query_mask=split, thumbnail_shape=(8, 8, 1),
                       attrs={"dataset": "digits", "split": "all", "checkpoint": "random-mlp (numpy, seed 3)",
                              "command": "tests/tui/conftest.py", "created": "2026-11-28T00:00:00+00:00"}) as w:
        for s in range(0, n, 600):
            sl = slice(s, min(n, s + 600))
            w.append({k: v[sl] for k, v in layers.items()}, labels=y[sl] if labels else None,
                     is_query=is_query[sl] if split else None, thumbnails=thumbs[sl])
    return path


@pytest.fixture
def digits_file(tmp_path) -> Path:
    """A fresh (uncached) digits code set with labels, a query split and thumbnails."""
    return write_digits_codeset(tmp_path / "digits.h5")


@pytest.fixture
def digits_loo_file(tmp_path) -> Path:
    """The digits code set without a query split (retrieval is leave-one-out)."""
    return write_digits_codeset(tmp_path / "digits_loo.h5", split=False)
