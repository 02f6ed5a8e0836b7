"""examples/third_party_codes.py runs end to end, and its table agrees with independent counts."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.mark.slow
def test_third_party_codes(tmp_path, example, capsys):
    ex = example("third_party_codes")
    table = ex.main(["--out", str(tmp_path), "--bits", "16"])
    assert set(table) == {"lsh", "pca", "itq"}
    assert json.loads((tmp_path / "comparison.json").read_text()) == table
    y = np.load(tmp_path / "labels.npy")
    q = np.load(tmp_path / "is_query.npy")
    assert q.sum() == 100 and all(q[y == c].sum() == 10 for c in range(10))
    for name, row in table.items():
        codes = np.load(tmp_path / f"{name}.npy") > 0
        assert codes.shape == (1797, 16)
        # Independent references: distinct rows by Python tuples; collided samples = rows whose code repeats.
        tuples = list(map(tuple, codes))
        counts = {t: tuples.count(t) for t in set(tuples)}
        assert row["distinct_patterns"] == len(counts)
        assert row["samples_in_collisions"] == sum(c for c in counts.values() if c > 1)
        assert 0.0 < row["map"] <= 1.0 and 0.0 < row["knn_accuracy"] <= 1.0
    assert (tmp_path / "itq.faiss").exists()
    assert "agrees with nacscope's Hamming ranking" in capsys.readouterr().out
