"""examples/quickstart.py runs its five commands end to end; its outputs agree with each other."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.slow
def test_quickstart(tmp_path, example, capsys):
    from nacscope.codes import CodeSet

    analysis = example("quickstart").main(["--out", str(tmp_path), "--epochs", "1", "--no-umap"])
    for name in ("run/last.pt", "codes.h5", "analysis.json", "codes.npz", "report/summary.md", "report/regions.png"):
        assert (tmp_path / name).is_file(), name
    with CodeSet(tmp_path / "codes.h5") as cs, np.load(tmp_path / "codes.npz") as z:
        bits = cs.bits("code")
        assert cs.n_samples == 360 and cs.attrs["split"] == "test"
        np.testing.assert_array_equal(z["codes"], bits)
        np.testing.assert_array_equal(z["labels"], cs.labels())
        assert analysis["layers"]["code"]["distinct_patterns"] == len(set(map(tuple, bits.tolist())))
    assert "next: nacscope inspect" in capsys.readouterr().out
