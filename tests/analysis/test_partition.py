"""Exact plane partition: brute-force enumeration, coverage, Euler's relation, re-captured patterns, grids."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nacscope.analysis.partition import exact_plane_partition, partition_slice
from nacscope.analysis.plane import plane_points, plane_regions
from nacscope.codes.capture import capture_preactivations, list_sites
from nacscope.errors import OptionError
from nacscope.progress import Cancelled

torch.set_num_threads(1)


# ---------------------------------------------------------------- an independent reference


def clip(poly: list[tuple[float, float]], a: float, b: float, c: float) -> list[tuple[float, float]]:
    """Sutherland-Hodgman: the part of ``poly`` where ``a u + b v + c >= 0``."""
    out = []
    for i in range(len(poly)):
        p, q = poly[i], poly[(i + 1) % len(poly)]
        sp, sq = a * p[0] + b * p[1] + c, a * q[0] + b * q[1] + c
        if sp >= 0:
            out.append(p)
        if (sp >= 0) != (sq >= 0):
            t = sp / (sp - sq)
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    return out


def shoelace(poly) -> float:
    return 0.5 * abs(sum(p[0] * q[1] - q[0] * p[1] for p, q in zip(poly, poly[1:] + poly[:1])))


def brute_force(ws, bs, lo, hi):
    """Every pattern of a 2-D-input MLP whose polygon in the box has positive area: {bits: area}."""
    widths = [len(b) for b in bs]
    faces = {}
    for pattern in itertools.product([0, 1], repeat=sum(widths)):
        poly = [(lo, lo), (hi, lo), (hi, hi), (lo, hi)]
        a_mat, c_vec = np.eye(2), np.zeros(2)  # the layer's input = a_mat @ (u, v) + c_vec
        pos = 0
        for w, b in zip(ws, bs):
            za, zc = w @ a_mat, w @ c_vec + b  # pre-activation = za @ (u, v) + zc
            m = np.array(pattern[pos : pos + len(b)], float)
            for j in range(len(b)):
                sign = 1.0 if m[j] else -1.0
                poly = clip(poly, sign * za[j, 0], sign * za[j, 1], sign * zc[j])
                if len(poly) < 3:
                    break
            if len(poly) < 3:
                break
            a_mat, c_vec = m[:, None] * za, m * zc
            pos += len(b)
        if len(poly) >= 3 and shoelace(poly) > 1e-12:
            faces[pattern] = shoelace(poly)
    return faces


def _identity_plane():
    """The plane through (0, 0), (1, 0), (0, 1) of a 2-D input: plane coordinates are the input."""
    return torch.zeros(2, dtype=torch.float64), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])


def _box(lo, hi):
    return np.array([[lo, lo], [hi, lo], [hi, hi], [lo, hi]])


@pytest.mark.parametrize("widths, seed", [((3,), 0), ((4, 3), 1), ((5, 4), 2), ((3, 4, 3), 3)])
def test_tiny_mlp_equals_brute_force(widths, seed):
    torch.manual_seed(seed)
    dims = (2,) + widths
    layers = []
    for a, b in zip(dims, dims[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    net = nn.Sequential(*layers).double()
    ws = [m.weight.detach().numpy() for m in net if isinstance(m, nn.Linear)]
    bs = [m.bias.detach().numpy() for m in net if isinstance(m, nn.Linear)]
    ref = brute_force(ws, bs, -2.0, 2.0)
    res = partition_slice(net, *_identity_plane(), _box(-2.0, 2.0), keep_bits=True)
    got = {tuple(int(b) for b in row): a for row, a in zip(res.bits, res.areas)}
    assert len(ref) > 3
    assert res.n_faces == len(ref) == len(got)  # one face per pattern
    assert set(got) == set(ref)
    for k in ref:
        assert got[k] == pytest.approx(ref[k], rel=1e-9, abs=1e-12)
    assert len(set(res.hashes.tolist())) == res.n_faces
    assert res.per_layer[-1][1] == res.n_faces
    assert [n for _, n in res.per_layer] == sorted(n for _, n in res.per_layer)


def _mlp5():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU())


def test_areas_cover_region_and_euler_holds():
    net = _mlp5()
    anchors = torch.randn(3, 5, generator=torch.Generator().manual_seed(2)) * 2
    res = exact_plane_partition(net, anchors, margin=0.25)
    assert res.n_faces > 50
    assert res.areas.sum() == pytest.approx(1.5**2, abs=1e-9)
    assert res.n_vertices - res.n_edges + res.n_faces == 1
    st = res.area_stats()
    assert 0 < st["min"] <= st["median"] <= st["max"] < 2.25
    assert (res.anchor_faces >= 0).all()


def _patterns_at(net, pts: torch.Tensor) -> np.ndarray:
    """(M, U) bool: plain forward patterns over every ReLU site (the independent re-capture)."""
    sites = [s for s in list_sites(net, pts[:2]) if s.kind == "relu"]
    z = capture_preactivations(net, pts, sites)
    return torch.cat([z[s.name] for s in sites], 1).numpy() > 0


def _preacts_at(net, pts):
    sites = [s for s in list_sites(net, pts[:2]) if s.kind == "relu"]
    z = capture_preactivations(net, pts, sites)
    return torch.cat([z[s.name] for s in sites], 1).numpy()


def _centroids(res):
    from nacscope.analysis.polygons import centroid

    return np.stack([centroid(p) for p in res.polygons])


def test_grid_count_never_exceeds_exact_and_centroids_recapture():
    net = _mlp5().double()
    anchors = torch.randn(3, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 2
    res = exact_plane_partition(net, anchors, margin=0.25, keep_bits=True)
    for r in (9, 40, 120):
        grid = plane_regions(net, anchors, resolution=r, margin=0.25, dtype=torch.float64)
        assert grid.n_regions <= res.n_faces
    c = torch.from_numpy(_centroids(res))
    pats = _patterns_at(net, plane_points(anchors, c[:, 0], c[:, 1]))
    assert np.array_equal(pats, res.bits)


class ResCNN(nn.Module):
    """conv-BN-ReLU, a residual block with two ReLU calls, average pooling, linear + ReLU (8x8 inputs)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU())
        self.c1, self.c2 = nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(2 * 4 * 4, 6)

    def forward(self, x):
        h = self.stem(x)
        out = self.relu(self.c1(h))
        out = self.relu(self.c2(out) + h)
        return F.relu(self.fc(self.pool(out).flatten(1)))


def _shared_edges(res, snap):
    """Pairs of faces sharing an edge, with the edge's midpoint: [(i, j, (u, v))]."""
    from scipy.spatial import cKDTree

    pts = np.concatenate(res.polygons)
    owner = np.repeat(np.arange(res.n_faces), [len(p) for p in res.polygons])
    tree = cKDTree(pts)
    found = {}
    for i, p in enumerate(res.polygons):
        for a, b in zip(p, np.roll(p, -1, 0)):
            fa = {owner[k] for k in tree.query_ball_point(a, snap)} - {i}
            fb = {owner[k] for k in tree.query_ball_point(b, snap)} - {i}
            for j in fa & fb:
                found.setdefault((min(i, j), max(i, j)), (a + b) / 2)
    return [(i, j, m) for (i, j), m in found.items()]


@pytest.mark.slow
def test_conv_residual_on_digits_neighbours_differ_in_separating_units(digits):
    x_np, _ = digits
    torch.manual_seed(0)
    net = ResCNN().eval()
    with torch.no_grad():
        net.stem[1].running_mean.normal_(0, 0.3)
        net.stem[1].running_var.uniform_(0.5, 2)
    net = net.double()
    anchors = torch.from_numpy((x_np[[0, 10, 20]] - 8) / 8).double().view(3, 1, 8, 8)
    res = exact_plane_partition(net, anchors, margin=0.1, keep_bits=True)
    assert res.n_faces > 20
    assert res.areas.sum() == pytest.approx(1.2**2, abs=1e-9)
    assert res.n_vertices - res.n_edges + res.n_faces == 1
    c = torch.from_numpy(_centroids(res))
    assert np.array_equal(_patterns_at(net, plane_points(anchors, c[:, 0], c[:, 1])), res.bits)
    assert plane_regions(net, anchors, resolution=60, margin=0.1, dtype=torch.float64).n_regions <= res.n_faces
    pairs = _shared_edges(res, 1e-8)
    assert len(pairs) >= res.n_faces - 1
    mids = torch.from_numpy(np.stack([m for _, _, m in pairs[:40]]))
    z = _preacts_at(net, plane_points(anchors, mids[:, 0], mids[:, 1]))  # (40, U) on the shared edges
    scale = np.abs(z).max()
    for (i, j, _), zr in zip(pairs[:40], z):
        differ = set(np.flatnonzero(res.bits[i] != res.bits[j]).tolist())
        on_line = set(np.flatnonzero(np.abs(zr) < 1e-9 * scale).tolist())
        assert differ and differ == on_line


def test_progress_stages_and_cancel():
    net = _mlp5()
    anchors = torch.randn(3, 5, generator=torch.Generator().manual_seed(2))
    seen = []
    exact_plane_partition(net, anchors, progress=lambda d, t, m: seen.append((d, t, m)))
    stages = list(dict.fromkeys(m for _, _, m in seen))
    assert len(stages) == 2 and all("site" in s for s in stages)

    def cancel(d, t, m):
        if "2/2" in m:
            raise Cancelled

    with pytest.raises(Cancelled):
        exact_plane_partition(net, anchors, progress=cancel)


def test_refusals():
    anchors = torch.randn(3, 1, 4, 4)
    pool = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
    with pytest.raises(OptionError, match="max_pool2d"):
        exact_plane_partition(pool, anchors)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(16, 4), nn.ReLU())
    with pytest.raises(OptionError, match="convex"):
        exact_plane_partition(mlp, anchors, region=np.array([[0, 0], [1, 1], [1, 0], [0, 1]]))
    with pytest.raises(OptionError, match="3 anchor"):
        exact_plane_partition(mlp, anchors[:2])
