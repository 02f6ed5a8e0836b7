"""The NAC/SimCLR model: encoder -> code head (and inference head), NAC-NOTES §1."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from nacscope.nets.encoders import ARCHS, build_encoder


class NACOutput(NamedTuple):
    """What one forward pass gives the training step."""

    h: torch.Tensor  # (B, F) encoder features
    a: torch.Tensor  # (B, D) code-layer pre-activations, scaled by 1/sqrt(D); the code is a > 0
    logits: torch.Tensor  # (B, D) inference-head logits from h (predict the *other* view's code)


class NACModel(nn.Module):
    """Encoder ``f``, code head ``a = W2·ReLU(W1 h + b1) + b2`` (/ sqrt D) and inference head ``r``.

    Attributes:
        encoder: x (B, C, H, W) -> h (B, F).
        head: ``Sequential(Linear(F, head_dim), ReLU, Linear(head_dim, D))``; its output / sqrt(D) is ``a``.
        predictor: ``Sequential(Linear(F, pred_dim), ReLU, Linear(pred_dim, D))``; output / sqrt(D) are
            the logits of the partner view's noisy code.
        bits: D.  feature_dim: F.  arch: the encoder's name.
    """

    def __init__(
        self,
        encoder: nn.Module,
        feature_dim: int,
        bits: int,
        arch: str,
        head_dim: int | None = None,
        pred_dim: int | None = None,
    ):
        super().__init__()
        if bits < 1:
            raise ValueError(f"bits must be >= 1, got {bits}")
        head_dim = head_dim or feature_dim
        pred_dim = pred_dim or feature_dim
        self.encoder = encoder
        self.head = nn.Sequential(nn.Linear(feature_dim, head_dim), nn.ReLU(inplace=True), nn.Linear(head_dim, bits))
        self.predictor = nn.Sequential(
            nn.Linear(feature_dim, pred_dim), nn.ReLU(inplace=True), nn.Linear(pred_dim, bits)
        )
        self.bits, self.feature_dim, self.arch = bits, feature_dim, arch
        self.head_dim, self.pred_dim = head_dim, pred_dim
        self.scale = 1.0 / math.sqrt(bits)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder features h (B, F)."""
        return self.encoder(x)

    def code_from_features(self, h: torch.Tensor) -> torch.Tensor:
        """Code-layer pre-activation a (B, D) from features h (B, F)."""
        return self.head(h) * self.scale

    def code_preactivation(self, x: torch.Tensor) -> torch.Tensor:
        """a (B, D), scaled by 1/sqrt(D); the activation code is ``a > 0``."""
        return self.code_from_features(self.features(x))

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Binary activation codes (B, D) as bool."""
        return self.code_preactivation(x) > 0

    def forward(self, x: torch.Tensor) -> NACOutput:
        h = self.features(x)  # (B, F)
        return NACOutput(h, self.code_from_features(h), self.predictor(h) * self.scale)


def build_model(
    arch: str,
    bits: int,
    *,
    in_channels: int,
    image_size: int,
    head_dim: int | None = None,
    pred_dim: int | None = None,
    **kw,
) -> NACModel:
    """Build a NACModel.

    Args:
        arch: one of ``mlp``, ``convnet``, ``resnet18``, ``resnet50``, ``vgg16_bn``.
        bits: code length D.
        in_channels, image_size: input shape (C, H=W).
        head_dim, pred_dim: hidden widths of code and inference heads (default: the feature dim).
        **kw: encoder options (``hidden`` for mlp, ``widths`` for convnet).
    """
    if arch == "vgg16":
        arch = "vgg16_bn"
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    encoder, feature_dim = build_encoder(arch, in_channels, image_size, **kw)
    return NACModel(encoder, feature_dim, bits, arch, head_dim=head_dim, pred_dim=pred_dim)


def random_init(arch: str, bits: int, seed: int, in_channels: int, image_size: int, **kw) -> NACModel:
    """An untrained model with seeded weights (the baseline for comparisons), in eval mode."""
    devices = []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        model = build_model(arch, bits, in_channels=in_channels, image_size=image_size, **kw)
    return model.eval()
