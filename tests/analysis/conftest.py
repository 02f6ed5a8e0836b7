"""Shared inputs for the analysis tests: random codes and real codes of the digits data set."""

from __future__ import annotations

import numpy as np
import pytest

from nacscope.codes.format import CodeSetWriter, LayerSpec
from tests.helpers import random_relu_codes


def digits_relu_codes(widths=(64, 32), seed: int = 0):
    """Digits (1797 x 64) through a fixed random ReLU MLP: {layer: (N, units) 0/1 bits}, labels."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    codes = random_relu_codes(x, widths, seed)
    return {name: bits.astype(np.uint8) for name, bits in codes.items()}, y.astype(np.int64)


@pytest.fixture(scope="session")
def digits_codes():
    return digits_relu_codes()


@pytest.fixture(scope="session")
def make_codeset():
    """A function that writes a code set from unpacked bits (see :func:`write_codeset`)."""
    return write_codeset


def write_codeset(path, layers: dict, labels=None, *, is_query=None, multihot=False, features=None):
    """Build a code set from unpacked bits {name: (N, units)}."""
    specs = [LayerSpec(n, b.shape[1], kind="relu") for n, b in layers.items()]
    label_kind = None if labels is None else ("multihot" if multihot else "class")
    with CodeSetWriter(
        path, specs, label_kind=label_kind, n_label_columns=(labels.shape[1] if multihot else None),
        has_query_mask=is_query is not None, features=({"h": features.shape[1]} if features is not None else None),
    ) as w:
        kw = {}
        if labels is not None:
            kw["labels"] = labels
        if is_query is not None:
            kw["is_query"] = is_query
        if features is not None:
            kw["features"] = {"h": features}
        if len(next(iter(layers.values()))):
            w.append(layers, **kw)
    return path
