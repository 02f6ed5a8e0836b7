"""CIFAR-10/100 and STL-10 in torchvision's on-disk formats, read without running any code from the files.

CIFAR's python batches are pickles: they are read with :class:`SafeUnpickler`, which resolves only the few
numpy globals an array needs, so a crafted file cannot run code. Files are checked against torchvision's
MD5 sums; a mismatch (a subset, a fabricated test file) gives a warning, not a refusal.

Layouts (under ``root``)::

    cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
    cifar-100-python/{train, test, meta}
    stl10_binary/{train_X.bin, train_y.bin, test_X.bin, test_y.bin, unlabeled_X.bin, class_names.txt}
"""

from __future__ import annotations

import io
import pickle
import warnings
from pathlib import Path

import numpy as np
import torch

from nacscope._files import file_digest
from nacscope.errors import DataError

# CIFAR statistics: the authors' CIFAR-10 constants (NAC-NOTES §3); commonly used ones for the others.
MEAN_STD = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "stl10": ((0.4467, 0.4398, 0.4066), (0.2603, 0.2566, 0.2713)),
}

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that allows only numpy array reconstruction and builtin containers."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data file")


def safe_unpickle(path: Path) -> dict:
    """Read a CIFAR batch file; keys are returned as str."""
    try:
        with open(path, "rb") as f:
            obj = SafeUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        raise DataError(f"{path} is not a plain CIFAR batch ({exc}); refusing to load it") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise DataError(f"{path} is not a readable CIFAR batch ({type(exc).__name__}); re-download it") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path} is not a CIFAR batch (holds a {type(obj).__name__})")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _check(path: Path, md5: str | None) -> None:
    if md5 and file_digest(path, "md5") != md5:
        warnings.warn(f"{path.name} is not the official file (MD5 differs): a subset or a modified copy; loading it anyway", stacklevel=3)


def _tv_class(name: str):
    import torchvision.datasets as tvd

    return {"cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100, "stl10": tvd.STL10}[name]


def _download(name: str, root: Path) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    cls = _tv_class(name)
    download_and_extract_archive(cls.url, str(root), filename=cls.filename, md5=cls.tgz_md5)


def _decode_names(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _cifar(name: str, split: str, root: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    cls = _tv_class(name)
    folder = root / cls.base_folder
    if not folder.is_dir():
        raise DataError(f"{name} not found: expected {folder} (torchvision's python format); pass --root or --download")
    lists = {"train": cls.train_list, "test": cls.test_list, "all": cls.train_list + cls.test_list}[split]
    xs, ys = [], []
    label_key = "labels" if name == "cifar10" else "fine_labels"
    for fname, md5 in lists:
        path = folder / fname
        if not path.is_file():
            raise DataError(f"{name}: missing {path}; the folder is incomplete")
        batch = safe_unpickle(path)
        if "data" not in batch or label_key not in batch:
            raise DataError(f"{path} lacks 'data' or '{label_key}': not a {name} batch")
        data = np.asarray(batch["data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3072:
            raise DataError(f"{path}: data must be (N, 3072) uint8, got {data.shape}")
        _check(path, md5)  # after the refusals: a file refused is not also warned about
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(np.asarray(batch[label_key], dtype=np.int64))
    meta_path = folder / cls.meta["filename"]
    classes: list[str] = []
    if meta_path.is_file():
        classes = _decode_names(safe_unpickle(meta_path).get(cls.meta["key"], []))
        _check(meta_path, cls.meta["md5"])
    x, y = torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))
    if y.numel() and (y.min() < 0 or (classes and y.max() >= len(classes))):
        raise DataError(f"{name}: labels out of range in {folder}")
    return x, y, classes or [str(i) for i in range(10 if name == "cifar10" else 100)]


def _stl_x(path: Path, md5: str | None) -> torch.Tensor:
    if not path.is_file():
        raise DataError(f"stl10: missing {path}")
    _check(path, md5)
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % (3 * 96 * 96):
        raise DataError(f"{path}: size {raw.size} is not a whole number of 3x96x96 images")
    return torch.from_numpy(raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2).copy())  # stored column-major


def _stl(split: str, root: Path) -> tuple[torch.Tensor, torch.Tensor | None, list[str]]:
    cls = _tv_class("stl10")
    folder = root / cls.base_folder
    if not folder.is_dir():
        raise DataError(f"stl10 not found: expected {folder} (the binary format); pass --root or --download")
    md5s = dict(cls.train_list + cls.test_list)
    names_file = folder / cls.class_names_file
    classes = names_file.read_text().split() if names_file.is_file() else [str(i) for i in range(10)]
    if split == "unlabeled":
        return _stl_x(folder / "unlabeled_X.bin", md5s.get("unlabeled_X.bin")), None, classes
    xs, ys = [], []
    for part in ("train", "test") if split == "all" else (split,):
        x = _stl_x(folder / f"{part}_X.bin", md5s.get(f"{part}_X.bin"))
        ypath = folder / f"{part}_y.bin"
        if not ypath.is_file():
            raise DataError(f"stl10: missing {ypath}")
        _check(ypath, md5s.get(f"{part}_y.bin"))
        y = torch.from_numpy(np.fromfile(ypath, dtype=np.uint8).astype(np.int64) - 1)
        if len(y) != len(x):
            raise DataError(f"stl10: {len(y)} labels for {len(x)} images in {folder} ({part})")
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys), classes


def hash_protocol_split(labels: torch.Tensor, per_class_query: int = 1000, per_class_train: int = 500,
                        indices: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The authors' CIFAR-10 hashing protocol (NAC-NOTES §4) on the pooled train+test labels.

    The draw is :func:`nacscope.codes.protocols.paper_hash_split`, the one ``dump --protocol
    paper-cifar10`` uses for its queries, so the training set always lies in the dump's gallery.

    Returns:
        Sorted pooled indices: ``query``, ``gallery``, ``train``.
    """
    from nacscope.data.protocols import paper_hash_split

    parts = paper_hash_split(labels.numpy(), None if indices is None else indices.numpy(),
                             per_class_query=per_class_query, per_class_train=per_class_train)
    return {k: torch.from_numpy(v) for k, v in parts.items()}


def load(name: str, split: str, root: Path, download: bool):
    """Load ``cifar10`` / ``cifar100`` / ``stl10`` / ``cifar10-hash`` from ``root`` as an ImageData.

    ``cifar10-hash`` is the authors' hashing protocol on the pooled 60,000 images
    (:func:`hash_protocol_split`): ``train`` = 500 per class of the gallery (5,000), ``test`` = the 1,000
    queries per class (10,000), ``all`` = the 50,000-image gallery. ``indices`` are pooled indices.
    """
    from nacscope.data.imagedata import ImageData

    if name == "cifar10-hash":
        if download:
            _download("cifar10", root)
        x, y, classes = _cifar("cifar10", "all", root)
        n_class = len(y) // 10 if len(y) else 0
        q = min(1000, max(1, n_class // 6))  # the official 6,000 per class give 1,000 queries and 500 train
        parts = hash_protocol_split(y, per_class_query=q, per_class_train=min(500, max(1, n_class // 12)))
        idx = {"train": parts["train"], "test": parts["query"], "all": parts["gallery"]}[split]
        mean, std = MEAN_STD["cifar10"]
        return ImageData(x[idx], y[idx], classes, mean, std, name, split, idx)
    if download:
        _download(name, root)
    if name == "stl10":
        x, y, classes = _stl(split, root)
    else:
        if split == "unlabeled":
            raise DataError(f"{name} has no unlabeled split")
        x, y, classes = _cifar(name, split, root)
    mean, std = MEAN_STD[name]
    # indices follow the official train+test order: test samples start after the official train size
    offset = {"cifar10": 50000, "cifar100": 50000, "stl10": 5000}[name] if split == "test" else 0
    return ImageData(x, y, classes, mean, std, name, split, torch.arange(len(x)) + offset)
