"""Streaming image folders: labels from folder names, lazy decoding, DistributedSampler-equal sharding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from nacscope.errors import DataError
from nacscope.data.stream import (
    ShardSampler, StreamingImages, imagenet_index, imagenet_two_views, open_index, scan_folder, stream_loader,
)


def _fabricate(root, counts: dict[str, int], seed: int = 0) -> dict[str, tuple[int, int, int]]:
    """Class folders of small JPEGs and PNGs; returns each file's path -> its (constant) RGB colour."""
    rng = np.random.default_rng(seed)
    colours = {}
    for c, n in counts.items():
        (root / c).mkdir(parents=True)
        for i in range(n):
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            size = (int(rng.integers(6, 20)), int(rng.integers(6, 20)))
            ext = ".png" if i % 2 else ".jpg"
            path = root / c / f"img{i:03d}{ext}"
            Image.new("RGB", size, colour).save(path)
            colours[str(path)] = colour
    (root / next(iter(counts)) / "notes.txt").write_text("not an image")
    return colours


def test_labels_come_from_sorted_folder_names_and_decoding_is_lazy(tmp_path, monkeypatch):
    colours = _fabricate(tmp_path, {"zebra": 3, "ant": 4, "moth": 2})
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    index = open_index(f"folder:{tmp_path}", "train")
    assert opened == []  # indexing opens no image
    assert index.class_names == ["ant", "moth", "zebra"] and len(index) == 9  # notes.txt skipped
    assert index.labels.tolist() == [0] * 4 + [1] * 2 + [2] * 3
    ds = StreamingImages(index, lambda im: torch.from_numpy(np.array(im)).permute(2, 0, 1))
    for i in (0, 5, 8):
        x, y = ds[i]
        path = index.paths[i].decode()
        assert path.split("/")[-2] == index.class_names[y]
        want = torch.tensor(colours[path]).view(3, 1, 1).expand_as(x).int()
        assert (x.int() - want).abs().max() <= (0 if path.endswith(".png") else 8)  # JPEG is lossy
    assert len(opened) == 3


@pytest.mark.parametrize("n,world", [(10, 2), (11, 2), (7, 3)])
def test_shards_equal_distributed_sampler_and_cover_every_sample(n, world):
    seen = []
    for rank in range(world):
        ours = ShardSampler(n, rank, world, seed=4)
        ref = torch.utils.data.DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=4)
        for epoch in (0, 3):
            ours.set_epoch(epoch)
            ref.set_epoch(epoch)
            assert list(ours) == list(ref)
        ours.set_epoch(0)
        seen += list(ours)
    assert sorted(set(seen)) == list(range(n))  # every sample at least once
    assert len(seen) == -(-n // world) * world  # and only the padding repeats
    if n % world == 0:
        assert sorted(seen) == list(range(n))


def test_order_is_deterministic_with_seed_and_resumes_mid_epoch():
    a, b, c = ShardSampler(50, 1, 2, seed=7), ShardSampler(50, 1, 2, seed=7), ShardSampler(50, 1, 2, seed=8)
    assert list(a) == list(b) != list(c)
    a.set_epoch(1)
    assert list(a) != list(b)
    full = list(a)
    a.set_epoch(1, start=10)
    assert list(a) == full[10:] and len(a) == 15


def test_loader_over_two_simulated_ranks_sees_every_sample_once(tmp_path):
    _fabricate(tmp_path, {"a": 5, "b": 7})
    index = scan_folder(tmp_path)
    # the item is its own label and a fingerprint of its pixels: recover which files each rank read
    fingerprint = lambda im: torch.tensor(np.asarray(im.resize((4, 4)), dtype=np.float32).mean())  # noqa: E731
    got = []
    for rank in range(2):
        loader = stream_loader(index, fingerprint, batch_size=3, rank=rank, world=2, seed=1, workers=2, drop_last=False)
        loader.sampler.set_epoch(0)
        for x, y in loader:
            got += list(zip(x.tolist(), y.tolist()))
    ds = StreamingImages(index, fingerprint)
    want = [(float(ds[i][0]), int(index.labels[i])) for i in range(len(index))]
    assert sorted(got) == sorted(want)


def test_imagenet_layout_uses_train_wnids_for_val(tmp_path):
    _fabricate(tmp_path / "train", {"n01": 2, "n02": 2, "n03": 1})
    _fabricate(tmp_path / "val", {"n03": 1, "n02": 2}, seed=1)  # n01 has no val images here
    val = imagenet_index(tmp_path, "val")
    assert val.class_names == ["n01", "n02", "n03"] and val.labels.tolist() == [1, 1, 2]
    _fabricate(tmp_path / "val" / ".." / "val2", {"n09": 1})
    with pytest.raises(DataError, match="not among"):
        from nacscope.data.stream import scan_folder as scan

        scan(tmp_path / "val2", class_names=val.class_names)
    with pytest.raises(DataError, match="needs --root"):
        open_index("imagenet", "train")
    with pytest.raises(DataError, match="not found"):
        open_index(f"folder:{tmp_path / 'missing'}", "train")


def test_two_view_recipe_gives_two_different_normalised_crops():
    torch.manual_seed(0)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8))
    views = imagenet_two_views(32)(img)
    assert views.shape == (2, 3, 32, 32) and views.dtype == torch.float32
    assert not torch.equal(views[0], views[1])


@pytest.mark.slow
def test_training_streams_a_folder_and_resumes_bit_exactly_with_other_worker_counts(tmp_path):
    from nacscope.training import TrainConfig, train

    _fabricate(tmp_path / "imgs", {"a": 20, "b": 20, "c": 14})
    base = dict(dataset=f"folder:{tmp_path / 'imgs'}", arch="convnet", bits=8, epochs=2, batch_size=16, crop=16,
                log_every=1, device="cpu", seed=2)
    straight = train(TrainConfig(**base, workers=2), tmp_path / "a", progress=False)
    assert straight.steps == 2 * (54 // 16) and straight.eval == {}
    train(TrainConfig(**base, workers=0, stop_after_epochs=1), tmp_path / "b", progress=False)
    train(TrainConfig(**base, workers=1), tmp_path / "b", resume=True, explicit={"workers"}, progress=False)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 6 and a["data"]["mean"] == [0.485, 0.456, 0.406]
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
