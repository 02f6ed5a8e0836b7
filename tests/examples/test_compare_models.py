"""examples/compare_models.py on digits: its table agrees with the code sets, the zoo's cards and a
dense-sampling lower bound of the segment region counts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

MODELS = Path(__file__).resolve().parents[2] / "models"


@pytest.mark.slow
def test_compare_models_digits(tmp_path, example):
    from nacscope.analysis.segments import count_regions_dense, sample_pairs
    from nacscope.codes import CodeSet
    from nacscope.data import load_dataset

    ex = example("compare_models")
    results = ex.main(["--out", str(tmp_path), "--datasets", "digits", "--pairs", "1"])
    assert json.loads((tmp_path / "comparison.json").read_text()) == results
    for name in ("comparison.md", "regions.png", "retrieval.png"):
        assert (tmp_path / name).is_file()
    data = load_dataset("digits", "test")
    for model, r in results["digits"].items():
        with CodeSet(tmp_path / f"digits-{model}.h5") as cs:
            assert r["layers"]["code"] == len(set(map(tuple, cs.bits("code").tolist())))
            joint = np.concatenate([cs.packed(l) for l in cs.layer_names], axis=1)
            assert r["network_regions"] == len({row.tobytes() for row in joint})
            norm = cs.attrs["config"]["normalization"]
        # The same model, split and metric as its model card: the card's mAP must match.
        card = (MODELS / f"digits-{model}" / "README.md").read_text()
        assert abs(float(re.search(r"\| mAP \(Hamming\) \| ([0-9.]+) \|", card).group(1)) - r["map"]) < 0.01
        # Exact counts can only be >= a dense-sampling count on the same segment.
        x = (data.images.float() / 255.0 - norm["mean"][0]) / norm["std"][0]
        p = sample_pairs(len(x), 1, seed=0)
        dense = count_regions_dense(ex.load_model("digits", model), x[p[:, 0]], x[p[:, 1]], n=400)
        assert r["segment_regions"][0] >= dense[0] > 1
