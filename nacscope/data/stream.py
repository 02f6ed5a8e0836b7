"""Streaming image folders: the file list in memory, images decoded lazily in DataLoader workers.

Layouts:
    ``folder:PATH``  ImageFolder: ``PATH/CLASS/IMAGE.ext``; labels are the sorted class-folder names' positions.
    ``imagenet`` with ``root``: ``ROOT/train/WNID/*.JPEG`` and ``ROOT/val/WNID/*.JPEG`` (the validation images
        sorted into class folders, as torchvision's ``ImageNet`` and most ImageNet copies keep them); the class
        index is the sorted WNIDs of ``train`` (0..999 for ImageNet-1K), applied to ``val`` as well.

Memory: one :class:`FolderIndex` holds N paths as one NumPy byte-string array and N int64 labels, about
(path length + 8) bytes per image; pixels exist only for the images of the batches in flight.
Sharding: :class:`ShardSampler` has :class:`torch.utils.data.DistributedSampler`'s semantics (the same
permutation for a given seed and epoch, padding to a multiple of the world size, rank ``r`` takes
positions ``r, r + world, ...``) plus a start offset for resuming mid-epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from nacscope.errors import DataError

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
#: ImageNet's per-channel statistics on the [0, 1] scale (the constants torchvision's models use).
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class FolderIndex:
    """The file list of an image folder: ``paths`` (N,) byte strings, ``labels`` (N,) int64, class names."""

    paths: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    name: str

    def __len__(self) -> int:
        return len(self.paths)


def scan_folder(path: str | Path, class_names: list[str] | None = None, name: str | None = None) -> FolderIndex:
    """Index ``path/CLASS/IMAGE`` without opening any image; ``class_names`` fixes the label order (ImageNet val)."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"image folder not found: {path}")
    found = sorted(e.name for e in _scandir(path) if e.is_dir())
    classes = class_names if class_names is not None else found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DataError(f"{path}: class folder {unknown[0]!r} is not among the {len(classes)} training classes")
    paths: list[bytes] = []
    labels: list[int] = []
    for i, c in enumerate(classes):
        if not (path / c).is_dir():
            continue
        files = sorted(e.name for e in _scandir(path / c) if e.is_file() and Path(e.name).suffix.lower() in IMAGE_EXTS)
        paths.extend(str(path / c / f).encode() for f in files)
        labels.extend([i] * len(files))
    if not paths:
        raise DataError(f"{path} holds no images in class subfolders (expected {path}/CLASS/IMAGE.jpg)")
    return FolderIndex(np.array(paths, dtype=np.bytes_), np.array(labels, dtype=np.int64), list(classes),
                       name or f"folder:{path}")


def _scandir(path: Path):
    import os

    with os.scandir(path) as it:
        return list(it)


def imagenet_index(root: str | Path, split: str) -> FolderIndex:
    """ImageNet's ``train``/``val`` layout under ``root``; the class index comes from ``train``'s WNIDs."""
    root = Path(root)
    if split not in ("train", "val", "test"):
        raise DataError(f"unknown ImageNet split {split!r}; use train or val")
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise DataError(f"ImageNet not found: expected {train_dir}/WNID/*.JPEG (pass --root)")
    wnids = sorted(e.name for e in _scandir(train_dir) if e.is_dir())
    sub = "train" if split == "train" else "val"
    return scan_folder(root / sub, class_names=wnids, name="imagenet")


def open_index(name: str, split: str, root: str | Path | None = None) -> FolderIndex:
    """The :class:`FolderIndex` of ``folder:PATH`` (the whole folder; no train/test split) or ``imagenet``."""
    if name.startswith("folder:"):
        return scan_folder(Path(name[len("folder:"):]).expanduser())
    if name == "imagenet":
        if root is None:
            raise DataError("imagenet needs --root, the folder holding train/ and val/")
        return imagenet_index(root, split)
    raise DataError(f"{name!r} is not a streaming dataset; use folder:PATH or imagenet")


class StreamingImages(torch.utils.data.Dataset):
    """Item ``i`` is ``(transform(image_i), label_i)``; the image is opened and decoded in the worker that asks.

    ``transform`` takes a PIL RGB image and returns a tensor; it runs in the worker process. With ``seed``
    set, the transform of item ``i`` in epoch ``epoch`` runs under torch's RNG seeded from (seed, epoch, i)
    (the caller's RNG is left untouched): the augmentations do not depend on the number of workers or on
    where an epoch was resumed.
    """

    def __init__(self, index: FolderIndex, transform: Callable, seed: int | None = None):
        self.index, self.transform, self.seed, self.epoch = index, transform, seed, 0

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        from PIL import Image

        path = self.index.paths[i].decode()
        try:
            with Image.open(path) as im:
                img = im.convert("RGB")
        except OSError as exc:
            raise DataError(f"cannot decode {path}: {exc}") from None
        if self.seed is None:
            return self.transform(img), int(self.index.labels[i])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(((self.seed * 1_000_003 + self.epoch) * 10_000_019 + int(i)) % (2**63))
            return self.transform(img), int(self.index.labels[i])


class ShardSampler(torch.utils.data.Sampler):
    """``DistributedSampler``'s order (seed + epoch, padded to a multiple of ``world``, stride ``world``),
    restartable at ``start`` (a position in this rank's shard, for resuming mid-epoch)."""

    def __init__(self, n: int, rank: int = 0, world: int = 1, *, seed: int = 0, shuffle: bool = True):
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is not in [0, {world})")
        self.n, self.rank, self.world, self.seed, self.shuffle = n, rank, world, seed, shuffle
        self.epoch, self.start = 0, 0
        self.per_rank = -(-n // world)  # ceil(n / world)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def order(self) -> torch.Tensor:
        """This rank's sample indices for the current epoch, (per_rank,) int64, from position 0."""
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            idx = torch.randperm(self.n, generator=g)
        else:
            idx = torch.arange(self.n)
        pad = self.per_rank * self.world - self.n
        if pad:
            idx = torch.cat([idx, idx.repeat(-(-pad // self.n))[:pad]])  # wrap around, as DistributedSampler
        return idx[self.rank :: self.world]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.start :].tolist())

    def __len__(self) -> int:
        return self.per_rank - self.start


def imagenet_two_views(size: int = 224, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> Callable:
    """The MoCo v2 / BYOL pair recipe, as a PIL -> (2, 3, size, size) float tensor transform.

    RandomResizedCrop(size, scale 0.2–1.0), horizontal flip 0.5, ColorJitter(0.4, 0.4, 0.4, 0.1) with
    probability 0.8, grayscale 0.2, Gaussian blur (σ 0.1–2.0, kernel 23 at 224) with probability 0.5,
    solarisation (threshold 128) with probability 0.2 (BYOL's second view has it; here both views, a
    simplification), then normalisation. Each view draws its own parameters from torch's RNG, which
    DataLoader seeds per worker from the base seed.
    """
    from torchvision.transforms import v2 as T

    kernel = max(3, (size // 10) | 1)  # 23 at 224, odd
    view = T.Compose([
        T.PILToTensor(),
        T.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([T.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=0.5),
        T.RandomSolarize(128, p=0.2),
        T.ToDtype(torch.float32, scale=True),
        T.Normalize(mean, std),
    ])
    return lambda img: torch.stack([view(img), view(img)])  # (2, 3, size, size)


def eval_transform(size: int = 224, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> Callable:
    """Resize the short side to size·8/7, centre-crop ``size``, normalise (the standard ImageNet evaluation)."""
    from torchvision.transforms import v2 as T

    return T.Compose([T.PILToTensor(), T.Resize(round(size * 8 / 7), antialias=True), T.CenterCrop(size),
                      T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)])


def stream_loader(index: FolderIndex, transform: Callable, batch_size: int, *, rank: int = 0, world: int = 1,
                  seed: int = 0, workers: int = 4, shuffle: bool = True, drop_last: bool = True):
    """A DataLoader over ``index`` sharded for ``rank``/``world``; call :func:`set_epoch` before each epoch.

    Augmentations are seeded per (seed, epoch, sample) (see :class:`StreamingImages`): a run repeats with its seed.
    """
    sampler = ShardSampler(len(index), rank, world, seed=seed, shuffle=shuffle)
    return torch.utils.data.DataLoader(StreamingImages(index, transform, seed), batch_size=batch_size, sampler=sampler,
                                       num_workers=workers, drop_last=drop_last, pin_memory=torch.cuda.is_available())


def set_epoch(loader, epoch: int, start: int = 0) -> None:
    """Point a :func:`stream_loader` at ``epoch`` (its shard order and augmentation seeds), from position ``start``."""
    loader.sampler.set_epoch(epoch, start)
    loader.dataset.epoch = epoch


class LazyImages:
    """uint8 (N, 3, S, S) images of a :class:`FolderIndex`, decoded only when indexed.

    Each image gets the standard evaluation crop (short side resized to round(S·8/7), centre crop S);
    a batch is decoded by a few threads (PIL releases the GIL while decoding). Indexing takes an int,
    a slice or a sequence of positions, like a tensor, so dumps and reference checks read it in
    batches: memory holds the index and the batches in flight, whatever N is.
    """

    def __init__(self, index: FolderIndex, size: int = 224, threads: int = 4):
        self.index, self.size, self.threads = index, int(size), max(1, int(threads))

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.index), 3, self.size, self.size)

    def __getitem__(self, key) -> torch.Tensor:
        if isinstance(key, (int, np.integer)):
            return self._batch([int(key)])[0]  # (3, S, S)
        if isinstance(key, slice):
            rows = list(range(*key.indices(len(self))))
        else:
            rows = [int(i) for i in torch.as_tensor(key).reshape(-1).tolist()]
        return self._batch(rows)  # (B, 3, S, S)

    def _batch(self, rows: list[int]) -> torch.Tensor:
        from concurrent.futures import ThreadPoolExecutor

        out = torch.empty((len(rows), 3, self.size, self.size), dtype=torch.uint8)
        if not rows:
            return out
        with ThreadPoolExecutor(min(self.threads, len(rows))) as pool:
            for k, img in enumerate(pool.map(self._one, rows)):
                out[k] = img
        return out

    def _one(self, i: int) -> torch.Tensor:
        from PIL import Image
        from torchvision.transforms import v2 as T

        path = self.index.paths[i].decode()
        try:
            with Image.open(path) as im:
                img = T.PILToTensor()(im.convert("RGB"))  # (3, H, W) uint8
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise DataError(f"cannot decode {path}: {str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__}") from None
        img = T.Resize(round(self.size * 8 / 7), antialias=True)(img)
        return T.CenterCrop(self.size)(img)  # (3, S, S)


def streamed_imagenet(root: str | Path | None, split: str, size: int = 224):
    """ImageNet's ``split`` (``test`` is ``val``) as an :class:`~nacscope.data.ImageData` whose images are a
    :class:`LazyImages`: for dumping and analysing at ImageNet scale without decoding it up front."""
    from nacscope.data.imagedata import ImageData

    if split == "all":
        raise DataError("imagenet has no 'all' split here; dump train and val (--split test) separately")
    if root is None:
        raise DataError("imagenet needs --data-root, the folder holding train/ and val/")
    index = imagenet_index(root, split)
    return ImageData(LazyImages(index, size), torch.from_numpy(index.labels), index.class_names, IMAGENET_MEAN,
                     IMAGENET_STD, "imagenet", split, torch.arange(len(index)))
