"""The in-memory image dataset every loader returns: uint8 images (N, C, H, W), labels, normalisation."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

@dataclass
class ImageData:
    """Images as uint8 (N, C, H, W) with labels and normalisation constants.

    Attributes:
        images: uint8 tensor (N, C, H, W).
        labels: int64 tensor (N,), or None when unlabelled.
        class_names: one name per label value.
        mean, std: per-channel normalisation on the [0, 1] scale.
        name: dataset name as given.  split: ``train`` / ``test`` / ``all``.
        indices: int64 (N,) index of each sample in the source dataset.
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    class_names: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str
    split: str
    indices: torch.Tensor = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.indices is None:
            self.indices = torch.arange(len(self.images))

    def __len__(self) -> int:
        return len(self.images)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) -> float32 normalised with this dataset's mean/std."""
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return (x.float() / 255.0 - mean) / std

    def subset(self, idx: torch.Tensor, split: str | None = None) -> "ImageData":
        """The samples at positions ``idx``."""
        return ImageData(
            self.images[idx],
            None if self.labels is None else self.labels[idx],
            self.class_names,
            self.mean,
            self.std,
            self.name,
            split or self.split,
            self.indices[idx],
        )


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images on the [0, 1] scale."""
    x = images.double().div(255.0).transpose(0, 1).reshape(images.shape[1], -1)  # (C, N*H*W)
    return tuple(round(float(v), 4) for v in x.mean(1)), tuple(round(max(float(v), 1e-3), 4) for v in x.std(1))
