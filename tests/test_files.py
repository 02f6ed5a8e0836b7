"""``nacscope._files``: digests against hashlib on whole bytes, atomic writes, output checks, PNG figures."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from nacscope._files import atomic_write, check_output, file_digest, file_sha256, partial_path, save_png
from nacscope.errors import CodeSetError, OptionError


@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, 1 << 20, (5 << 19) + 3])  # around the 1 MiB block
@pytest.mark.parametrize("algorithm", ["sha256", "md5"])
def test_digest_equals_hashlib_on_the_whole_bytes(tmp_path, size, algorithm):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    assert file_digest(p, algorithm) == hashlib.new(algorithm, data).hexdigest()
    assert file_sha256(p) == hashlib.sha256(data).hexdigest()


def test_atomic_write_renames_only_on_success(tmp_path):
    out = tmp_path / "a.txt"
    out.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(out) as tmp:
            assert tmp == partial_path(out) and tmp.name == "a.txt.partial"
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert out.read_text() == "old" and not partial_path(out).exists()
    with atomic_write(out) as tmp:
        tmp.write_text("new")
        assert out.read_text() == "old"  # not visible before the block ends
    assert out.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


@pytest.mark.parametrize("case, force, fragment", [
    ("file", False, "exists; use --force"),
    ("file", True, None),
    ("new", False, None),
    ("dir", True, "is a directory"),
    ("no_parent", True, "does not exist"),
])
@pytest.mark.parametrize("error", [OptionError, CodeSetError])
def test_check_output(tmp_path, case, force, fragment, error):
    p = {"file": tmp_path / "f.h5", "new": tmp_path / "n.h5", "dir": tmp_path, "no_parent": tmp_path / "x" / "f.h5"}[case]
    (tmp_path / "f.h5").write_text("x")
    if fragment is None:
        assert check_output(p, force=force, error=error) == p
    else:
        with pytest.raises(error, match=fragment):
            check_output(p, force=force, error=error)


def test_save_png_writes_a_png_and_closes_the_figure(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    out = save_png(fig, tmp_path / "f.png", dpi=50)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number) and sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]


def test_figures_leave_no_global_matplotlib_state(tmp_path):
    """Library figures are standalone Figure objects: no backend switch, no pyplot figure left open."""
    import matplotlib

    from nacscope._files import save_png, subplots

    backend = matplotlib.get_backend()
    fig, ax = subplots(1, 2, figsize=(3, 2))
    ax[0].plot([0, 1], [1, 0])
    out = save_png(fig, tmp_path / "f.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not (tmp_path / "f.png.partial").exists()
    assert matplotlib.get_backend() == backend
    assert fig.canvas.manager is None  # not a pyplot-managed figure: nothing to close, nothing shown
