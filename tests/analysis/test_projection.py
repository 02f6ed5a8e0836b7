"""UMAP projection of codes: stored with its parameters, reused, and trustworthy on digits."""

from __future__ import annotations

import numpy as np
import pytest

from nacscope.analysis import projection
from nacscope.codes.format import CodeSet, pack_bits


def test_trustworthiness_matches_sklearn_on_unpacked_bits(digits_codes):
    from sklearn.manifold import trustworthiness as sk_tw

    bits = digits_codes[0]["fc2"][:300]
    coords = np.random.default_rng(0).normal(size=(300, 2))
    got = projection.trustworthiness(pack_bits(bits), coords, packed=True, n_neighbors=5)
    assert got == pytest.approx(sk_tw(bits.astype(float), coords, n_neighbors=5, metric="hamming"))


@pytest.mark.slow
def test_umap_projection_stored_and_reused(tmp_path, digits_codes, make_codeset, monkeypatch):
    layers, y = digits_codes
    sub = {"fc2": np.concatenate([layers["fc2"][:400], layers["fc2"][:20]])}  # duplicates: unique=True path
    path = make_codeset(tmp_path / "u.h5", sub, np.concatenate([y[:400], y[:20]]))
    with CodeSet(path) as cs:
        coords, info = projection.umap_projection(cs, "fc2", seed=1, n_neighbors=10)
    assert coords.shape == (420, 2) and np.isfinite(coords).all()
    assert info["trustworthiness"] > 0.8 and not info["cached"]
    monkeypatch.setattr(projection, "umap_embed", lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed")))
    with CodeSet(path) as cs:
        again, info2 = projection.umap_projection(cs, "fc2", seed=1, n_neighbors=10)
        np.testing.assert_array_equal(again, coords)
        assert info2["cached"] and info2["trustworthiness"] == pytest.approx(info["trustworthiness"])
        with pytest.raises(AssertionError, match="recomputed"):
            projection.umap_projection(cs, "fc2", seed=2, n_neighbors=10)  # other seed: recomputed
        with pytest.raises(Exception, match="no features"):
            projection.umap_projection(cs, features="")
