"""``nacscope._files``: digests against hashlib on whole bytes, atomic writes, output checks, PNG figures."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from nacscope._files import (atomic_write, check_folder_writable, check_output, create_exclusive, dataset_path, file_digest,
                             file_sha256, partial_path, refuse_inputs, save_png)
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


def _layout(tmp_path):
    (tmp_path / "data" / "cls").mkdir(parents=True)
    (tmp_path / "in.h5").write_text("x")
    (tmp_path / "link.h5").symlink_to(tmp_path / "in.h5")
    return tmp_path


@pytest.mark.parametrize("out, inputs, sealed, fragment", [
    ("in.h5", ["in.h5"], [], "is the input"),
    ("link.h5", ["in.h5"], [], "is the input"),  # through a symlink
    ("in.h5", ["link.h5"], [], "is the input"),
    (".", ["in.h5"], [], "contains the input"),
    ("in.h5/x", ["in.h5"], [], "lies inside the input"),  # "inside" a file
    ("data/cls/x.h5", [], ["data"], "lies inside the input"),  # inside a sealed folder
    ("data/cls/x.h5", ["data"], [], None),  # inside a plain input folder (a run folder): allowed
    ("data", [], ["data"], "is the input"),
    ("other.h5", ["in.h5"], ["data"], None),
    ("other.h5", [None], [None], None),
])
def test_refuse_inputs(tmp_path, out, inputs, sealed, fragment):
    root = _layout(tmp_path)
    args = dict(sealed=[root / s if s else None for s in sealed])
    ins = [root / i if i else None for i in inputs]
    if fragment is None:
        refuse_inputs(root / out, ins, **args)
        return
    with pytest.raises(OptionError, match=fragment):
        refuse_inputs(root / out, ins, **args)
    with pytest.raises(OptionError, match=fragment):  # check_output runs it first, force or not
        check_output(root / out, force=True, inputs=ins, **args)


@pytest.mark.parametrize("name, expected", [
    ("digits", None), ("cifar10", None), (None, None), ("x.npz", "x.npz"), ("d/x.h5", "d/x.h5"),
    ("x.hdf5", "x.hdf5"), ("folder:imgs", "imgs"), ("folder:~/imgs", str(Path("~/imgs").expanduser())),
])
def test_dataset_path(name, expected):
    assert dataset_path(name) == (None if expected is None else Path(expected))


def test_device_and_fifo_outputs_are_refused(tmp_path):
    import os

    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    for p in (fifo, Path("/dev/null")):
        with pytest.raises(OptionError, match="not a regular file"):
            check_output(p, force=True)
        with pytest.raises(OptionError, match="not a folder"):
            check_output(p, force=True, folder=True)


def test_create_exclusive_removes_a_planted_symlink_never_its_target(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    tmp = tmp_path / "out.partial"
    tmp.symlink_to(victim)
    assert create_exclusive(tmp) == tmp
    assert not tmp.is_symlink() and tmp.read_bytes() == b"" and victim.read_text() == "precious"


def test_check_folder_writable_looks_at_the_nearest_existing_folder(tmp_path):
    import os

    check_folder_writable(tmp_path / "a" / "b" / "c")  # would be created under tmp_path: fine
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK, effective_ids=os.access in os.supports_effective_ids):
            pytest.skip("this process can write into a 0o555 folder (root)")
        for p in (ro, ro / "new" / "deeper"):
            with pytest.raises(OptionError, match=f"{ro} is not writable"):
                check_folder_writable(p)
    finally:
        ro.chmod(0o755)


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
