"""Per-sample random augmentation on whole batches, on the batch's device (GPU or CPU, same code).

Every image gets its own random crop, flip, colour-jitter factors and grayscale draw. All random
resized crops and flips of a batch are ONE sampling grid (an axis-aligned ``affine_grid``) and ONE
``grid_sample``; colour jitter is a few elementwise ops with per-sample factors; grayscale is a masked
blend. Both views of a batch are made in one pass (:meth:`Augment.two_views`). Hand-written rather
than kornia's general pipeline because at 32x32 kornia's per-op overhead costs more than the ResNet-50
step (NAC-NOTES §6); ``benchmarks/train_throughput.py`` compares the two on the same batch (CPU, batch
256: 6,672 vs 2,915 views/s, see benchmarks/RESULTS.md).

Differences from torchvision's PIL recipe, by design: the crop is sampled in continuous coordinates and
resampled bilinearly (no integer crop box, no antialias), the four jitter ops run in a fixed order
(brightness, contrast, saturation, hue) instead of a random permutation per image.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

_GRAY = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights


@dataclass(frozen=True)
class Recipe:
    """Augmentation settings (torchvision's names and meanings)."""

    crop_scale: tuple[float, float] = (0.08, 1.0)  # RandomResizedCrop scale (area fraction)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # RandomResizedCrop aspect ratio
    flip: float = 0.5  # horizontal flip probability
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)  # brightness, contrast, saturation, hue
    jitter_p: float = 0.8  # probability of applying colour jitter
    gray_p: float = 0.2  # probability of grayscale

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


RECIPES: dict[str, Recipe] = {
    # The paper's CIFAR recipe (NAC-NOTES §3).
    "cifar": Recipe(),
    # Small grayscale images (8x8 digits, 28x28 MNIST): milder crops, no flips (digits are not mirror
    # symmetric), brightness/contrast only.
    "gray-small": Recipe(crop_scale=(0.5, 1.0), crop_ratio=(3 / 4, 4 / 3), flip=0.0, jitter=(0.4, 0.4, 0.0, 0.0), jitter_p=0.8, gray_p=0.0),
    # No randomness: resize only (evaluation, debugging).
    "none": Recipe(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip=0.0, jitter=(0.0, 0.0, 0.0, 0.0), jitter_p=0.0, gray_p=0.0),
}


def _rand(n: int, device, generator, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    return torch.rand(n, device=device, generator=generator) * (hi - lo) + lo


def _gray(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) luma; a 1-channel image is its own gray."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return (_GRAY[0] * r + _GRAY[1] * g + _GRAY[2] * b).unsqueeze(1)


def crop_flip_theta(n: int, recipe: Recipe, device, generator) -> torch.Tensor:
    """Per-sample affine matrices (n, 2, 3) for random resized crops (+ horizontal flips).

    Like torchvision: 10 tries of (area, log-ratio) per sample, the first that fits is used, else the
    whole image. Output pixel u in [-1, 1] reads input x = t + s·u (normalised coordinates).
    """
    tries = 10
    area = _rand(n * tries, device, generator, *recipe.crop_scale).view(n, tries)
    lo, hi = math.log(recipe.crop_ratio[0]), math.log(recipe.crop_ratio[1])
    ratio = torch.exp(_rand(n * tries, device, generator, lo, hi)).view(n, tries)
    w, h = torch.sqrt(area * ratio), torch.sqrt(area / ratio)  # (n, tries) fractions of width/height
    ok = (w <= 1) & (h <= 1)
    first = ok.to(torch.uint8).argmax(1, keepdim=True)  # (n, 1) first fitting try
    any_ok = ok.any(1)
    w = torch.where(any_ok, w.gather(1, first).squeeze(1), torch.ones_like(any_ok, dtype=w.dtype))  # (n,)
    h = torch.where(any_ok, h.gather(1, first).squeeze(1), torch.ones_like(any_ok, dtype=h.dtype))
    cx = _rand(n, device, generator) * (1 - w) + w / 2  # crop centre in [0, 1]
    cy = _rand(n, device, generator) * (1 - h) + h / 2
    sign = torch.where(_rand(n, device, generator) < recipe.flip, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0] = w * sign
    theta[:, 0, 2] = 2 * cx - 1
    theta[:, 1, 1] = h
    theta[:, 1, 2] = 2 * cy - 1
    return theta


def _rgb_to_hsv(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r, g, b = x.unbind(1)  # each (N, H, W)
    maxc = torch.maximum(torch.maximum(r, g), b)  # elementwise: faster than a strided max over dim 1
    minc = torch.minimum(torch.minimum(r, g), b)
    delta = maxc - minc
    s = delta / maxc.clamp_min(1e-8)
    d = torch.where(delta > 0, delta, torch.ones_like(delta))
    rc, gc, bc = (maxc - r) / d, (maxc - g) / d, (maxc - b) / d
    hue = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    hue = torch.where(delta > 0, (hue / 6.0) % 1.0, torch.zeros_like(hue))
    return hue, s, maxc


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(N, H, W) hue in turns, saturation, value -> (N, 3, H, W), without per-sector branching.

    Channel c of RGB is ``v - v*s*clamp(min(k, 4 - k), 0, 1)`` with ``k = (n_c + 6h) mod 6``, n = (5, 3, 1).
    """
    # offsets made on the device (arange), not copied from the host: a host->device copy syncs the stream
    offsets = (5 - 2 * torch.arange(3, device=h.device, dtype=h.dtype)).view(1, 3, 1, 1)
    k = (offsets + 6.0 * h.unsqueeze(1)) % 6.0  # (N, 3, H, W)
    ramp = torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)
    v, s = v.unsqueeze(1), s.unsqueeze(1)
    return v - v * s * ramp


def adjust_colors(
    x: torch.Tensor,
    brightness: torch.Tensor | None = None,
    contrast: torch.Tensor | None = None,
    saturation: torch.Tensor | None = None,
    hue: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-sample colour adjustments of [0, 1] images (N, C, H, W), in torchvision's definitions.

    Factors are (N,) tensors (None = skip): brightness/contrast/saturation multiply (1 = unchanged), hue is a
    shift in turns in [-0.5, 0.5]. Applied in the order brightness, contrast, saturation, hue, each clamped.
    """
    n, c = x.shape[:2]
    view = (n, 1, 1, 1)
    if brightness is not None:
        x = (x * brightness.view(view)).clamp(0, 1)
    if contrast is not None:
        m = _gray(x).mean(dim=(1, 2, 3), keepdim=True)  # (N, 1, 1, 1)
        x = ((x - m) * contrast.view(view) + m).clamp(0, 1)
    if saturation is not None and c == 3:
        g = _gray(x)
        x = ((x - g) * saturation.view(view) + g).clamp(0, 1)
    if hue is not None and c == 3:
        hh, ss, vv = _rgb_to_hsv(x)
        x = _hsv_to_rgb((hh + hue.view(n, 1, 1)) % 1.0, ss, vv)
    return x


def jitter_factors(n: int, recipe: Recipe, device, generator) -> dict[str, torch.Tensor | None]:
    """Per-sample colour-jitter parameters: (n,) factors (1 / shift 0 where the jitter is not applied)."""
    bri, con, sat, hue = recipe.jitter
    apply = _rand(n, device, generator) < recipe.jitter_p  # (n,)

    def factor(strength: float) -> torch.Tensor | None:
        if strength <= 0:
            return None
        f = _rand(n, device, generator, max(0.0, 1 - strength), 1 + strength)
        return torch.where(apply, f, torch.ones_like(f))

    out = {"brightness": factor(bri), "contrast": factor(con), "saturation": factor(sat), "hue": None}
    if hue > 0:
        out["hue"] = torch.where(apply, _rand(n, device, generator, -hue, hue), torch.zeros(n, device=device))
    return out


def color_jitter(x: torch.Tensor, recipe: Recipe, generator) -> torch.Tensor:
    """Random per-sample colour jitter (probability ``recipe.jitter_p`` per image) of [0, 1] images."""
    return adjust_colors(x, **jitter_factors(x.shape[0], recipe, x.device, generator))


def _axis_aligned_grid(theta: torch.Tensor, size: int) -> torch.Tensor:
    """``F.affine_grid(theta, (N, C, S, S), align_corners=False)`` for theta without rotation/shear.

    Two broadcast multiply-adds instead of a batched matrix product over every pixel (3x less time on
    the CPU for a 256 x 32 x 32 batch); ``tests/data/test_augment.py`` checks it equals affine_grid.
    """
    u = (torch.arange(size, device=theta.device, dtype=theta.dtype) * 2 + 1) / size - 1  # (S,) pixel centres
    gx = theta[:, 0, 0, None] * u + theta[:, 0, 2, None]  # (N, S) along width
    gy = theta[:, 1, 1, None] * u + theta[:, 1, 2, None]  # (N, S) along height
    n = theta.shape[0]
    return torch.stack([gx[:, None, :].expand(n, size, size), gy[:, :, None].expand(n, size, size)], dim=-1)


def apply_augmentation(
    x: torch.Tensor,
    theta: torch.Tensor | None,
    size: int,
    colors: dict[str, torch.Tensor | None],
    gray: torch.Tensor | None,
    mean: torch.Tensor,
    std: torch.Tensor,
) -> torch.Tensor:
    """The deterministic part of :class:`Augment` (no random draws, so it can be ``torch.compile``'d).

    Args:
        x: uint8 (N, C, H, W).  theta: (N, 2, 3) crop/flip matrices or None.  size: output side.
        colors: per-sample factors for :func:`adjust_colors`.  gray: (N,) bool or None.
        mean, std: (1, C, 1, 1) normalisation.
    """
    img = x.float() / 255.0  # (N, C, H, W)
    if theta is not None:
        grid = _axis_aligned_grid(theta, size)  # (N, S, S, 2)
        img = F.grid_sample(img, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    img = adjust_colors(img, **colors)
    if gray is not None:
        img = torch.where(gray.view(-1, 1, 1, 1), _gray(img).expand(-1, 3, -1, -1), img)
    return (img - mean) / std


class Augment:
    """Random per-sample augmentation + normalisation of uint8 batches.

    Random parameters are drawn for every image (:meth:`sample`), then applied by the pure function
    :func:`apply_augmentation`, which ``compile=True`` wraps in ``torch.compile`` (fuses the elementwise
    colour ops on a GPU).

    Args:
        recipe: a :class:`Recipe` or a name in :data:`RECIPES`.
        mean, std: per-channel normalisation (the dataset's).
        size: output side length (default: the input's).
        compile: compile the deterministic part.
    """

    def __init__(self, recipe: Recipe | str, mean, std, size: int | None = None, compile: bool = False):
        self.recipe = RECIPES[recipe] if isinstance(recipe, str) else recipe
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.size = size
        self._apply = torch.compile(apply_augmentation, dynamic=False) if compile else apply_augmentation

    def sample(self, n: int, channels: int, height: int, device, generator) -> dict:
        """All random parameters for ``n`` images: theta, colour factors, grayscale mask."""
        r = self.recipe
        size = self.size or height
        identity_crop = r.crop_scale == (1.0, 1.0) and r.crop_ratio == (1.0, 1.0) and r.flip == 0 and size == height
        theta = None if identity_crop else crop_flip_theta(n, r, device, generator)
        if r.jitter_p > 0 and any(v > 0 for v in r.jitter):
            colors = jitter_factors(n, r, device, generator)
        else:
            colors = {"brightness": None, "contrast": None, "saturation": None, "hue": None}
        gray = _rand(n, device, generator) < r.gray_p if r.gray_p > 0 and channels == 3 else None
        return {"theta": theta, "size": size, "colors": colors, "gray": gray}

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 (N, C, H, W) on any device -> float32 (N, C, S, S) normalised, one draw per image."""
        if self.mean.device != x.device:
            self.mean, self.std = self.mean.to(x.device), self.std.to(x.device)
        params = self.sample(x.shape[0], x.shape[1], x.shape[2], x.device, generator)
        return self._apply(x, params["theta"], params["size"], params["colors"], params["gray"], self.mean, self.std)

    def two_views(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independently augmented views of each image, made in one pass: ((B,...), (B,...))."""
        both = self(torch.cat([x, x], dim=0), generator)  # (2B, C, S, S)
        return both[: len(x)], both[len(x) :]
