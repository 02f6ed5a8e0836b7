"""MIRFLICKR-25K from its official on-disk layout, with the 24 concept labels (multi-hot).

Layout under ``root`` (as the two official archives unpack)::

    mirflickr/im1.jpg ... im25000.jpg                 the images (mirflickr25k.zip)
    mirflickr25k_annotations_v080/<concept>.txt       one 1-based image number per line (or annotations/)

The 24 labels are the concept files without the ``_r1`` suffix (``animals`` ... ``water``); the
``_r1`` files (the "relevant" subsets of 14 of them) and ``README.txt`` are not labels. As in
the hashing literature, only images with at least one of the 24 labels are kept (20,015 in the
official set). Images are decoded once, converted to RGB and resized to ``size`` x ``size``
(bilinear; 224 by default, VGG's input), so the whole set takes about 3 GB of memory at 224.

Splits follow the authors' protocol (NAC-NOTES §4, :func:`nacscope.data.protocols.paper_flickr25k`):
``test`` = the 2,000 queries, ``train`` = the 5,000 training images drawn from the gallery, ``all`` =
every labelled image (queries and gallery; ``--protocol paper-flickr25k`` marks the queries).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from nacscope.data.imagedata import ImageData, channel_stats
from nacscope.errors import DataError

CONCEPTS = (
    "animals", "baby", "bird", "car", "clouds", "dog", "female", "flower", "food", "indoor", "lake", "male",
    "night", "people", "plant_life", "portrait", "river", "sea", "sky", "structures", "sunset", "transport",
    "tree", "water",
)
N_IMAGES = 25_000
ANNOTATION_DIRS = ("mirflickr25k_annotations_v080", "annotations")


def _annotation_dir(root: Path) -> Path:
    for name in ANNOTATION_DIRS:
        if (root / name).is_dir():
            return root / name
    raise DataError(f"no MIRFLICKR-25K annotations under {root}: expected one of {', '.join(ANNOTATION_DIRS)}/ "
                    "holding animals.txt ... water.txt")


def read_labels(root: Path) -> np.ndarray:
    """(25000, 24) uint8 multi-hot labels from the concept files (row i = image ``im{i+1}.jpg``)."""
    ann = _annotation_dir(root)
    labels = np.zeros((N_IMAGES, len(CONCEPTS)), dtype=np.uint8)
    for j, concept in enumerate(CONCEPTS):
        path = ann / f"{concept}.txt"
        if not path.is_file():
            raise DataError(f"MIRFLICKR-25K annotation file missing: {path}")
        for lineno, line in enumerate(path.read_text().split(), 1):
            try:
                k = int(line)
            except ValueError:
                raise DataError(f"{path}:{lineno}: not an image number: {line[:40]!r}") from None
            if not 1 <= k <= N_IMAGES:
                raise DataError(f"{path}:{lineno}: image number {k} outside 1..{N_IMAGES}")
            labels[k - 1, j] = 1
    return labels


def _decode(path: Path, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"MIRFLICKR-25K image missing: {path} (labelled in the annotations)") from None
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot decode {path}: {str(exc).splitlines()[0][:100]}") from None


def load_flickr25k(root: str | Path, split: str, size: int = 224) -> ImageData:
    """The labelled MIRFLICKR-25K images of one split (see the module docstring)."""
    from nacscope.data.protocols import paper_flickr25k

    root = Path(root)
    if not (root / "mirflickr").is_dir():
        raise DataError(f"no MIRFLICKR-25K images under {root}: expected {root / 'mirflickr'}/im1.jpg ...")
    all_labels = read_labels(root)
    keep = np.flatnonzero(all_labels.any(axis=1))  # image numbers - 1 of the labelled images
    if len(keep) == 0:
        raise DataError(f"the annotations under {root} label no image")
    queries, _gallery, train = paper_flickr25k(len(keep))
    rows = {"all": np.arange(len(keep)), "test": queries, "train": train}[split]
    images = np.stack([_decode(root / "mirflickr" / f"im{keep[r] + 1}.jpg", size) for r in rows])  # (N, H, W, 3)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W) uint8
    train_x = x if split == "train" else None
    if train_x is None:  # normalisation constants always come from the training images
        train_x = torch.from_numpy(np.stack([_decode(root / "mirflickr" / f"im{keep[r] + 1}.jpg", size)
                                             for r in train[:500]])).permute(0, 3, 1, 2)
    mean, std = channel_stats(train_x)
    return ImageData(x, torch.from_numpy(all_labels[keep[rows]]).long(), list(CONCEPTS), mean, std,
                     "flickr25k", split, torch.from_numpy(keep[rows]).long())
