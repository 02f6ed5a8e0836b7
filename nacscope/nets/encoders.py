"""Encoders ``x -> h`` (B, F). Every nonlinearity is a ReLU module (hooks can see every call).

The ResNets use the CIFAR stem (3x3 stride-1 first conv, no max-pool) and are laid out exactly like the
authors' encoders: an ``nn.Sequential`` of torchvision's ResNet children without ``fc`` and max-pool
(indices 0 conv1, 1 bn1, 2 relu, 3-6 layer1-4, 7 avgpool) plus a parameter-free Flatten, so that their
``encoder.*`` keys load unchanged. ``vgg16_bn`` is torchvision's, classifier removed, 1x1 average pooling.
"""

from __future__ import annotations

import torch
from torch import nn

from nacscope.train_options import ARCHS  # noqa: E402,F401


def mlp_encoder(in_channels: int, image_size: int, hidden: tuple[int, ...] = (512, 512)) -> tuple[nn.Module, int]:
    """Flatten -> [Linear -> BatchNorm1d -> ReLU] x len(hidden). Returns (module, feature dim)."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_channels * image_size * image_size
    for h in hidden:
        layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(inplace=True)]
        width = h
    return nn.Sequential(*layers), width


def conv_encoder(in_channels: int, widths: tuple[int, ...] = (32, 64, 128)) -> tuple[nn.Module, int]:
    """A small ReLU convnet: 3x3 conv-BN-ReLU blocks, stride 2 after the first, global average pool."""
    layers: list[nn.Module] = []
    c = in_channels
    for i, w in enumerate(widths):
        layers += [
            nn.Conv2d(c, w, 3, stride=1 if i == 0 else 2, padding=1, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
        ]
        c = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), c


def resnet_encoder(arch: str, in_channels: int) -> tuple[nn.Module, int]:
    """torchvision ResNet-18/50 with the CIFAR stem, as the authors' ``encoder`` Sequential."""
    import torchvision

    net = getattr(torchvision.models, arch)(weights=None)
    net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    feature_dim = net.fc.in_features
    children = [m for name, m in net.named_children() if name not in ("fc", "maxpool")]
    return nn.Sequential(*children, nn.Flatten()), feature_dim


class _VGGFeatures(nn.Module):
    """torchvision vgg16_bn without classifier and with 1x1 average pooling: (B, 512)."""

    def __init__(self, in_channels: int):
        super().__init__()
        import torchvision

        vgg = torchvision.models.vgg16_bn(weights=None)
        if in_channels != 3:
            vgg.features[0] = nn.Conv2d(in_channels, 64, kernel_size=3, padding=1)
        self.features = vgg.features
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.features(x)), 1)  # (B, 512)


def build_encoder(arch: str, in_channels: int, image_size: int, **kw) -> tuple[nn.Module, int]:
    """Build the encoder named ``arch``; returns (module mapping (B, C, H, W) -> (B, F), F)."""
    if arch == "mlp":
        return mlp_encoder(in_channels, image_size, **kw)
    if arch == "convnet":
        return conv_encoder(in_channels, **kw)
    if arch in ("resnet18", "resnet50"):
        return resnet_encoder(arch, in_channels)
    if arch in ("vgg16_bn", "vgg16"):
        return _VGGFeatures(in_channels), 512
    raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
