"""Regions in a plane through three inputs: a hand-worked arrangement, a numpy reference, the picture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nacscope.analysis.plane import plane_points, plane_regions, plot_planes
from nacscope.errors import OptionError

torch.set_num_threads(1)


def test_two_lines_make_four_regions():
    """Units switching at x = 0.5 and y = 0.5: the plane through (0,0), (1,0), (0,1) is the input plane."""
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
        net[0].bias.fill_(-0.5)
    anchors = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    res = plane_regions(net, anchors, resolution=31, margin=0.25)
    assert res.n_regions == 4
    ids = res.region_ids
    g = np.linspace(-0.25, 1.25, 31)
    # Boundaries at u = 0.5 (columns) and v = 0.5 (rows); on the line itself z = 0: the unit is off.
    left, low = g <= 0.5, g <= 0.5
    assert len(np.unique(ids[np.ix_(low, left)])) == 1
    assert len(np.unique(ids[np.ix_(~low, ~left)])) == 1
    assert ids[0, 0] != ids[0, -1] != ids[-1, -1] != ids[-1, 0]
    assert len(set(res.anchor_regions.tolist())) == 3  # the anchors lie in three different quadrants


def test_matches_numpy_reference(digits):
    x_np, _ = digits
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 20), nn.ReLU(), nn.Linear(20, 10), nn.ReLU())
    anchors = torch.from_numpy((x_np[[0, 10, 20]] - 8) / 8).float().view(3, 1, 8, 8)
    r = 40
    res = plane_regions(net, anchors, resolution=r, margin=0.5, dtype=torch.float64)
    # Reference: numpy forward on the same grid, patterns of both ReLUs.
    a = anchors.double().view(3, -1).numpy()
    g = np.linspace(-0.5, 1.5, r)
    vv, uu = np.meshgrid(g, g, indexing="ij")
    x = a[0] + uu.reshape(-1, 1) * (a[1] - a[0]) + vv.reshape(-1, 1) * (a[2] - a[0])
    w1, b1 = net[1].weight.detach().double().numpy(), net[1].bias.detach().double().numpy()
    w2, b2 = net[3].weight.detach().double().numpy(), net[3].bias.detach().double().numpy()
    z1 = x @ w1.T + b1
    z2 = np.maximum(z1, 0) @ w2.T + b2
    pat = np.concatenate([z1 > 0, z2 > 0], 1)
    _, ref = np.unique(pat, axis=0, return_inverse=True)
    ref = ref.reshape(r, r)
    assert res.n_regions == ref.max() + 1 > 10
    # Same partition up to relabelling: a bijection between ids.
    pairs = set(zip(res.region_ids.ravel().tolist(), ref.ravel().tolist()))
    assert len(pairs) == res.n_regions


@pytest.mark.parametrize("r", [9, 21])
def test_finer_nested_grid_never_finds_fewer_regions(r):
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU())
    anchors = torch.randn(3, 5) * 2
    coarse = plane_regions(net, anchors, resolution=r)
    fine = plane_regions(net, anchors, resolution=2 * r - 1)  # contains every coarse grid point
    assert fine.n_regions >= coarse.n_regions
    assert np.array_equal(np.unique(fine.region_ids[::2, ::2], return_inverse=True)[1].reshape(r, r),
                          np.unique(coarse.region_ids, return_inverse=True)[1].reshape(r, r))


def test_plane_points_hit_anchors():
    anchors = torch.randn(3, 2, 3)
    pts = plane_points(anchors, torch.tensor([0.0, 1.0, 0.0]), torch.tensor([0.0, 0.0, 1.0]))
    torch.testing.assert_close(pts, anchors)


def test_plot_writes_png(tmp_path):
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU())
    anchors = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    a = plane_regions(net, anchors, resolution=20)
    out = plot_planes([("one", a), ("two", a)], tmp_path / "p.png")
    import matplotlib.image as mpimg

    img = mpimg.imread(out)
    assert img.shape[1] > img.shape[0] > 100  # two panels side by side
    assert len(np.unique(img.reshape(-1, img.shape[-1])[:, :3], axis=0)) > a.n_regions


def test_bad_arguments():
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with pytest.raises(OptionError, match="3 anchor"):
        plane_regions(net, torch.zeros(2, 2))
    with pytest.raises(OptionError, match="resolution"):
        plane_regions(net, torch.zeros(3, 2), resolution=1)


def test_three_separate_anchors_and_progress():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
    a = torch.randn(3, 4)
    calls = []
    one = plane_regions(net, a[0], a[1], a[2], resolution=30, batch=100, progress=lambda d, t, m: calls.append((d, t)))
    other = plane_regions(net, a, resolution=30)
    assert np.array_equal(one.region_ids, other.region_ids)
    assert calls[-1] == (900, 900) and len(calls) == 9
