"""Euler's relation V - E + F = 1 and a proper planar graph for exact plane partitions, and dense
sampling as a brute-force reference of the face count (a lower bound; equal on a hand-counted net).

The two faults found on real planes are reproduced small: two distinct vertices of a thin sliver
merged by a too-wide snap (V - E + F = 2 on the digits-nac plane), and a T-junction's side counted as
an edge of its own (V - E + F = -1 on a digits-simclr window)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nacscope.analysis import polygons as pg
from nacscope.analysis.partition import SNAP, exact_plane_partition, partition_slice
from nacscope.analysis.plane import plane_points, plane_regions
from nacscope.codes.capture import capture_preactivations, list_sites

torch.set_num_threads(1)
MODELS = Path(__file__).resolve().parents[2] / "models"


def _graph_ok(res) -> tuple[int, int, int]:
    """(V, E, F) recounted from the polygons; asserts every edge is shared by two faces or lies on the boundary."""
    region = res.region
    diam = float(np.max(np.linalg.norm(region[:, None] - region[None], axis=2)))
    points, edges, uses = pg.planar_graph(res.polygons, SNAP * 1e-9 * diam)
    assert set(np.unique(uses).tolist()) <= {1, 2}  # no T-junction, no overlapping faces
    one = edges[uses == 1]
    a, b = points[one[:, 0]], points[one[:, 1]]
    on_side = np.zeros(len(one), bool)
    for p, q in zip(region, np.roll(region, -1, 0)):
        t = q - p
        n = np.array([-t[1], t[0]]) / np.linalg.norm(t)
        on_side |= (np.abs((a - p) @ n) < 1e-12) & (np.abs((b - p) @ n) < 1e-12)
    assert on_side.all()  # every edge of one face only lies on a side of the region
    return len(points), len(edges), res.n_faces


def _dense_patterns(net: nn.Module, anchors: torch.Tensor, region: np.ndarray, r: int) -> np.ndarray:
    """(M, U) bool: the distinct patterns over every ReLU site at an r x r grid of points inside the box ``region``."""
    net = net.double().eval()
    lo, hi = region.min(0), region.max(0)
    u, v = np.meshgrid(np.linspace(lo[0], hi[0], r + 2)[1:-1], np.linspace(lo[1], hi[1], r + 2)[1:-1])
    pts = plane_points(anchors.double(), torch.from_numpy(u.ravel()), torch.from_numpy(v.ravel()))
    sites = [s for s in list_sites(net, pts[:2]) if s.kind == "relu"]
    z = capture_preactivations(net, pts, sites)
    bits = torch.cat([z[s.name] for s in sites], 1).numpy() > 0
    return np.unique(bits, axis=0)


# ---------------------------------------------------------------- the sliver that broke Euler's relation


def test_thin_sliver_keeps_its_two_close_vertices():
    """One unit whose line leaves a sliver of height 8e-9 (about 5.7 tol*D) at a corner of the unit square.

    The sliver's two right-hand vertices are 8e-9 apart: the old snap of 10 tol*D (1.4e-8) merged them
    (V - E + F = 2, as on the big digits-nac plane); they are distinct vertices of the true partition.
    """
    h = 8e-9
    net = nn.Sequential(nn.Linear(2, 1), nn.ReLU()).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[h, -1.0]]))
        net[0].bias.zero_()
    x0, d1, d2 = torch.zeros(2, dtype=torch.float64), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    res = partition_slice(net, x0, d1, d2, pg.box(0, 1, 0, 1))
    assert res.n_faces == 2
    assert sorted(res.areas) == pytest.approx([h / 2, 1 - h / 2], rel=1e-6)
    assert (res.n_vertices, res.n_edges) == (5, 6)  # corners, (1, h); four sides cut once, and the cut
    assert res.n_vertices - res.n_edges + res.n_faces == 1
    assert _graph_ok(res) == (5, 6, 2)
    old_v, old_e = pg.graph_counts(res.polygons, 10 * 1e-9 * np.sqrt(2))
    assert old_v - old_e + res.n_faces == 2  # the old count, reproduced


def test_t_junction_splits_the_neighbours_side():
    """[0, 2] x [0, 1]: the left unit square whole, the right one cut at v = 0.5. The left face's side
    (1, 0)-(1, 1) holds the vertex (1, 0.5): V = 8, E = 10 (bottom 2, top 2, left 1, right 2, u = 1
    two, v = 0.5 one), F = 3; counting the long side as its own edge gave E = 11."""
    faces = [pg.box(0, 1, 0, 1), pg.box(1, 2, 0, 0.5), pg.box(1, 2, 0.5, 1)]
    points, edges, uses = pg.planar_graph(faces, 1e-12)
    assert (len(points), len(edges)) == (8, 10)
    assert sorted(uses.tolist()) == [1] * 7 + [2] * 3
    inner = {tuple(sorted(map(tuple, points[e].round(9).tolist()))) for e in edges[uses == 2]}
    assert inner == {((1.0, 0.0), (1.0, 0.5)), ((1.0, 0.5), (1.0, 1.0)), ((1.0, 0.5), (2.0, 0.5))}


# ---------------------------------------------------------------- a network counted by hand


def _hand_net() -> nn.Module:
    """relu(u), relu(v), then relu(relu(u) + relu(v) - 1): on [-1, 2]^2 exactly 7 faces (see the test)."""
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1), nn.ReLU()).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[1.0, 1.0]]))
        net[2].bias.fill_(-1.0)
    return net


def test_hand_counted_two_layer_net_dense_sampling_equals_exact():
    """Lines u = 0 and v = 0 make 4 quadrants; the second layer's unit cuts three of them:
    u + v = 1 (u, v > 0), u = 1 (v < 0), v = 1 (u < 0); the quadrant u, v < 0 stays whole. F = 7.
    V = 4 corners + 6 points on the sides + (0, 0), (1, 0), (0, 1) = 13; E = 10 on the sides + 3 + 3
    (the axes) + 3 (the three cuts) = 19."""
    net = _hand_net()
    anchors = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    res = exact_plane_partition(net, anchors, margin=1.0, keep_bits=True)
    assert res.n_faces == 7
    assert (res.n_vertices, res.n_edges) == (13, 19)
    assert _graph_ok(res) == (13, 19, 7)
    assert sorted(res.areas) == pytest.approx([0.5, 1, 1, 1, 1, 1, 3.5], abs=1e-12)
    dense = _dense_patterns(net, anchors, res.region, 60)
    assert len(dense) == 7
    assert {tuple(b) for b in dense} == {tuple(b) for b in res.bits}
    for r in (7, 30):
        assert plane_regions(net, anchors, resolution=r, margin=1.0, dtype=torch.float64).n_regions <= 7
    assert plane_regions(net, anchors, resolution=60, margin=1.0, dtype=torch.float64).n_regions == 7


# ---------------------------------------------------------------- real digits models


def _digits_model(name: str):
    from nacscope.codes.study import load_data, load_source, normalizer

    data = load_data("digits", "test", None)
    model, meta = load_source(MODELS / name / "model.pt", random_init=False, arch=None, bits=None, seed=0,
                              in_channels=None, image_size=None)
    triple = np.random.default_rng(1).choice(len(data), 3, replace=False)  # the anchors of `regions --sample-seed 0`
    anchors = normalizer(meta, data)[0](data.images[torch.as_tensor(triple)])
    return model, anchors


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits-nac", "digits-simclr", "digits-random"])
def test_digits_models_euler_and_dense_sampling(name):
    model, anchors = _digits_model(name)
    region = pg.box(0.45, 0.6, 0.45, 0.6)
    res = exact_plane_partition(model, anchors, region=region, keep_bits=True)
    assert res.n_faces > 100
    assert res.areas.sum() == pytest.approx(0.15**2, abs=1e-12)
    assert res.n_vertices - res.n_edges + res.n_faces == 1
    assert _graph_ok(res) == (res.n_vertices, res.n_edges, res.n_faces)
    dense = _dense_patterns(model, anchors, region, 150)
    assert len(dense) <= res.n_faces
    exact = {row.tobytes() for row in np.packbits(res.bits, axis=1)}
    assert {row.tobytes() for row in np.packbits(dense, axis=1)} <= exact  # every sampled pattern is a face's


@pytest.mark.slow
def test_big_digits_nac_plane_euler():
    """The plane of the benchmark (~175k faces): V - E + F was 2 with the old vertex snap."""
    model, anchors = _digits_model("digits-nac")
    res = exact_plane_partition(model, anchors, margin=0.25)
    assert res.n_faces > 170_000
    assert res.n_vertices - res.n_edges + res.n_faces == 1
    assert _graph_ok(res) == (res.n_vertices, res.n_edges, res.n_faces)
