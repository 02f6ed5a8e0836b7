"""analyze_codeset: values equal the direct computations, caching, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from nacscope.analysis import engine
from nacscope.analysis.engine import analyze_codeset, compare_codesets
from nacscope.codes.format import CodeSet, pack_bits
from nacscope.errors import CodeSetError
from tests.helpers import reference_map

REQUIRED_LAYER_KEYS = {"n_samples", "n_bits", "distinct_patterns", "collision_groups", "samples_in_collisions",
                       "largest_group", "mixed_label_groups", "dead_bits", "stuck_bits", "bit_entropy"}
REQUIRED_RETRIEVAL_KEYS = {"map", "map_at_1000", "tie_aware_map", "precision_at_100", "precision_radius_2",
                           "knn_accuracy"}


@pytest.fixture()
def digits_file(tmp_path, digits_codes, make_codeset):
    layers, y = digits_codes
    return make_codeset(tmp_path / "digits.h5", layers, y)


@pytest.mark.slow
def test_analyze_matches_direct_computation(digits_file, digits_codes):
    layers, y = digits_codes
    with CodeSet(digits_file) as cs:
        res = analyze_codeset(cs)
    for name, bits in layers.items():
        L = res["layers"][name]
        assert REQUIRED_LAYER_KEYS <= set(L)
        assert L["distinct_patterns"] == len(set(map(tuple, bits)))
        groups = {}
        for i, row in enumerate(map(tuple, bits)):
            groups.setdefault(row, []).append(i)
        multi = [g for g in groups.values() if len(g) > 1]
        assert L["collision_groups"] == len(multi)
        assert L["samples_in_collisions"] == sum(map(len, multi))
        assert L["mixed_label_groups"] == sum(len(set(y[g])) > 1 for g in multi)
        assert L["dead_bits"] == int((bits.sum(0) == 0).sum())
        R = res["retrieval"][name]
        assert REQUIRED_RETRIEVAL_KEYS <= set(R)
        assert R["split"] == "leave-one-out" and R["n_queries"] == len(y)
    joint = np.concatenate([layers["fc1"], layers["fc2"]], axis=1)
    assert res["cumulative"]["fc2"]["distinct_patterns"] == len(set(map(tuple, joint)))


def test_leave_one_out_map_equals_the_definition(digits_file, digits_codes):
    layers, y = digits_codes
    b = layers["fc2"]
    with CodeSet(digits_file) as cs:
        res = analyze_codeset(cs, ["fc2"])
    assert res["retrieval"]["fc2"]["map"] == pytest.approx(reference_map(b, b, y, y, exclude_self=True), abs=1e-12)
    assert res["retrieval"]["fc2"]["map_at_1000"] == pytest.approx(
        reference_map(b, b, y, y, R=1000, exclude_self=True), abs=1e-12)


def test_query_split(tmp_path, digits_codes, make_codeset):
    layers, y = digits_codes
    q = np.zeros(len(y), dtype=bool)
    q[::10] = True
    path = make_codeset(tmp_path / "q.h5", layers, y, is_query=q)
    with CodeSet(path) as cs:
        res = analyze_codeset(cs, ["fc1"], rank="dot")
    b = layers["fc1"]
    R = res["retrieval"]["fc1"]
    assert R["split"] == "query" and R["n_queries"] == q.sum() and R["rank"] == "dot"
    assert R["map"] == pytest.approx(reference_map(b[q], b[~q], y[q], y[~q], rank="dot"), abs=1e-12)


def test_cache_is_used_and_invalidated(digits_file, monkeypatch):
    with CodeSet(digits_file) as cs:
        first = analyze_codeset(cs)
    calls = []
    real = engine.collision_groups
    monkeypatch.setattr(engine, "collision_groups", lambda *a, **k: calls.append(1) or real(*a, **k))
    with CodeSet(digits_file) as cs:
        again = analyze_codeset(cs)
        assert again == first and calls == []  # everything came from the file
        changed = analyze_codeset(cs, nn_rows=100)  # other parameters: recomputed
    assert len(calls) == 2
    assert changed["layers"]["fc1"]["nn_rows"] == 100
    assert changed["layers"]["fc1"]["distinct_patterns"] == first["layers"]["fc1"]["distinct_patterns"]
    assert any("estimated" in n for n in changed["notes"])


def test_no_labels_skips_retrieval(tmp_path, digits_codes, make_codeset):
    layers, _ = digits_codes
    path = make_codeset(tmp_path / "nolab.h5", layers)
    with CodeSet(path) as cs:
        res = analyze_codeset(cs)
    assert res["retrieval"] == {} and "no labels: retrieval skipped" in res["notes"]
    assert res["layers"]["fc1"]["mixed_label_groups"] is None


def test_multihot(tmp_path, make_codeset):
    rng = np.random.default_rng(0)
    bits = {"code": rng.integers(0, 2, (80, 16))}
    y = (rng.random((80, 5)) < 0.3).astype(np.uint8)
    path = make_codeset(tmp_path / "mh.h5", bits, y, multihot=True)
    with CodeSet(path) as cs:
        res = analyze_codeset(cs)
    from nacscope.analysis.retrieval import mean_average_precision

    p = pack_bits(bits["code"])
    assert res["retrieval"]["code"]["map"] == pytest.approx(mean_average_precision(p, p, y, y, exclude_self=True))


def test_bad_inputs(tmp_path, digits_file, make_codeset):
    with CodeSet(digits_file) as cs:
        with pytest.raises(CodeSetError, match="available: fc1, fc2"):
            analyze_codeset(cs, ["nope"])
    empty = make_codeset(tmp_path / "empty.h5", {"code": np.zeros((0, 8), np.uint8)}, np.zeros(0, np.int64))
    with CodeSet(empty) as cs:
        with pytest.raises(CodeSetError, match="no samples"):
            analyze_codeset(cs)


def test_compare_common_layers(tmp_path, digits_codes, make_codeset):
    layers, y = digits_codes
    a = make_codeset(tmp_path / "a.h5", layers, y)
    b = make_codeset(tmp_path / "b.h5", {"fc2": layers["fc2"][:, :8]}, y)
    res = compare_codesets([str(a), str(b)])
    assert res["layers"] == [["fc2", "fc2"]]
    assert res["results"][1]["layers"]["fc2"]["distinct_patterns"] == len(set(map(tuple, layers["fc2"][:, :8])))
    assert res["results"][0]["layers"]["fc2"]["distinct_patterns"] > res["results"][1]["layers"]["fc2"]["distinct_patterns"]


def test_import_stays_light_and_segments_reexported():
    import subprocess
    import sys

    code = ("import sys, nacscope.analysis as a; heavy = [m for m in ('torch', 'umap', 'sklearn', 'matplotlib', "
            "'numba') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
    import nacscope.analysis as a
    from nacscope.analysis import plane, segments

    assert a.count_regions_exact is segments.count_regions_exact
    assert a.plane_regions is plane.plane_regions
    with pytest.raises(AttributeError):
        a.no_such_function  # noqa: B018


def test_reference_map_on_a_hand_worked_example():
    """Four samples, two labels, leave-one-out; the APs worked out on paper: 1, 1, 1 and 1/3."""
    bits = np.array([[0, 0], [0, 0], [1, 1], [0, 1]], np.uint8)
    y = np.array([0, 0, 1, 1])
    # Rankings (distance, then index): 0 -> [1, 3, 2]; 1 -> [0, 3, 2]; 2 -> [3, 0, 1]; 3 -> [0, 1, 2].
    assert reference_map(bits, bits, y, y, exclude_self=True) == pytest.approx((3 + 1 / 3) / 4)
    # Top 1 only: query 3's first item is irrelevant, AP@1 = 0.
    assert reference_map(bits, bits, y, y, R=1, exclude_self=True) == pytest.approx(3 / 4)
