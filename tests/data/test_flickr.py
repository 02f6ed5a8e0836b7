"""MIRFLICKR-25K on a small folder fabricated in the official layout: labels, splits, protocol, dump."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from nacscope.data.flickr import CONCEPTS, load_flickr25k
from nacscope.data.protocols import query_mask
from nacscope.errors import DataError

N = 60


@pytest.fixture(scope="module")
def flickr_root(tmp_path_factory):
    """im1.jpg..im60.jpg of assorted sizes, 24 concept files (+ an _r1 file and the README, not labels)."""
    root = tmp_path_factory.mktemp("flickr")
    (root / "mirflickr").mkdir()
    ann = root / "mirflickr25k_annotations_v080"
    ann.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, N + 1):
        h, w = rng.integers(20, 50, 2)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / "mirflickr" / f"im{i}.jpg")
    labels = rng.random((N, len(CONCEPTS))) < 0.1
    labels[::7] = False  # some images carry none of the 24 labels
    for j, concept in enumerate(CONCEPTS):
        (ann / f"{concept}.txt").write_text("".join(f"{i + 1}\n" for i in np.flatnonzero(labels[:, j])))
    (ann / "baby_r1.txt").write_text("1\n2\n3\n")
    (ann / "README.txt").write_text("MIRFLICKR-25K annotations\n")
    return root, labels


def test_labels_images_and_indices_follow_the_files(flickr_root):
    root, labels = flickr_root
    data = load_flickr25k(root, "all", size=16)
    keep = np.flatnonzero(labels.any(axis=1))
    assert data.indices.tolist() == keep.tolist()  # image number - 1 of each labelled image
    assert np.array_equal(data.labels.numpy(), labels[keep].astype(np.int64))
    with Image.open(root / "mirflickr" / f"im{keep[3] + 1}.jpg") as im:
        want = np.asarray(im.convert("RGB").resize((16, 16), Image.BILINEAR))
    assert np.array_equal(data.images[3].permute(1, 2, 0).numpy(), want)
    assert data.class_names == list(CONCEPTS) and data.images.shape == (len(keep), 3, 16, 16)


def test_splits_are_one_seeded_draw(flickr_root):
    root, _ = flickr_root
    every, test, train = (load_flickr25k(root, s, size=8) for s in ("all", "test", "train"))
    q, t = set(test.indices.tolist()), set(train.indices.tolist())
    assert not q & t and q | t <= set(every.indices.tolist())  # training images come from the gallery
    assert len(q) == len(every) // 10 and len(t) == (len(every) - len(q)) // 2
    mask = query_mask("paper-flickr25k", None, every.labels.numpy(), every.indices.numpy(), "flickr25k", "all")
    assert set(every.indices[mask].tolist()) == q  # the protocol marks exactly the test split's images


def test_bad_folders_are_refused_in_one_line(tmp_path, flickr_root):
    with pytest.raises(DataError, match="no MIRFLICKR-25K images"):
        load_flickr25k(tmp_path, "all")
    root, _ = flickr_root
    bad = tmp_path / "bad"
    (bad / "mirflickr").mkdir(parents=True)
    (bad / "annotations").mkdir()
    for c in CONCEPTS:
        (bad / "annotations" / f"{c}.txt").write_text("1\n" if c != "dog" else "x1\n")
    with pytest.raises(DataError, match="dog.txt:1: not an image number"):
        load_flickr25k(bad, "all")


@pytest.mark.slow
def test_dump_and_analyze_multi_hot_codes(tmp_path, flickr_root):
    from typer.testing import CliRunner

    from nacscope.cli import app
    from nacscope.codes import open_codeset

    root, labels = flickr_root
    out = tmp_path / "f.h5"
    r = CliRunner().invoke(app, ["dump", "--random-init", "--arch", "convnet", "--bits", "16", "--dataset", "flickr25k",
                                 "--data-root", str(root), "--split", "all", "--protocol", "paper-flickr25k",
                                 "--layers", "code", "-o", str(out)])
    assert r.exit_code == 0, r.output
    keep = np.flatnonzero(labels.any(axis=1))
    with open_codeset(out) as cs:
        assert cs.label_kind == "multihot" and np.array_equal(cs.labels(), labels[keep].astype(np.uint8))
        assert int(cs.query_mask.sum()) == len(keep) // 10
    a = CliRunner().invoke(app, ["analyze", str(out), "--layer", "code", "--json"])
    assert a.exit_code == 0, a.output
    ret = json.loads(a.output)["retrieval"]["code"]
    assert 0 <= ret["map"] <= ret["map_skip_no_relevant"] <= 1  # skipping zero-AP queries never lowers mAP


@pytest.mark.slow
def test_train_runs_on_flickr25k(tmp_path, flickr_root):
    from typer.testing import CliRunner

    from nacscope.cli import app

    root, _ = flickr_root
    r = CliRunner().invoke(app, ["train", "--dataset", "flickr25k", "--root", str(root), "--arch", "convnet", "--bits",
                                 "16", "--epochs", "1", "--batch-size", "8", "--out", str(tmp_path / "run"),
                                 "--no-baseline", "-q"])
    assert r.exit_code == 0, r.output
    rec = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    ev = [x["eval"] for x in rec if "eval" in x][-1]
    assert ev["knn_acc"] is None and 0 <= ev["map"] <= 1  # multi-hot: retrieval only, no class vote
