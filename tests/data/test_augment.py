"""Per-sample augmentation: exact special cases, torchvision-equivalent colour ops, per-sample draws."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from nacscope.data import RECIPES, Augment, Recipe, adjust_colors, crop_flip_theta


def _images(n=6, c=3, s=16, seed=0):
    return torch.randint(0, 256, (n, c, s, s), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_none_recipe_is_normalisation():
    x = _images()
    aug = Augment("none", (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    want = (x.float() / 255 - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) / torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    torch.testing.assert_close(aug(x), want)


def test_full_crop_with_flip_is_exact_mirror():
    x = _images()
    r = Recipe(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip=1.0, jitter_p=0.0, gray_p=0.0)
    out = Augment(r, (0.0,) * 3, (1.0,) * 3)(x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x.flip(-1).float() / 255, atol=1e-5, rtol=0)


def test_crop_parameters_follow_torchvision_distribution():
    import torchvision.transforms as T

    n = 4000
    theta = crop_flip_theta(n, RECIPES["cifar"], "cpu", torch.Generator().manual_seed(0))
    w, h = theta[:, 0, 0].abs(), theta[:, 1, 1]
    area, ratio = w * h, w / h
    assert area.min() >= 0.08 - 1e-6 and area.max() <= 1 + 1e-6
    assert ratio.min() >= 3 / 4 - 1e-5 and ratio.max() <= 4 / 3 + 1e-5
    assert (theta[:, 0, 0] < 0).float().mean().item() == pytest.approx(0.5, abs=0.03)
    # centre keeps the crop inside the image
    assert ((theta[:, 0, 2].abs() + w) <= 1 + 1e-5).all() and ((theta[:, 1, 2].abs() + h) <= 1 + 1e-5).all()
    torch.manual_seed(0)
    tv = torch.tensor([T.RandomResizedCrop.get_params(torch.zeros(3, 256, 256), (0.08, 1.0), (3 / 4, 4 / 3))[2:] for _ in range(n)])
    tv_area = (tv[:, 0] * tv[:, 1]).float() / 256**2
    assert area.mean().item() == pytest.approx(tv_area.mean().item(), abs=0.02)


def test_each_sample_gets_its_own_parameters():
    x = _images(1).expand(64, -1, -1, -1).contiguous()  # 64 copies of one image
    out = Augment("cifar", (0.0,) * 3, (1.0,) * 3)(x, torch.Generator().manual_seed(1))
    flat = out.flatten(1)
    distinct = torch.unique(flat.round(decimals=4), dim=0)
    assert len(distinct) == 64  # a batch-wide draw would give 1
    v1, v2 = Augment("cifar", (0.0,) * 3, (1.0,) * 3).two_views(x[:4], torch.Generator().manual_seed(2))
    assert v1.shape == v2.shape == (4, 3, 16, 16) and not torch.allclose(v1, v2)


def test_same_generator_same_output():
    x = _images()
    a = Augment("cifar", (0.5,) * 3, (0.2,) * 3)
    torch.testing.assert_close(a(x, torch.Generator().manual_seed(5)), a(x, torch.Generator().manual_seed(5)), rtol=0, atol=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_colour_ops_match_torchvision(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(5, 3, 8, 8, generator=g)
    b, c, s = (torch.rand(5, generator=g) * 0.8 + 0.6 for _ in range(3))
    h = torch.rand(5, generator=g) * 0.2 - 0.1
    got = adjust_colors(x, b, c, s, h)
    for i in range(5):
        want = TF.adjust_brightness(x[i], b[i].item())
        want = TF.adjust_contrast(want, c[i].item())
        want = TF.adjust_saturation(want, s[i].item())
        want = TF.adjust_hue(want, h[i].item())
        torch.testing.assert_close(got[i], want, atol=2e-5, rtol=0)


def test_gray_small_recipe_on_one_channel():
    x = _images(8, 1, 8)
    out = Augment("gray-small", (0.3,), (0.4,))(x, torch.Generator().manual_seed(0))
    assert out.shape == (8, 1, 8, 8) and torch.isfinite(out).all()
    assert not math.isclose(out.std().item(), 0.0)


def test_axis_aligned_grid_equals_affine_grid():
    import torch.nn.functional as F

    from nacscope.data.augment import _axis_aligned_grid

    theta = crop_flip_theta(50, RECIPES["cifar"], "cpu", torch.Generator().manual_seed(4))
    for size in (8, 32):
        torch.testing.assert_close(_axis_aligned_grid(theta, size), F.affine_grid(theta, [50, 3, size, size], align_corners=False))


def test_hsv_round_trip():
    from nacscope.data.augment import _hsv_to_rgb, _rgb_to_hsv

    x = torch.rand(4, 3, 9, 9, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(_hsv_to_rgb(*_rgb_to_hsv(x)), x, atol=1e-6, rtol=0)
