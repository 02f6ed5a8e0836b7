"""Encoders and the NAC model: shapes, ReLU-only nonlinearities, head formulas."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nacscope.nets import ARCHS, NACModel, build_model, random_init

SHAPES = {"mlp": (1, 8), "convnet": (3, 16), "resnet18": (3, 32), "resnet50": (3, 32), "vgg16_bn": (3, 32)}
FEATURES = {"mlp": 512, "convnet": 128, "resnet18": 512, "resnet50": 2048, "vgg16_bn": 512}


@pytest.mark.parametrize("arch", ARCHS)
def test_shapes_and_relu_only(arch):
    c, s = SHAPES[arch]
    torch.manual_seed(0)
    model = build_model(arch, 16, in_channels=c, image_size=s).eval()
    x = torch.randn(3, c, s, s)
    out = model(x)
    assert model.feature_dim == FEATURES[arch] and model.bits == 16 and model.arch == arch
    assert out.h.shape == (3, FEATURES[arch]) and out.a.shape == (3, 16) and out.logits.shape == (3, 16)
    # the code head is Linear -> ReLU -> Linear, scaled by 1/sqrt(D); so is the inference head
    lin1, relu, lin2 = model.head
    assert isinstance(lin1, nn.Linear) and isinstance(relu, nn.ReLU) and isinstance(lin2, nn.Linear)
    torch.testing.assert_close(out.a, lin2(torch.relu(lin1(out.h))) / math.sqrt(16))
    p1, _, p2 = model.predictor
    torch.testing.assert_close(out.logits, p2(torch.relu(p1(out.h))) / 4.0)
    torch.testing.assert_close(model.code_preactivation(x), out.a)
    assert torch.equal(model.codes(x), out.a > 0)
    # every nonlinearity module is a ReLU
    banned = (nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.ELU, nn.Hardswish, nn.Softplus)
    assert not any(isinstance(m, banned) for m in model.modules())
    assert any(isinstance(m, nn.ReLU) for m in model.encoder.modules())


def test_resnet_cifar_stem():
    model = build_model("resnet18", 8, in_channels=3, image_size=32)
    conv1 = model.encoder[0]
    assert conv1.kernel_size == (3, 3) and conv1.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.encoder.modules())


def test_random_init_is_seeded_and_leaves_global_rng():
    state = torch.get_rng_state()
    a, b = random_init("mlp", 8, 3, 1, 8), random_init("mlp", 8, 3, 1, 8)
    c = random_init("mlp", 8, 4, 1, 8)
    assert torch.equal(torch.get_rng_state(), state)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["head.0.weight"], sc["head.0.weight"])
    assert isinstance(a, NACModel) and not a.training


def test_unknown_arch():
    with pytest.raises(ValueError, match="unknown arch"):
        build_model("vit", 8, in_channels=3, image_size=32)
