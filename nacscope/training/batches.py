"""Where the training loop's view pairs come from: resident tensors (small sets) or a streaming folder.

* In-memory datasets (digits, CIFAR, STL, arrays): the whole uint8 set lives on the training device and
  :class:`nacscope.data.Augment` draws each batch's views there (the loop's permutation picks the rows).
* ``folder:PATH`` and ``imagenet`` stream: only the file list is in memory, images are decoded and augmented
  (:func:`nacscope.data.stream.imagenet_two_views` at ``--crop``) in ``--workers`` DataLoader workers, and
  each rank reads its :class:`~nacscope.data.stream.ShardSampler` shard; resuming mid-epoch restarts the shard
  at the next batch, and the augmentations are seeded per sample, so the resumed epoch is the same epoch.
  No quick evaluation runs on streaming sets (it needs in-memory sets). ``load_dataset("folder:PATH")``, used
  by ``dump``/``analyze``, still decodes the folder into memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from nacscope.data.stream import IMAGENET_MEAN, IMAGENET_STD


def is_streaming(name: str) -> bool:
    """True for the datasets the training loop streams from disk."""
    return name.startswith("folder:") or name == "imagenet"


@dataclass
class StreamMeta:
    """What the loop needs to know of a streaming training set (the in-memory ImageData's attributes)."""

    n: int
    image_size: int
    channels: int = 3
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    labels: None = None


class ResidentViews:
    """Views of resident uint8 images (N, C, H, W), augmented on the device."""

    def __init__(self, images: torch.Tensor, augment, device):
        self.images = images.to(device)
        self.augment = augment

    def epoch(self, epoch: int, perm: torch.Tensor, start_batch: int, steps: int, batch_size: int, rank: int,
              local_b: int, generator) -> Iterator[torch.Tensor]:
        """(2b, C, H, W) views of this rank's slice of each global batch of ``perm``, from ``start_batch``."""
        for b in range(start_batch, steps):
            batch = perm[b * batch_size : (b + 1) * batch_size]
            local = batch[rank * local_b : (rank + 1) * local_b]
            yield self.augment(torch.cat([self.images[local], self.images[local]]), generator)


class StreamViews:
    """Views decoded and augmented in DataLoader workers; the rank's shard of ``ShardSampler``."""

    def __init__(self, cfg, rank: int, world: int, device):
        from nacscope.data.stream import imagenet_two_views, open_index, stream_loader

        self.index = open_index(cfg.dataset, "train", cfg.root)
        self.loader = stream_loader(self.index, imagenet_two_views(cfg.crop), cfg.batch_size // world, rank=rank,
                                    world=world, seed=cfg.seed, workers=cfg.workers, drop_last=True)
        self.device = device
        self.meta = StreamMeta(len(self.index), cfg.crop)

    def epoch(self, epoch: int, perm, start_batch: int, steps: int, batch_size: int, rank: int, local_b: int,
              generator) -> Iterator[torch.Tensor]:
        from nacscope.data.stream import set_epoch

        set_epoch(self.loader, epoch, start_batch * local_b)
        it = iter(self.loader)
        for _ in range(start_batch, steps):
            x, _ = next(it)  # (b, 2, C, H, W)
            x = x.to(self.device, non_blocking=True)
            yield torch.cat([x[:, 0], x[:, 1]])  # (2b, C, H, W): view 1 rows, then view 2 rows
        del it
