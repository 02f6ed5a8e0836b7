"""Dataset registry: bundled sets, fabricated CIFAR/STL folders in the exact on-disk format, arrays, folders."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch

from nacscope.data import ImageData, load_dataset
from nacscope.data.ondisk import MEAN_STD
from nacscope.errors import DataError


def test_digits_split_and_normalisation():
    from sklearn.datasets import load_digits

    ref = load_digits()
    train, test, full = load_dataset("digits"), load_dataset("digits", "test"), load_dataset("digits", "all")
    assert len(full) == 1797 and len(test) == 360 and len(train) == 1437
    assert train.images.dtype == torch.uint8 and train.images.shape[1:] == (1, 8, 8)
    assert torch.equal(test.indices, torch.arange(0, 1797, 5))
    assert set(train.indices.tolist()).isdisjoint(test.indices.tolist())
    i = int(test.indices[7])
    np.testing.assert_array_equal(test.images[7, 0].numpy(), np.rint(ref.images[i] * 255 / 16).astype(np.uint8))
    assert int(test.labels[7]) == ref.target[i]
    x = train.images.double() / 255
    assert train.mean[0] == pytest.approx(x.mean().item(), abs=1e-4)
    z = train.normalize(train.images)
    assert z.mean().item() == pytest.approx(0.0, abs=1e-3) and z.std().item() == pytest.approx(1.0, abs=1e-3)


@pytest.mark.slow
def test_mnist5k():
    d = load_dataset("mnist5k", "all")
    assert d.images.shape == (5000, 1, 28, 28) and d.labels.shape == (5000,)
    assert sorted(d.labels.unique().tolist()) == list(range(10))


def _write_pickle(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _fake_cifar(root, kind="cifar10", n=7, seed=0):
    rng = np.random.default_rng(seed)
    import torchvision.datasets as tvd

    cls = tvd.CIFAR10 if kind == "cifar10" else tvd.CIFAR100
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    key = "labels" if kind == "cifar10" else "fine_labels"
    ncls = 10 if kind == "cifar10" else 100
    data = {}
    for fname, _ in cls.train_list + cls.test_list:
        x = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        y = rng.integers(0, ncls, size=n).tolist()
        _write_pickle(folder / fname, {b"data": x, key.encode(): y, b"filenames": [b"a"] * n})
        data[fname] = (x, y)
    names = [f"class{i}".encode() for i in range(ncls)]
    _write_pickle(folder / cls.meta["filename"], {cls.meta["key"].encode(): names})
    return cls, data


@pytest.mark.parametrize("kind", ["cifar10", "cifar100"])
def test_fabricated_cifar_loads_with_warning(tmp_path, kind):
    cls, data = _fake_cifar(tmp_path, kind)
    with pytest.warns(UserWarning, match="not the official file"):
        train = load_dataset(kind, "train", root=tmp_path)
    n_train = 7 * len(cls.train_list)
    assert train.images.shape == (n_train, 3, 32, 32) and train.labels.shape == (n_train,)
    x0, y0 = data[cls.train_list[0][0]]
    # CIFAR rows are 1024 red, then green, then blue values, row-major
    assert torch.equal(train.images[3], torch.from_numpy(x0[3].reshape(3, 32, 32)))
    assert train.labels[:7].tolist() == y0
    assert train.mean == MEAN_STD[kind][0] and train.class_names[2] == "class2"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        test = load_dataset(kind, "test", root=tmp_path)
        assert len(test) == 7 and int(test.indices[0]) == 50000
        assert len(load_dataset(kind, "all", root=tmp_path)) == n_train + 7


class Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_cifar_pickle_with_code_is_refused(tmp_path):
    _fake_cifar(tmp_path)
    import torchvision.datasets as tvd

    _write_pickle(tmp_path / tvd.CIFAR10.base_folder / "data_batch_2", {b"data": Evil()})
    with pytest.raises(DataError, match="not allowed"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_dataset("cifar10", "train", root=tmp_path)


def test_missing_cifar_root(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_dataset("cifar10", root=tmp_path)


def test_fabricated_stl10(tmp_path):
    import torchvision.datasets as tvd

    folder = tmp_path / tvd.STL10.base_folder
    folder.mkdir()
    rng = np.random.default_rng(0)
    images = {}
    for part, n in (("train", 4), ("test", 3), ("unlabeled", 2)):
        x = rng.integers(0, 256, size=(n, 3, 96, 96), dtype=np.uint8)  # (N, C, H, W)
        images[part] = x
        x.transpose(0, 1, 3, 2).tofile(folder / f"{part}_X.bin")  # stored column-major
        if part != "unlabeled":
            np.array(rng.integers(1, 11, size=n), dtype=np.uint8).tofile(folder / f"{part}_y.bin")
    (folder / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train = load_dataset("stl10", "train", root=tmp_path)
        unl = load_dataset("stl10", "unlabeled", root=tmp_path)
    assert any("not the official file" in str(w.message) for w in caught)
    assert torch.equal(train.images, torch.from_numpy(images["train"]))
    assert train.labels.min() >= 0 and train.labels.max() <= 9 and train.class_names[0] == "c0"
    assert unl.labels is None and len(unl) == 2
    (folder / "test_X.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match="whole number"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_dataset("stl10", "test", root=tmp_path)


@pytest.mark.parametrize("layout", ["nhw", "nhwc", "nchw_float"])
def test_npz_arrays(tmp_path, layout):
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, size=(20, 3, 6, 6), dtype=np.uint8)
    arr = {"nhw": base[:, 0], "nhwc": base.transpose(0, 2, 3, 1), "nchw_float": base / 255.0}[layout]
    path = tmp_path / "x.npz"
    np.savez(path, images=arr, labels=np.arange(20) % 4)
    d = load_dataset(str(path), "all")
    want = base[:, :1] if layout == "nhw" else base
    assert torch.equal(d.images, torch.from_numpy(want))
    test = load_dataset(str(path), "test")
    assert test.indices.tolist() == [0, 5, 10, 15] and test.labels.tolist() == [0, 1, 2, 3]


def test_h5_train_test_arrays(tmp_path):
    import h5py

    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f["train_images"] = np.full((5, 4, 4), 10, np.uint8)
        f["test_images"] = np.full((2, 4, 4), 200, np.uint8)
        f["train_labels"] = np.arange(5)
        f["test_labels"] = np.array([1, 2])
    tr, te = load_dataset(str(path), "train"), load_dataset(str(path), "test")
    assert len(tr) == 5 and len(te) == 2 and int(te.images.max()) == 200 and te.indices.tolist() == [5, 6]
    assert tr.mean[0] == pytest.approx(10 / 255, abs=1e-4)


def test_image_folder(tmp_path):
    from PIL import Image

    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(3):
            Image.fromarray(np.full((5, 5, 3), 40 * i, np.uint8)).save(tmp_path / c / f"{i}.png")
    d = load_dataset(f"folder:{tmp_path}", "all")
    assert d.images.shape == (6, 3, 5, 5) and d.class_names == ["cat", "dog"]
    assert d.labels.tolist() == [0, 0, 0, 1, 1, 1] and int(d.images[2].max()) == 80


@pytest.mark.parametrize("name", ["nope", "folder:/does/not/exist", "/nope.npz"])
def test_bad_names(name):
    with pytest.raises(DataError):
        load_dataset(name)


def test_bad_split():
    with pytest.raises(DataError, match="split"):
        load_dataset("digits", "validation")


def test_subset_keeps_indices():
    d = load_dataset("digits", "test")
    s = d.subset(torch.tensor([2, 0]))
    assert isinstance(s, ImageData) and s.indices.tolist() == [10, 0]


def test_hash_protocol_split_counts():
    from nacscope.data.ondisk import hash_protocol_split

    labels = torch.arange(10).repeat_interleave(6000)[torch.randperm(60000, generator=torch.Generator().manual_seed(1))]
    parts = hash_protocol_split(labels)
    assert len(parts["query"]) == 10000 and len(parts["gallery"]) == 50000 and len(parts["train"]) == 5000
    assert set(parts["query"].tolist()).isdisjoint(parts["gallery"].tolist())
    assert set(parts["train"].tolist()) <= set(parts["gallery"].tolist())
    for name, per_class in (("query", 1000), ("train", 500)):
        assert torch.bincount(labels[parts[name]], minlength=10).tolist() == [per_class] * 10
    again = hash_protocol_split(labels)
    assert all(torch.equal(parts[k], again[k]) for k in parts)


def test_hash_training_set_never_meets_the_dump_protocol_queries():
    """Training on cifar10-hash and dumping with --protocol paper-cifar10 use one draw."""
    from nacscope.data.protocols import paper_cifar10
    from nacscope.data.ondisk import hash_protocol_split

    labels = torch.arange(10).repeat_interleave(6000)[torch.randperm(60000, generator=torch.Generator().manual_seed(2))]
    parts = hash_protocol_split(labels)
    is_query = paper_cifar10(labels.numpy(), np.arange(60000), "cifar10", "all")
    np.testing.assert_array_equal(np.flatnonzero(is_query), parts["query"].numpy())
    assert not is_query[parts["train"].numpy()].any()


def test_cifar10_hash_on_fabricated_files(tmp_path):
    _fake_cifar(tmp_path, n=12)  # 72 pooled images
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train, test, gallery = (load_dataset("cifar10-hash", s, root=tmp_path) for s in ("train", "test", "all"))
    assert len(test) + len(gallery) == 72
    assert set(train.indices.tolist()) <= set(gallery.indices.tolist())
    assert set(test.indices.tolist()).isdisjoint(gallery.indices.tolist())
