"""Shared fixtures: small real code sets built from scikit-learn's digits."""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pytest

from tests.helpers import random_relu_codes

# Keep the suite polite on 2-core machines: one thread per worker.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")


def _thread_counts() -> dict[str, int]:
    """Process-wide thread settings of the libraries already imported (importing none of them)."""
    counts = {}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        counts["torch"] = torch.get_num_threads()
        counts["torch interop"] = torch.get_num_interop_threads()
    if "numba" in sys.modules:
        counts["numba"] = sys.modules["numba"].get_num_threads()
    return counts


def _set_thread_count(name: str, n: int) -> None:
    if name == "torch":
        sys.modules["torch"].set_num_threads(n)
    elif name == "numba":
        sys.modules["numba"].set_num_threads(n)
    # torch's inter-op pool cannot be resized once used: it is only reported.


@pytest.fixture(autouse=True)
def _no_thread_count_leaks(request):
    """Each test starts from the same torch / numba thread counts, whatever the one before it did.

    A test (or library call) that changes a thread count for good would make later tests on the same xdist
    worker depend on the order they run in: the count is put back after every test, and the change is
    reported as a warning naming the test. (pytest itself restores the warnings filters after each test.)
    """
    before = _thread_counts()
    yield
    after = _thread_counts()
    changed = {k: (before[k], after[k]) for k in before if after.get(k) != before[k]}
    for name, (old, _new) in changed.items():
        _set_thread_count(name, old)
    if changed:
        warnings.warn(f"{request.node.nodeid} changed thread counts (before, after): {changed}",
                      pytest.PytestWarning, stacklevel=1)


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
