"""Shared fixtures: small real code sets built from scikit-learn's digits."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.helpers import random_relu_codes

# Keep the suite polite on 2-core machines: one thread per worker.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits: (1797, 64) floats in [0, 16] and (1797,) labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data.astype(np.float32), d.target.astype(np.int64)


@pytest.fixture(scope="session")
def digits_codeset(tmp_path_factory, digits):
    """A complete code set of digits through a random ReLU MLP, with labels, a split and thumbnails."""
    from nacscope.codes import CodeSetWriter, LayerSpec

    x, y = digits
    codes = random_relu_codes(x)
    path = tmp_path_factory.mktemp("codesets") / "digits.h5"
    specs = [LayerSpec(name, b.shape[1], kind="relu") for name, b in codes.items()]
    is_query = np.zeros(len(y), bool)
    is_query[::10] = True
    thumbs = (x.reshape(-1, 8, 8, 1) * 255 / 16).astype(np.uint8)
    with CodeSetWriter(path, specs, label_kind="class", class_names=[str(i) for i in range(10)],
                       has_query_mask=True, thumbnail_shape=(8, 8, 1), features={"h": 64},
                       attrs={"dataset": "digits", "split": "all"}) as w:
        for s in range(0, len(y), 500):
            sl = slice(s, s + 500)
            w.append({k: v[sl] for k, v in codes.items()}, labels=y[sl], is_query=is_query[sl],
                     thumbnails=thumbs[sl], features={"h": x[sl]})
    return path
