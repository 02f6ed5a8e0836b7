"""``folder:PATH`` with broken or oversized images: skipped with one counted warning, or refused if none is left."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from nacscope.data import load_dataset
from nacscope.errors import DataError
from tests.helpers import invoke


def _folder(root, n_good: int = 4, broken: int = 1, big: int = 0):
    rng = np.random.default_rng(0)
    good = []
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(n_good):
            arr = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / c / f"{i}.png")
            good.append(arr)
    for i in range(broken):
        (root / "a" / f"zz_broken{i}.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    for i in range(big):
        Image.new("L", (100, 100)).save(root / "b" / f"zz_big{i}.png")  # 10,000 px: over the patched limit
    return good


def test_unreadable_and_oversized_images_are_skipped_and_counted(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL's bomb limit, small enough for a test file
    good = _folder(tmp_path / "imgs", broken=2, big=1)
    with pytest.warns(UserWarning, match=r"skipped 3 of 11 images .* \(first: .*zz_broken0\.jpg: cannot identify"):
        data = load_dataset(f"folder:{tmp_path / 'imgs'}", "all")
    assert len(data) == 8 and data.labels.tolist() == [0] * 4 + [1] * 4
    np.testing.assert_array_equal(data.images.permute(0, 2, 3, 1).numpy(), np.stack(good))  # the good ones, in order


def test_a_folder_of_only_broken_images_is_refused(tmp_path):
    _folder(tmp_path / "imgs", n_good=0, broken=2)
    with pytest.raises(DataError, match=r"none of the 2 images .* could be read \(first: .*zz_broken0"):
        load_dataset(f"folder:{tmp_path / 'imgs'}", "all")


def test_the_cli_says_it_in_one_warning_line(tmp_path):
    _folder(tmp_path / "imgs", broken=1)
    r = invoke("dump", "--random-init", "--arch", "mlp", "--bits", "8", "--dataset", f"folder:{tmp_path / 'imgs'}",
               "--split", "all", "-o", tmp_path / "f.h5")
    assert r.exit_code == 0, r.output
    warned = [line for line in r.output.splitlines() if "skipped" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: skipped 1 of 9 images"), r.output
    assert "UserWarning" not in r.output and "warnings.warn" not in r.output  # no source line
