"""Exact segment walking: breakpoints of 1-D networks, agreement with dense sampling, refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nacscope.analysis.segments import count_regions_dense, count_regions_exact, sample_pairs
from nacscope.errors import OptionError
from nacscope.nets import build_model

torch.set_num_threads(1)


@pytest.mark.parametrize("hidden, seed", [(1, 0), (7, 1), (50, 2), (200, 3)])
def test_one_hidden_layer_1d_equals_breakpoints_plus_one(hidden, seed):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, 3))
    x0 = torch.tensor([[-3.0], [2.5], [0.1], [-0.5]])
    x1 = torch.tensor([[3.0], [-2.0], [0.2], [4.0]])
    res = count_regions_exact(net, x0, x1)
    w = net[0].weight.detach().double().view(-1)
    b = net[0].bias.detach().double()
    breaks = (-b / w).numpy()  # where each hidden unit switches
    for p in range(len(x0)):
        a, c = float(x0[p, 0]), float(x1[p, 0])
        inside = np.sort([(bp - a) / (c - a) for bp in breaks if min(a, c) < bp < max(a, c)])  # as t
        assert res.regions[p] == len(inside) + 1
        np.testing.assert_allclose(res.crossings[p], inside, atol=1e-9)


def _mlp(seed=0):
    torch.manual_seed(seed)
    m = build_model("mlp", 8, in_channels=1, image_size=8, hidden=(24, 16)).eval()
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm1d):
            mod.running_mean.normal_(0, 0.3)
            mod.running_var.uniform_(0.5, 2)
    return m


class SmallResCNN(nn.Module):
    """conv-BN-ReLU, a residual block (two ReLU calls of one module), average pooling, linear + ReLU."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.c1, self.b1 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.c2, self.b2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(4 * 4 * 4, 6)

    def forward(self, x):
        h = self.stem(x)
        out = self.relu(self.b1(self.c1(h)))
        out = self.relu(self.b2(self.c2(out)) + h)
        return F.relu(self.fc(self.pool(out).flatten(1)))


def _cnn(seed=0):
    torch.manual_seed(seed)
    m = SmallResCNN().eval()
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.normal_(0, 0.3)
            mod.running_var.uniform_(0.5, 2)
    return m


@pytest.mark.parametrize("make", [_mlp, pytest.param(_cnn, marks=pytest.mark.slow)], ids=["mlp", "res-cnn"])
def test_exact_bounds_dense_and_equals_it_when_fine(make, digits):
    x_np, _ = digits
    x = torch.from_numpy((x_np - 8) / 8).float().view(-1, 1, 8, 8)
    pairs = sample_pairs(len(x), 3, seed=1)
    x0, x1 = x[pairs[:, 0]], x[pairs[:, 1]]
    net = make()
    exact = count_regions_exact(net, x0, x1)
    assert (exact.regions > 5).all(), "too few regions for a meaningful test"
    coarse = count_regions_dense(net, x0, x1, n=50)
    assert (coarse <= exact.regions).all()
    assert (coarse < exact.regions).any()  # 50 samples do miss regions
    for p in range(len(x0)):
        c = exact.crossings[p]
        gaps = np.diff(np.concatenate([[0.0], c, [1.0]]))
        n_fine = int(math.ceil(2.0 / gaps.min())) + 1  # spacing < half the smallest piece
        assert n_fine < 400_000, "a piece too small to check by sampling"
        fine = count_regions_dense(net, x0[p : p + 1], x1[p : p + 1], n=n_fine)
        assert fine[0] == exact.regions[p]


def test_code_layer_adds_cuts():
    torch.manual_seed(0)
    m = build_model("mlp", 8, in_channels=1, image_size=4, hidden=(8,)).eval()
    x0, x1 = torch.randn(2, 1, 4, 4) * 3, torch.randn(2, 1, 4, 4) * 3
    relu_only = count_regions_exact(m, x0, x1)
    with_code = count_regions_exact(m, x0, x1, layers=["all"])
    assert (with_code.regions >= relu_only.regions).all()
    dense = count_regions_dense(m, x0, x1, n=20000, layers=["all"])
    assert np.array_equal(dense, with_code.regions)


class _Square(nn.Module):
    def forward(self, x):
        return x * x  # not in any list of known functions: caught by the affinity check


@pytest.mark.parametrize(
    "layer, fragment",
    [
        (nn.MaxPool2d(2), "max_pool2d"),
        (nn.GELU(), "gelu"),
        (nn.LeakyReLU(), "leaky_relu"),
        (nn.LayerNorm([4, 8, 8]), "layer_norm"),
        (_Square(), "not affine"),
    ],
)
def test_non_piecewise_linear_networks_are_refused(layer, fragment):
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), layer, nn.Flatten(), nn.LazyLinear(3), nn.ReLU())
    x = torch.randn(2, 1, 8, 8)
    net(x)  # materialise the lazy layer
    with pytest.raises(OptionError, match=fragment):
        count_regions_exact(net, x[:1], x[1:])


def test_train_mode_model_is_analysed_in_eval_mode():
    """BatchNorm uses its running statistics: a model handed over in train mode counts as in eval mode."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU())
    net[1].running_mean.normal_(0, 1.0)
    x0, x1 = torch.randn(3, 4), torch.randn(3, 4)
    a = count_regions_exact(net.train(), x0, x1).regions
    assert net.training and net[0].weight.dtype == torch.float32  # the caller's model is left alone
    b = count_regions_exact(net.eval(), x0, x1).regions
    assert np.array_equal(a, b)


def _wide_1d(seed=0):
    """A 1-D ReLU layer of 200 units: a segment from -3 to 3 crosses many of its breakpoints."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(1, 200), nn.ReLU(), nn.Linear(200, 3))


@pytest.mark.parametrize("every", [1, 7])
def test_progress_follows_the_walk_and_changes_nothing(every):
    from nacscope.analysis.segments import PROGRESS_TOTAL

    x0, x1 = torch.tensor([[-3.0], [2.0]]), torch.tensor([[3.0], [-0.5]])
    net = _wide_1d()
    calls = []
    ref = count_regions_exact(net, x0, x1, method="walk")
    res = count_regions_exact(net, x0, x1, progress=lambda d, t, m: calls.append((d, t, m)), progress_every=every, method="walk")
    np.testing.assert_array_equal(res.regions, ref.regions)
    np.testing.assert_array_equal(res.steps, ref.steps)
    done = [d for d, _, _ in calls]
    assert calls[0][:2] == (0, PROGRESS_TOTAL) and calls[-1][:2] == (PROGRESS_TOTAL, PROGRESS_TOTAL)
    assert all(t == PROGRESS_TOTAL for _, t, _ in calls) and done == sorted(done)
    # One call at the start, one every `every` walk steps, one at the end; the longest segment sets the steps.
    assert len(calls) == 2 + (int(ref.steps.max()) - 1) // every
    assert calls[-1][2] == f"exact walk: {int(ref.steps.sum()) - len(x0):,} boundaries"


def test_a_raising_progress_callback_cancels_the_walk(monkeypatch):
    import nacscope.analysis.segments as seg

    class Stop(Exception):
        pass

    x0, x1 = torch.tensor([[-3.0]]), torch.tensor([[3.0]])
    net = _wide_1d()
    full = count_regions_exact(net, x0, x1, method="walk")
    assert full.steps[0] > 40, "too short a walk to see it stop early"
    passes = []
    real = seg._jvp
    monkeypatch.setattr(seg, "_jvp", lambda *a: passes.append(1) or real(*a))
    seen = []

    def progress(done, total, message):
        seen.append(done)
        if len(seen) == 3:  # the start, then two reports 10 boundaries apart
            raise Stop()

    with pytest.raises(Stop):
        count_regions_exact(net, x0, x1, progress=progress, progress_every=10, method="walk")
    assert len(passes) == 2 + 20  # first point and the affinity check, then 20 steps: nothing after the raise
    assert 0 < seen[-1] < 1000


def test_progress_every_must_be_positive():
    net = nn.Sequential(nn.Linear(1, 3), nn.ReLU())
    with pytest.raises(OptionError, match="progress_every"):
        count_regions_exact(net, torch.zeros(1, 1), torch.ones(1, 1), progress_every=0)
