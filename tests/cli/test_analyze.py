"""`nacscope analyze`, `compare` and `report`: end to end on digits codes, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nacscope.codes.format import CodeSetWriter, LayerSpec
from tests.helpers import assert_one_line_error, invoke





def write(path, n=600, labels=True, seed=0):
    """Digits through a fixed random ReLU layer (48 units) and a 16-bit code layer."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    h = np.maximum((x - x.mean(0)) @ rng.normal(size=(64, 48)), 0)
    a = h @ rng.normal(size=(48, 16))
    h, code, y = h[:n], (a > np.median(a, axis=0))[:n], y[:n]
    with CodeSetWriter(path, [LayerSpec("relu1", 48), LayerSpec("code", 16, kind="code")],
                       label_kind="class" if labels else None) as w:
        if n:
            w.append({"relu1": h > 0, "code": code}, labels=y if labels else None)
    return path


@pytest.fixture()
def codes(tmp_path):
    return write(tmp_path / "codes.h5")


def test_analyze_json_has_documented_keys(codes):
    r = invoke("analyze", codes, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    for name in ("relu1", "code"):
        L = out["layers"][name]
        for key in ("n_samples", "n_bits", "distinct_patterns", "collision_groups", "samples_in_collisions",
                    "largest_group", "mixed_label_groups", "dead_bits", "stuck_bits", "bit_entropy"):
            assert key in L
        for key in ("map", "map_at_1000", "tie_aware_map", "precision_at_100", "precision_radius_2", "knn_accuracy"):
            assert 0.0 <= out["retrieval"][name][key] <= 1.0
        assert out["cumulative"][name]["distinct_patterns"] >= L["distinct_patterns"]
    assert out["layers"]["code"]["n_bits"] == 16 and out["n_samples"] == 600


def test_analyze_documented_keys_are_in_docs(codes):
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "analysis.md").read_text()
    out = json.loads(invoke("analyze", codes, "--json").output)
    L = out["layers"]["code"]
    keys = set(out) | set(L) | set(out["retrieval"]["code"]) | set(out["cumulative"]["code"])
    keys |= set(L["near_collisions"]["1"]) | set(L["nn_distance"])
    probes = json.loads(invoke("analyze", codes, "--json", "--probes", "--layer", "code").output)["probes"]["code"]
    keys |= set(probes)
    missing = [k for k in keys if f"`{k}`" not in doc]
    assert not missing, f"undocumented JSON keys: {missing}"


def test_analyze_tables_and_layer_choice(codes):
    r = invoke("analyze", codes, "--layer", "code")
    assert r.exit_code == 0 and "Retrieval" in r.output and "relu1" not in r.output
    r = invoke("analyze", codes, "--layer", "code", "--json", "--rank", "dot")
    out = json.loads(r.output)
    assert list(out["layers"]) == ["code"] and out["retrieval"]["code"]["rank"] == "dot"


def test_analyze_bad_input(tmp_path, codes):
    assert_one_line_error(invoke("analyze", codes, "--layer", "fc9"), "no layer 'fc9'", "available: relu1, code")
    assert_one_line_error(invoke("analyze", codes, "--rank", "cosine"), "--rank")
    assert_one_line_error(invoke("analyze", codes, "--nn-rows", "0"), "--nn-rows")
    assert_one_line_error(invoke("analyze", tmp_path / "missing.h5"), "not found")
    (tmp_path / "junk.h5").write_text("not hdf5")
    assert_one_line_error(invoke("analyze", tmp_path / "junk.h5"), "not an HDF5 file")
    assert_one_line_error(invoke("analyze", write(tmp_path / "empty.h5", n=0)), "no samples")


def test_analyze_without_labels(tmp_path):
    out = json.loads(invoke("analyze", write(tmp_path / "nl.h5", labels=False), "--json").output)
    assert out["retrieval"] == {} and "no labels: retrieval skipped" in out["notes"]
    r = invoke("analyze", tmp_path / "nl.h5")
    assert r.exit_code == 0 and "retrieval skipped" in r.output


def test_compare_side_by_side(tmp_path):
    a, b = write(tmp_path / "a.h5", seed=0), write(tmp_path / "b.h5", seed=1)
    r = invoke("compare", a, b, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["layers"] == [["relu1", "relu1"], ["code", "code"]] and len(out["results"]) == 2
    single = json.loads(invoke("analyze", b, "--json").output)
    assert out["results"][1]["layers"]["code"] == single["layers"]["code"]
    r = invoke("compare", a, b, "--layer", "code")
    assert r.exit_code == 0 and "a.h5" in r.output and "b.h5" in r.output and "mAP" in r.output
    assert_one_line_error(invoke("compare", a, b, "--layer", "nope"), "no layer 'nope'")
    png = tmp_path / "cmp.png"
    r = invoke("compare", a, b, "--plot", png)
    assert r.exit_code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert_one_line_error(invoke("compare", a, b, "--plot", png), "exists", "--force")
    assert_one_line_error(invoke("compare", a, b, "--plot", tmp_path / "cmp.jpg"), "PNG")
    assert invoke("compare", a, b, "--plot", png, "--force").exit_code == 0
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


@pytest.mark.slow
def test_report(tmp_path, codes):
    out = tmp_path / "rep"
    r = invoke("report", codes, "-o", out, "--no-umap")
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in out.iterdir() if p.name != ".nacscope-report.json")
    assert names == ["bit_rates.png", "collisions.png", "nn_distance.png", "pr_curve.png", "regions.png", "summary.md"]
    assert json.loads((out / ".nacscope-report.json").read_text())["files"] == names  # the manifest
    assert all((out / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in names if n.endswith(".png"))
    assert "| code | 16 |" in (out / "summary.md").read_text()
    # An existing report is refused, and kept, unless --force.
    assert_one_line_error(invoke("report", codes, "-o", out, "--no-umap"), "exists", "--force")
    assert (out / "summary.md").exists()
    # A failing report leaves the old one alone.
    assert_one_line_error(invoke("report", codes, "-o", out, "--force", "--layer", "nope"), "no layer")
    assert (out / "summary.md").exists()
    r = invoke("report", codes, "-o", out, "--force", "--no-umap", "--layer", "code")
    assert r.exit_code == 0 and "relu1" not in (out / "summary.md").read_text()
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name or ".old" in p.name]


@pytest.mark.slow
def test_report_plane_partition(tmp_path, codes):
    """A dump of a seeded random-init MLP on digits: the report rebuilds network and inputs for the plane."""
    dumped = tmp_path / "rand.h5"
    r = invoke("dump", "--random-init", "--arch", "mlp", "--bits", "16", "--dataset", "digits", "-o", dumped)
    assert r.exit_code == 0, r.output
    out = tmp_path / "rep"
    r = invoke("report", dumped, "-o", out, "--no-umap", "--plane-rows", "0,1,2")
    assert r.exit_code == 0, r.output
    assert (out / "plane.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (out / "summary.md").read_text()
    assert "Plane through rows 0, 1, 2:" in summary and "exact (convex polygons)" in summary
    # The count in the summary is the exact partition's own face count for the same anchors,
    # and at least the grid's count (a lower bound), which the grid method reports as such.
    import re

    import torch

    from nacscope.analysis.partition import exact_plane_partition
    from nacscope.analysis.plane import plane_regions
    from nacscope.codes.format import CodeSet
    from nacscope.codes.sources import load_inputs, load_network

    with CodeSet(dumped) as cs:
        x, data = load_inputs(cs.attrs, cs.sample_index, [0, 1, 2])
        model = load_network(cs.attrs, cs.path, data)
    n = exact_plane_partition(model, x).n_faces
    assert int(re.search(r"(\d+) linear regions", summary).group(1)) == n
    with torch.no_grad():
        n_grid = plane_regions(model, x, resolution=12).n_regions
    assert n_grid <= n
    r = invoke("report", dumped, "-o", out, "--force", "--no-umap", "--plane-rows", "0,1,2", "--plane-method", "grid",
               "--plane-resolution", "12")
    assert r.exit_code == 0, r.output
    summary = (out / "summary.md").read_text()
    assert "lower bound" in summary and "12 x 12 grid" in summary
    assert int(re.search(r"(\d+) linear regions", summary).group(1)) == n_grid
    # Bad plane options are refused before any work; a file without provenance skips the figure by default.
    assert_one_line_error(invoke("report", dumped, "-o", tmp_path / "x", "--plane-rows", "0,1"), "three different")
    assert_one_line_error(invoke("report", dumped, "-o", tmp_path / "x", "--plane-rows", "0,1,99999"), "out of range")
    assert_one_line_error(invoke("report", dumped, "-o", tmp_path / "x", "--plane-rows", "a,b,c"), "three integers")
    assert_one_line_error(invoke("report", dumped, "-o", tmp_path / "x", "--plane-resolution", "1"), "--plane-resolution")
    assert not (tmp_path / "x").exists()
    r = invoke("report", codes, "-o", tmp_path / "y", "--no-umap")
    assert r.exit_code == 0 and "Plane partition skipped" in (tmp_path / "y" / "summary.md").read_text()
    assert_one_line_error(invoke("report", codes, "-o", tmp_path / "z", "--no-umap", "--plane-rows", "0,1,2"), "records no checkpoint")
