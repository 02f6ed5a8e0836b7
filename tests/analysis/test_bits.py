"""Bit health against direct numpy computations."""

from __future__ import annotations

import numpy as np
import pytest

from nacscope.analysis.bits import bit_health
from nacscope.codes.format import pack_bits


def entropy_ref(p):
    return sum(-(x * np.log2(x) + (1 - x) * np.log2(1 - x)) for x in p if 0 < x < 1)


@pytest.mark.parametrize("units", [5, 13, 64])
def test_rates_dead_stuck_entropy(units):
    rng = np.random.default_rng(units)
    bits = (rng.random((300, units)) < rng.random(units)).astype(np.uint8)
    bits[:, 0] = 0
    bits[:, 2] = 1
    h = bit_health(pack_bits(bits), units)
    np.testing.assert_allclose(h["rates"], bits.mean(axis=0))
    assert h["dead_bits"] == int((bits.sum(0) == 0).sum()) and 0 in h["dead"]
    assert h["stuck_bits"] == int((bits.sum(0) == 300).sum()) and 2 in h["stuck"]
    assert h["bit_entropy"] == pytest.approx(entropy_ref(bits.mean(0)))
    var = bits[:, h["varying"]].astype(float)
    ref = np.corrcoef(var, rowvar=False)
    np.testing.assert_allclose(h["correlation"], ref, atol=1e-9)
    lam = np.linalg.eigvalsh(ref)
    assert h["effective_bits"] == pytest.approx(lam.sum() ** 2 / (lam**2).sum())


def test_effective_bits_extremes():
    rng = np.random.default_rng(0)
    one = rng.integers(0, 2, (500, 1))
    copies = np.repeat(one, 8, axis=1)
    assert bit_health(pack_bits(copies), 8)["effective_bits"] == pytest.approx(1.0)
    indep = rng.integers(0, 2, (20000, 8))
    assert bit_health(pack_bits(indep), 8)["effective_bits"] == pytest.approx(8, rel=0.01)


def test_digits_codes(digits_codes):
    bits = digits_codes[0]["fc1"]
    h = bit_health(pack_bits(bits), bits.shape[1])
    assert h["dead_bits"] == int((bits.sum(0) == 0).sum())
    assert h["bit_entropy"] == pytest.approx(entropy_ref(bits.mean(0)))
    assert 1 <= h["effective_bits"] <= len(h["varying"])


def test_too_many_bits_skips_correlation():
    bits = np.random.default_rng(0).integers(0, 2, (50, 40))
    h = bit_health(pack_bits(bits), 40, max_correlation_bits=10)
    assert h["correlation"] is None and h["effective_bits"] is None and h["bit_entropy"] > 0
