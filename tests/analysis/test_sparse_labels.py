"""Class ids far larger than the number of samples (2**62, hashed labels) give the metrics of dense ids."""

from __future__ import annotations

import numpy as np

from nacscope.analysis.metrics import dense_class_ids
from nacscope.analysis.probes import knn_code_probe
from nacscope.analysis.retrieval import retrieval_metrics


def test_dense_class_ids_keep_equality_and_order():
    a, b = np.array([2**62, 7, 2**62]), np.array([7, 2**61])
    da, db = dense_class_ids(a, b)
    np.testing.assert_array_equal(da, [2, 0, 2])
    np.testing.assert_array_equal(db, [0, 1])
    small = np.array([0, 2, 1, 1])  # dense ids come back unchanged
    assert dense_class_ids(small)[0] is small


def test_retrieval_and_knn_probe_with_huge_ids_equal_dense_ids():
    rng = np.random.default_rng(3)
    packed = rng.integers(0, 256, (60, 2), dtype=np.uint8)
    y = rng.integers(0, 4, 60)
    huge = np.array([2**62, 5, 2**40, 2**62 - 1])[y]  # the same classes, in the same order of ids
    order = np.argsort(np.array([2**62, 5, 2**40, 2**62 - 1]))
    dense = np.argsort(order)[y]  # the rank of each class id: what dense_class_ids gives
    ref = retrieval_metrics(packed[:10], packed[10:], dense[:10], dense[10:], n_bits=16, R=50, ks=(5,))
    got = retrieval_metrics(packed[:10], packed[10:], huge[:10], huge[10:], n_bits=16, R=50, ks=(5,))
    for key in ("ap", "ap_at_r", "tie_ap", "knn_correct"):
        np.testing.assert_array_equal(getattr(got, key), getattr(ref, key))
    assert knn_code_probe(packed[10:], huge[10:], packed[:10], huge[:10]) == \
        knn_code_probe(packed[10:], dense[10:], packed[:10], dense[:10])
