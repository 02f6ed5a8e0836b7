"""Probes: k-NN on codes against brute force; linear probes learn digits; the split is sound."""

from __future__ import annotations

import numpy as np
import pytest

from nacscope.analysis import probes
from nacscope.codes.format import CodeSet, pack_bits


def test_train_test_rows_stratified_and_disjoint():
    y = np.repeat(np.arange(5), 20)
    tr, te = probes.train_test_rows(y, None)
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == 100
    assert np.all(np.bincount(y[te]) == 4)
    mask = np.zeros(100, bool)
    mask[:7] = True
    tr, te = probes.train_test_rows(y, mask)
    assert te.tolist() == list(range(7)) and len(tr) == 93


@pytest.mark.slow
def test_knn_code_probe_against_brute_force(digits_codes):
    layers, y = digits_codes
    bits = layers["fc2"]
    tr, te = np.arange(0, 1500), np.arange(1500, 1600)
    got = probes.knn_code_probe(pack_bits(bits[tr]), y[tr], pack_bits(bits[te]), y[te], k=5)
    correct = 0
    for i in te:
        d = (bits[tr] != bits[i]).sum(1)
        nn = sorted(range(len(tr)), key=lambda j: (d[j], j))[:5]
        votes = np.bincount(y[tr][nn], minlength=10)
        correct += int(np.flatnonzero(votes == votes.max())[0] == y[i])
    assert got == pytest.approx(correct / len(te))


@pytest.mark.parametrize("protocol", ["fast", pytest.param("paper", marks=pytest.mark.slow)])
def test_linear_probe_learns_digits(protocol):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    tr, te = probes.train_test_rows(y, None)
    acc = probes.linear_probe(x[tr], y[tr], x[te], y[te], protocol=protocol, epochs=10, batch=200, lr=0.1)
    assert acc > 0.9  # digits are nearly linearly separable; chance is 0.1


def test_logistic_code_probe_beats_chance(digits_codes):
    layers, y = digits_codes
    tr, te = probes.train_test_rows(y, None)
    acc = probes.logistic_code_probe(layers["fc1"][tr], y[tr], layers["fc1"][te], y[te])
    assert 0.5 < acc <= 1.0


def test_analyze_probes_on_file(tmp_path, digits_codes, make_codeset):
    from sklearn.datasets import load_digits

    layers, y = digits_codes
    x = load_digits().data.astype(np.float32)
    path = make_codeset(tmp_path / "p.h5", layers, y, features=x)
    with CodeSet(path) as cs:
        res = probes.analyze_probes(cs, "fc2")
        assert res == probes.analyze_probes(cs, "fc2")  # cached
    assert res["linear_features"] > 0.9 and res["features"] == "h"
    assert res["train"] + res["test"] == len(y)
    with pytest.raises(Exception, match="protocol"):
        probes.linear_probe(x, y, x, y, protocol="nope")
