"""The batched exact walk equals the boundary-by-boundary walk and a 1-D hand count."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nacscope.analysis.segments import count_regions_exact
from nacscope.analysis.segments_batched import count_regions_batched

torch.set_num_threads(1)


def test_one_hidden_layer_1d_equals_breakpoints_plus_one():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 3))
    x0, x1 = torch.tensor([[-3.0], [2.5]]), torch.tensor([[3.0], [-2.0]])
    res = count_regions_batched(net, x0, x1)
    breaks = (-net[0].bias.detach().double() / net[0].weight.detach().double().view(-1)).numpy()
    for p in range(2):
        a, c = float(x0[p, 0]), float(x1[p, 0])
        inside = np.sort([(b - a) / (c - a) for b in breaks if min(a, c) < b < max(a, c)])
        assert res.regions[p] == len(inside) + 1
        np.testing.assert_allclose(res.crossings[p], inside, atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_equals_exact_walk_on_deep_mlp_and_conv(seed, digits):
    torch.manual_seed(seed)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 48), nn.ReLU(), nn.Linear(48, 16), nn.ReLU())
    conv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(64, 12), nn.ReLU()).eval()
    x_np, _ = digits
    x = torch.from_numpy((x_np - 8) / 8).float().view(-1, 1, 8, 8)
    x0, x1 = x[[3, 50, 400]], x[[900, 7, 1200]]
    for net in (mlp, conv):
        ref = count_regions_exact(net, x0, x1)
        got = count_regions_batched(net, x0, x1)
        assert (ref.regions > 5).all()
        np.testing.assert_array_equal(got.regions, ref.regions)
        for a, b in zip(got.crossings, ref.crossings):
            np.testing.assert_allclose(a, b, atol=1e-8)
