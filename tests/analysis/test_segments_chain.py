"""The chain walk (affine + ReLU chains, all segments at once) against the boundary walk, dense sampling and a hand count."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from nacscope.analysis.segments import (
    count_regions_dense,
    count_regions_exact,
    patterns_along,
    prepare_network,
)
from nacscope.analysis.segments_batched import count_regions_batched
from nacscope.analysis.segments_chain import affine_chain
from nacscope.errors import OptionError
from nacscope.nets import build_model

torch.set_num_threads(1)


def _random_mlp(widths, seed, bn=False):
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b)] + ([nn.BatchNorm1d(b)] if bn else []) + [nn.ReLU()]
    net = nn.Sequential(*layers).eval()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.normal_(0, 0.3)
            m.running_var.uniform_(0.5, 2)
    return net


def _hand_net():
    """x -> (relu(x), relu(x - 1)) -> relu(h1 - 2 h2 - 1/2): breaks at x = 0, 1 (layer 1) and 1/2, 3/2 (layer 2)."""
    l1, l2 = nn.Linear(1, 2), nn.Linear(2, 1)
    with torch.no_grad():
        l1.weight.copy_(torch.tensor([[1.0], [1.0]]))
        l1.bias.copy_(torch.tensor([0.0, -1.0]))
        l2.weight.copy_(torch.tensor([[1.0, -2.0]]))
        l2.bias.copy_(torch.tensor([-0.5]))
    return nn.Sequential(l1, nn.ReLU(), l2, nn.ReLU())


@pytest.mark.parametrize("layers, regions, crossings", [
    (None, 5, [0.25, 0.375, 0.5, 0.625]),  # x = -1 + 4 t: x = 0, 1/2, 1, 3/2
    (["1"], 3, [0.25, 0.5]),  # layer 1 only: x = 0, 1
    (["3"], 3, [0.375, 0.625]),  # layer 2 only: on for 1/2 < x < 3/2; its kinks at x = 0, 1 are no boundaries
])
@pytest.mark.parametrize("method", ["chain", "walk", "layers"])
def test_hand_worked_1d_network(layers, regions, crossings, method):
    net = _hand_net()
    x0, x1 = torch.tensor([[-1.0], [3.0]]), torch.tensor([[3.0], [-1.0]])  # the second runs backwards
    res = count_regions_exact(net, x0, x1, layers=layers, method=method)
    assert res.regions.tolist() == [regions, regions]
    np.testing.assert_allclose(res.crossings[0], crossings, atol=1e-12)
    np.testing.assert_allclose(res.crossings[1], sorted(1 - c for c in crossings), atol=1e-12)


@pytest.mark.parametrize("widths, seed, bn", [
    ((16, 32), 0, False),
    ((16, 24, 24), 1, True),
    ((16, 40, 20, 30, 10), 2, False),
    ((64, 48, 48, 16), 3, True),
    ((64, 8, 8, 8, 8, 8, 8), 4, False),
])
def test_equals_the_boundary_walk_on_random_mlps(widths, seed, bn):
    net = _random_mlp(widths, seed, bn)
    g = torch.Generator().manual_seed(seed)
    x0, x1 = 2 * torch.randn(5, widths[0], generator=g), 2 * torch.randn(5, widths[0], generator=g)
    ref = count_regions_exact(net, x0, x1, method="walk")
    got = count_regions_exact(net, x0, x1)  # auto picks the chain walk
    assert (ref.regions > 5).all(), "too few regions for a meaningful test"
    np.testing.assert_array_equal(got.regions, ref.regions)
    for a, b in zip(got.crossings, ref.crossings):
        np.testing.assert_allclose(a, b, atol=1e-8)


def test_chain_on_3d_inputs_with_channel_batchnorm_equals_the_walk():
    """Linear on the last dim of (N, 3, 4), BatchNorm1d over the 3 channels, nested Sequential: still a chain."""
    torch.manual_seed(7)
    net = nn.Sequential(nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(3), nn.ReLU()), nn.Flatten(),
                        nn.Dropout(0.5), nn.Linear(18, 10), nn.ReLU()).eval()
    net[0][1].running_mean.normal_(0, 0.5)
    x0, x1 = 2 * torch.randn(4, 3, 4), 2 * torch.randn(4, 3, 4)
    pnet, _ = prepare_network(net, x0[:1], None, None)
    assert affine_chain(pnet, x0[:1].double()) is not None
    ref = count_regions_exact(net, x0, x1, method="walk")
    got = count_regions_exact(net, x0, x1, method="chain")
    assert (ref.regions > 3).all()
    np.testing.assert_array_equal(got.regions, ref.regions)


def test_nac_model_with_code_layer_equals_the_walk(digits):
    torch.manual_seed(0)
    m = build_model("mlp", 8, in_channels=1, image_size=8, hidden=(24, 16)).eval()
    x_np, _ = digits
    x = torch.from_numpy((x_np - 8) / 8).float().view(-1, 1, 8, 8)
    x0, x1 = x[[3, 50, 400]], x[[900, 7, 1200]]
    for layers in (None, ["all"]):
        ref = count_regions_exact(m, x0, x1, layers=layers, method="walk")
        got = count_regions_exact(m, x0, x1, layers=layers, method="chain")
        np.testing.assert_array_equal(got.regions, ref.regions)


def test_nac_convnet_with_code_layer_site_walk_equals_the_walk(digits):
    """A NAC convnet (conv-BN-ReLU x2, global average pool, code head) on digits: auto takes the site walk."""
    m = build_model("convnet", 8, in_channels=1, image_size=8, widths=(4, 6)).eval()
    with torch.no_grad():
        for bn in (mod for mod in m.modules() if isinstance(mod, nn.BatchNorm2d)):
            bn.running_mean.normal_(0, 0.3, generator=torch.Generator().manual_seed(0))
            bn.running_var.uniform_(0.5, 2, generator=torch.Generator().manual_seed(1))
    x_np, _ = digits
    x = torch.from_numpy((x_np - 8) / 8).float().view(-1, 1, 8, 8)
    x0, x1 = x[[3, 50, 400]], x[[900, 7, 1200]]
    for layers in (None, ["all"], ["code"]):
        ref = count_regions_exact(m, x0, x1, layers=layers, method="walk")
        got = count_regions_exact(m, x0, x1, layers=layers)
        assert layers == ["code"] or ref.regions.min() > 5
        np.testing.assert_array_equal(got.regions, ref.regions)
        for a, b in zip(got.crossings, ref.crossings):
            np.testing.assert_allclose(a, b, atol=1e-9)


def test_site_walk_progress_and_cancel():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 5), nn.ReLU()).eval()
    x0, x1 = 3 * torch.randn(4, 1, 4, 4), 3 * torch.randn(4, 1, 4, 4)
    calls = []
    count_regions_exact(net, x0, x1, progress=lambda d, t, m: calls.append((d, t, m)))
    assert [d for d, _, _ in calls] == [500, 1000]  # one batch per site, per mille of 2 sites
    assert "site 2/2" in calls[-1][2]

    class Stop(Exception):
        pass

    def stop(d, t, m):
        raise Stop

    with pytest.raises(Stop):
        count_regions_exact(net, x0, x1, progress=stop)


def _merged_reference(net, x0, x1, layers):
    """Regions of the chosen sites from the walk over every ReLU site: pieces' midpoint patterns, equal neighbours merged."""
    full = count_regions_exact(net, x0, x1, method="walk")
    _, chosen = prepare_network(net, x0[:1], None, layers)
    pnet, _ = prepare_network(net, x0[:1], None, None)
    out = []
    for p in range(len(x0)):
        ends = np.concatenate([[0.0], full.crossings[p], [1.0]])
        mids = torch.from_numpy((ends[1:] + ends[:-1]) / 2)
        pat = patterns_along(pnet, x0[p].double(), x1[p].double(), mids, chosen)  # (pieces, W)
        out.append(1 + int((pat[1:] != pat[:-1]).any(1).sum()))
    return np.asarray(out)


@pytest.mark.parametrize("layers", [["2"], ["4"], ["6"], ["2", "6"]])  # sites of the ReLUs after Flatten
@pytest.mark.parametrize("method", ["chain", "walk", "batched", "layers"])
def test_site_selection_counts_merged_pieces_of_the_full_partition(layers, method):
    net = _random_mlp((12, 20, 20, 20), 5)
    g = torch.Generator().manual_seed(5)
    x0, x1 = 2 * torch.randn(4, 12, generator=g), 2 * torch.randn(4, 12, generator=g)
    if method == "batched":
        got = count_regions_batched(net, x0, x1, layers=layers)
    else:
        got = count_regions_exact(net, x0, x1, layers=layers, method=method)
    np.testing.assert_array_equal(got.regions, _merged_reference(net, x0, x1, layers))
    dense = count_regions_dense(net, x0, x1, n=2000, layers=layers)
    assert (dense <= got.regions).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_never_below_dense_sampling_and_equal_when_fine(seed):
    net = _random_mlp((10, 24, 24, 12), seed, bn=True)
    g = torch.Generator().manual_seed(seed)
    x0, x1 = 2 * torch.randn(3, 10, generator=g), 2 * torch.randn(3, 10, generator=g)
    exact = count_regions_exact(net, x0, x1, method="chain")
    for n in (2, 10, 100, 1000):
        assert (count_regions_dense(net, x0, x1, n=n) <= exact.regions).all()
    for p in range(len(x0)):
        gaps = np.diff(np.concatenate([[0.0], exact.crossings[p], [1.0]]))
        n_fine = math.ceil(2.0 / gaps.min()) + 1  # spacing under half the smallest piece
        assert n_fine < 400_000, "a piece too small to check by sampling"
        assert count_regions_dense(net, x0[p : p + 1], x1[p : p + 1], n=n_fine)[0] == exact.regions[p]


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(6, 6), nn.Linear(6, 6)

    def forward(self, x):
        h = torch.relu(self.a(x))
        return torch.relu(self.b(h) + x)


def test_networks_that_are_no_chain_use_the_site_walk_equal_to_the_boundary_walk():
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 5), nn.ReLU()).eval()
    for net, shape in ((conv, (2, 1, 4, 4)), (_Residual(), (2, 6))):
        x0, x1 = 3 * torch.randn(shape), 3 * torch.randn(shape)
        pnet, _ = prepare_network(net, x0[:1], None, None)
        assert affine_chain(pnet, x0[:1].double()) is None
        ref = count_regions_exact(net, x0, x1, method="walk")
        for got in (count_regions_exact(net, x0, x1), count_regions_exact(net, x0, x1, method="layers")):
            np.testing.assert_array_equal(got.regions, ref.regions)
            for a, b in zip(got.crossings, ref.crossings):
                np.testing.assert_allclose(a, b, atol=1e-9)
        with pytest.raises(OptionError, match="not a plain chain"):
            count_regions_exact(net, x0, x1, method="chain")
    with pytest.raises(OptionError, match="method"):
        count_regions_exact(conv, x0, x1, method="fast")


def test_progress_reports_each_site_and_a_raise_cancels():
    net = _random_mlp((8, 16, 16, 16), 0)
    x0, x1 = torch.randn(2, 8), torch.randn(2, 8)
    calls = []
    count_regions_exact(net, x0, x1, progress=lambda d, t, m: calls.append((d, t, m)))
    assert [(d, t) for d, t, _ in calls] == [(0, 1000), (333, 1000), (666, 1000), (1000, 1000)]  # per mille of 3 sites
    assert all(m.startswith("exact walk") for _, _, m in calls)

    class Stop(Exception):
        pass

    def stop(d, t, m):
        if d > 0:
            raise Stop()

    with pytest.raises(Stop):
        count_regions_exact(net, x0, x1, progress=stop)
