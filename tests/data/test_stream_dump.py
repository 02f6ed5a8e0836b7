"""``--dataset imagenet`` is streamed: :class:`LazyImages` decodes on indexing, and a dump of it equals a
plain forward pass of the same network on the same crops."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest
import torch
from PIL import Image

from nacscope.codes import CodeSet
from nacscope.codes.job import DumpRequest, run_dump
from nacscope.data import load_dataset
from nacscope.data.stream import LazyImages, imagenet_index
from nacscope.errors import DataError
from tests.data.test_stream import _fabricate


def test_the_crop_is_short_side_then_centre(tmp_path):
    """A 300x200 image of three vertical bands: short side 200 -> 32·8/7 = 37 (width 55), centre 32 keeps the
    middle band whole and a strip of each outer band at the sides."""
    arr = np.zeros((200, 300, 3), np.uint8)
    arr[:, :100], arr[:, 100:200], arr[:, 200:] = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    (tmp_path / "c").mkdir()
    Image.fromarray(arr).save(tmp_path / "c" / "x.png")
    from nacscope.data.stream import scan_folder

    img = LazyImages(scan_folder(tmp_path), size=32)[0]  # (3, 32, 32)
    assert img.shape == (3, 32, 32) and img.dtype == torch.uint8
    # resized width 55: bands end near 18.3 and 36.7; the crop starts at (55 - 32) // 2 = 11
    middle = img[:, :, 10:22]  # columns 21..32 of the resized image: inside the green band
    assert (middle[1] > 250).all() and (middle[0] < 5).all() and (middle[2] < 5).all()
    assert (img[0, :, 0] > 250).all() and (img[2, :, -1] > 250).all()  # red at the left edge, blue at the right


def test_indexing_like_a_tensor_and_laziness(tmp_path, monkeypatch):
    _fabricate(tmp_path / "train", {"n01": 3, "n02": 2})
    lazy = LazyImages(imagenet_index(tmp_path, "train"), size=16)
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda p, *a, **k: opened.append(p) or real_open(p, *a, **k))
    assert len(lazy) == 5 and lazy.shape == (5, 3, 16, 16) and not opened
    batch = lazy[1:4]
    assert batch.shape == (3, 3, 16, 16) and len(opened) == 3
    torch.testing.assert_close(lazy[torch.tensor([3, 1])], torch.stack([batch[2], batch[0]]))
    torch.testing.assert_close(lazy[2], batch[1])


def test_a_broken_image_is_named_in_one_line(tmp_path):
    _fabricate(tmp_path / "train", {"n01": 2})
    bad = tmp_path / "train" / "n01" / "zz.jpg"
    bad.write_bytes(b"\xff\xd8 nope")
    lazy = LazyImages(imagenet_index(tmp_path, "train"), size=16)
    with pytest.raises(DataError, match=r"cannot decode .*zz\.jpg"):
        lazy[0:3]


def test_imagenet_splits_and_errors(tmp_path):
    _fabricate(tmp_path / "train", {"n01": 2, "n02": 2})
    _fabricate(tmp_path / "val", {"n02": 1, "n01": 1}, seed=1)
    val = load_dataset("imagenet", "test", root=tmp_path)
    assert isinstance(val.images, LazyImages) and val.labels.tolist() == [0, 1] and val.class_names == ["n01", "n02"]
    assert (val.channels, val.image_size) == (3, 224)
    with pytest.raises(DataError, match="no 'all' split"):
        load_dataset("imagenet", "all", root=tmp_path)
    with pytest.raises(DataError, match="needs --data-root"):
        load_dataset("imagenet", "train")


@pytest.mark.slow  # a random-init convnet at 224x224 on the CPU
def test_a_streamed_dump_equals_a_plain_forward(tmp_path):
    from nacscope.nets import random_init

    _fabricate(tmp_path / "train", {"n01": 2, "n02": 2})
    _fabricate(tmp_path / "val", {"n01": 3, "n02": 3}, seed=2)
    out = tmp_path / "val.h5"
    run_dump(DumpRequest("imagenet", out, data_root=tmp_path, split="test", random_init=True, arch="convnet",
                         bits=16, batch_size=4, thumbnails=16), lambda rank: nullcontext(None))
    data = load_dataset("imagenet", "test", root=tmp_path)
    x = data.images[0:len(data)].float() / 255.0  # (6, 3, 224, 224)
    mean, std = torch.tensor(data.mean).view(1, 3, 1, 1), torch.tensor(data.std).view(1, 3, 1, 1)
    model = random_init("convnet", 16, 0, 3, 224).eval()
    with torch.no_grad():
        code = model.head(model.encoder((x - mean) / std))  # (6, 16): the code layer's pre-activations
    with CodeSet(out) as cs:
        assert cs.n_samples == 6 and cs.labels().tolist() == data.labels.tolist()
        np.testing.assert_array_equal(cs.bits("code").astype(bool), (code > 0).numpy())
