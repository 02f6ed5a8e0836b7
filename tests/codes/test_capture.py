"""ReLU sites and their captured bits, checked against manual forward passes written here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nacscope.codes.capture import (
    _pack_bits_native,
    capture_bits,
    capture_preactivations,
    default_sites,
    list_sites,
    pack_bits_torch,
    select_sites,
)
from nacscope.codes.format import unpack_bits
from nacscope.errors import OptionError
from nacscope.nets import build_model

torch.set_num_threads(1)


def _randomize_bn(model: nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial running statistics and affine parameters."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


def _bn(x: torch.Tensor, m: nn.modules.batchnorm._BatchNorm) -> torch.Tensor:
    """Eval-mode BatchNorm by its formula (channel axis 1)."""
    shape = (1, -1) + (1,) * (x.dim() - 2)
    inv = torch.rsqrt(m.running_var + m.eps).view(shape)
    return (x - m.running_mean.view(shape)) * inv * m.weight.view(shape) + m.bias.view(shape)


def _bits(z: torch.Tensor) -> np.ndarray:
    return (z.reshape(len(z), -1) > 0).numpy().astype(np.uint8)


def _check(model: nn.Module, x: torch.Tensor, expected: list[tuple[str, torch.Tensor]]) -> None:
    """``list_sites`` names/units and ``capture_bits`` equal the manual pre-activations."""
    sites = list_sites(model, x[:2])
    assert [s.name for s in sites] == [n for n, _ in expected]
    assert [s.units for s in sites] == [z[0].numel() for _, z in expected]
    packed, _ = capture_bits(model, x, sites)
    for (name, z), site in zip(expected, sites):
        got = unpack_bits(packed[name].numpy(), site.units)
        want = _bits(z)
        # Pre-activations within float rounding of zero may legitimately differ in sign.
        near_zero = (z.reshape(len(z), -1).abs() < 1e-5).numpy()
        assert np.array_equal(got[~near_zero], want[~near_zero]), name
        assert 0 < want.mean() < 1, f"{name}: degenerate layer, test would be weak"


@pytest.mark.parametrize("units", [1, 7, 8, 9, 64, 100, 2049])
def test_pack_bits_torch_equals_numpy(units):
    bits = torch.rand(5, units, generator=torch.Generator().manual_seed(units)) > 0.5
    want = np.packbits(bits.numpy(), axis=1, bitorder="big")
    assert np.array_equal(pack_bits_torch(bits).numpy(), want)
    assert np.array_equal(_pack_bits_native(bits).numpy(), want)  # the GPU path, run on the CPU


def test_mlp_sites_and_bits_match_manual_forward(digits):
    x_np, _ = digits
    x = torch.from_numpy(x_np[:64] / 16.0).float().view(-1, 1, 8, 8)
    model = build_model("mlp", 16, in_channels=1, image_size=8, hidden=(32, 24)).eval()
    _randomize_bn(model)
    enc = model.encoder
    expected = []
    with torch.no_grad():
        h = x.flatten(1)
        for lin, bn in ((enc[1], enc[2]), (enc[4], enc[5])):
            z = _bn(h @ lin.weight.T + lin.bias, bn)
            expected.append(z)
            h = torch.clamp(z, min=0)
        z = h @ model.head[0].weight.T + model.head[0].bias
        expected.append(z)
        a = (torch.clamp(z, min=0) @ model.head[2].weight.T + model.head[2].bias) / math.sqrt(16)
    names = ["encoder.3", "encoder.6", "head.1", "code"]
    _check(model, x, list(zip(names, expected + [a])))
    assert [s.name for s in default_sites(list_sites(model, x[:2]))] == ["encoder.6", "head.1", "code"]


def _basic_block(x, blk, pre):
    """torchvision BasicBlock by hand: relu is called twice."""
    out = _bn(F.conv2d(x, blk.conv1.weight, stride=blk.conv1.stride, padding=1), blk.bn1)
    pre.append(out)
    out = _bn(F.conv2d(out.clamp(min=0), blk.conv2.weight, padding=1), blk.bn2)
    idn = x
    if blk.downsample is not None:
        conv, bn = blk.downsample
        idn = _bn(F.conv2d(x, conv.weight, stride=conv.stride), bn)
    out = out + idn
    pre.append(out)
    return out.clamp(min=0)


def test_resnet18_every_call_of_reused_relu(digits):
    x_np, _ = digits
    img = torch.from_numpy(x_np[:6] / 16.0).float().view(-1, 1, 8, 8)
    x = F.interpolate(img, size=16, mode="bilinear").repeat(1, 3, 1, 1) - 0.3  # (6, 3, 16, 16)
    torch.manual_seed(0)
    model = build_model("resnet18", 8, in_channels=3, image_size=16).eval()
    _randomize_bn(model)
    enc = model.encoder
    pre: list[torch.Tensor] = []
    with torch.no_grad():
        z = _bn(F.conv2d(x, enc[0].weight, padding=1), enc[1])
        pre.append(z)
        h = z.clamp(min=0)
        for stage in enc[3:7]:
            for blk in stage:
                h = _basic_block(h, blk, pre)
        h = h.mean((2, 3))
        z = h @ model.head[0].weight.T + model.head[0].bias
        pre.append(z)
        a = (z.clamp(min=0) @ model.head[2].weight.T + model.head[2].bias) / math.sqrt(8)
    names = ["encoder.2"]
    for s in range(3, 7):
        for b in range(2):
            names += [f"encoder.{s}.{b}.relu:1", f"encoder.{s}.{b}.relu:2"]
    names += ["head.1", "code"]
    _check(model, x, list(zip(names, pre + [a])))


def test_bottleneck_three_calls():
    import torchvision

    blk = torchvision.models.resnet.Bottleneck(16, 4).eval()  # in 16, out 4*4 = 16: no downsample
    _randomize_bn(blk, seed=3)
    x = torch.randn(3, 16, 5, 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        z1 = _bn(F.conv2d(x, blk.conv1.weight), blk.bn1)
        z2 = _bn(F.conv2d(z1.clamp(min=0), blk.conv2.weight, padding=1), blk.bn2)
        z3 = _bn(F.conv2d(z2.clamp(min=0), blk.conv3.weight), blk.bn3) + x
    _check(blk, x, [("relu:1", z1), ("relu:2", z2), ("relu:3", z3)])


class _Functional(nn.Module):
    """ReLUs by every route: a reused module, F.relu, torch.relu, Tensor.relu_ (in place)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3, self.fc4 = (nn.Linear(6, 6) for _ in range(4))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        z1 = self.fc1(x)
        h = F.relu(z1)
        z2 = self.fc2(h)
        h = self.act(z2)
        z3 = self.fc3(h)
        h = torch.relu(z3)
        z4 = self.fc4(h)
        h = self.act(z4 + 0.0)
        return h.relu_() - 0.5


def test_functional_calls_are_sites():
    torch.manual_seed(0)
    m = _Functional().eval()
    x = torch.randn(50, 6)
    with torch.no_grad():
        zs = [m.fc1(x)]
        zs.append(m.fc2(zs[-1].clamp(min=0)))
        zs.append(m.fc3(zs[-1].clamp(min=0)))
        zs.append(m.fc4(zs[-1].clamp(min=0)))
        zs.append(zs[-1].clamp(min=0))  # the final relu_ sees an already rectified tensor
    sites = list_sites(m, x[:2])
    assert [s.name for s in sites] == ["F.relu:1", "act:1", "F.relu:2", "act:2", "F.relu:3"]
    assert [s.functional for s in sites] == [True, False, True, False, True]
    pre = capture_preactivations(m, x, sites)
    for site, z in zip(sites, zs):
        torch.testing.assert_close(pre[site.name], z)
    packed, _ = capture_bits(m, x, select_sites(sites, ["act:*"]))
    assert sorted(packed) == ["act:1", "act:2"]
    assert np.array_equal(unpack_bits(packed["act:2"].numpy(), 6), _bits(zs[3]))


@pytest.mark.parametrize(
    "patterns, want",
    [
        (None, ["encoder.6", "head.1", "code"]),
        (["all"], ["encoder.3", "encoder.6", "head.1", "code"]),
        (["encoder.*"], ["encoder.3", "encoder.6"]),
        (["code", "encoder.3"], ["encoder.3", "code"]),
    ],
)
def test_select_sites(patterns, want):
    model = build_model("mlp", 8, in_channels=1, image_size=4, hidden=(8, 8)).eval()
    sites = list_sites(model, torch.zeros(2, 1, 4, 4))
    assert [s.name for s in select_sites(sites, patterns)] == want


def test_pattern_that_matches_nothing_lists_sites():
    model = build_model("mlp", 8, in_channels=1, image_size=4, hidden=(8, 8)).eval()
    sites = list_sites(model, torch.zeros(2, 1, 4, 4))
    with pytest.raises(OptionError, match="matches no site; available: encoder.3, encoder.6, head.1, code"):
        select_sites(sites, ["layer9*"])
