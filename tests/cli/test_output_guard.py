"""Every command's output guard: never write over, into or around an input, a device, or through a
symlink planted at the temporary name (issue 16, items 1 and 5).

Each refusal must be one ``error:`` line with exit code 2, and leave the whole folder (inputs, their
cache sidecars, a victim file) bit-identical: the tree is hashed before and after.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from nacscope._files import partial_path
from tests.helpers import assert_one_line_error, invoke

IS_ROOT = os.geteuid() == 0


def tree(root: Path) -> dict[str, object]:
    """Every entry under ``root``: files by SHA-256, symlinks by target, folders, anything else by kind."""
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            st = p.lstat()
            key = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[key] = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                out[key] = hashlib.sha256(p.read_bytes()).hexdigest()
            elif stat.S_ISDIR(st.st_mode):
                out[key] = "dir"
            else:  # a fifo or a device: never opened
                out[key] = ("other", stat.S_IFMT(st.st_mode))
    return out


def assert_refused(args: list, world: Path, *fragments: str) -> None:
    """``nacscope ARGS`` is refused in one line, exit 2, and nothing under ``world`` changed."""
    before = tree(world)
    r = invoke(*args)
    assert_one_line_error(r, *fragments)
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert tree(world) == before


@pytest.fixture(scope="module")
def source(tmp_path_factory, digits_codeset, mlp_ckpt):
    """The inputs every case starts from: a code set with its cache sidecar, arrays, a dataset file, an
    image folder, a checkpoint, and a folder named like a PNG holding a second code set."""
    from sklearn.datasets import load_digits

    from tests.helpers import random_relu_codes

    src = tmp_path_factory.mktemp("guard-src")
    shutil.copy(digits_codeset, src / "codes.h5")
    r = invoke("analyze", src / "codes.h5", "--json")  # writes codes.h5.cache
    assert r.exit_code == 0, r.output
    assert (src / "codes.h5.cache").is_file()
    x = load_digits().data.astype(np.float32)
    np.save(src / "codes.npy", random_relu_codes(x)["fc1"].astype(np.uint8))
    np.save(src / "labels.npy", load_digits().target.astype(np.int64))
    np.save(src / "mask.npy", np.arange(len(x)) % 10 == 0)
    images = np.rint(load_digits().images * (255 / 16)).astype(np.uint8)  # (N, 8, 8)
    np.savez(src / "d.npz", images=images, labels=load_digits().target.astype(np.int64))
    (src / "imgs" / "a").mkdir(parents=True)
    (src / "imgs" / "a" / "x.png").write_bytes(b"not really a png")
    shutil.copy(mlp_ckpt, src / "mlp.pt")
    (src / "box.png").mkdir()
    shutil.copy(digits_codeset, src / "box.png" / "c.h5")
    (src / "adir").mkdir()
    return src


@pytest.fixture()
def world(tmp_path, source) -> Path:
    """A fresh copy of :func:`source` for one test, plus symlinks ``link.png`` to the code set and
    ``cache.png`` to its sidecar (an output reached through a link is the input all the same)."""
    w = tmp_path / "w"
    shutil.copytree(source, w, symlinks=True)
    (w / "link.png").symlink_to(w / "codes.h5")
    (w / "cache.png").symlink_to(w / "codes.h5.cache")
    return w


# -- the output is, contains, or lies inside an input --------------------------------------------------
Case = Callable[[Path], list]
INPUT_CASES: dict[str, Case] = {
    "export=codeset": lambda w: ["export", w / "codes.h5", "--layer", "fc1", "-o", w / "codes.h5", "-f", "npz", "--force"],
    "export=cache": lambda w: ["export", w / "codes.h5", "--layer", "fc1", "-o", w / "codes.h5.cache", "-f", "npz", "--force"],
    "export=cache-via-link": lambda w: ["export", w / "codes.h5", "--layer", "fc1", "-o", w / "cache.png", "-f", "npz", "--force"],
    "export-contains": lambda w: ["export", w / "codes.h5", "--layer", "fc1", "-o", w, "-f", "npz", "--force"],
    "export-inside-file": lambda w: ["export", w / "codes.h5", "--layer", "fc1", "-o", w / "codes.h5" / "x.npz", "--force"],
    "import=codes": lambda w: ["import-codes", w / "codes.npy", "-o", w / "codes.npy", "--force"],
    "import=labels": lambda w: ["import-codes", w / "codes.npy", "--labels", w / "labels.npy", "-o",
                                w / "labels.npy", "--force"],
    "import=mask": lambda w: ["import-codes", w / "codes.npy", "--query-mask", w / "mask.npy", "-o",
                              w / "mask.npy", "--force"],
    "import-contains": lambda w: ["import-codes", w / "codes.npy", "-o", w, "--force"],
    "dump=checkpoint": lambda w: ["dump", w / "mlp.pt", "--dataset", "digits", "-o", w / "mlp.pt", "--force"],
    "dump=dataset-file": lambda w: ["dump", w / "mlp.pt", "--dataset", w / "d.npz", "-o", w / "d.npz", "--force"],
    "dump=dataset-folder": lambda w: ["dump", w / "mlp.pt", "--dataset", f"folder:{w / 'imgs'}", "-o", w / "imgs",
                                      "--force"],
    "dump-inside-dataset-folder": lambda w: ["dump", w / "mlp.pt", "--dataset", f"folder:{w / 'imgs'}", "-o",
                                             w / "imgs" / "a" / "x.h5"],
    "dump-contains": lambda w: ["dump", w / "mlp.pt", "--dataset", w / "d.npz", "-o", w, "--force"],
    "train=dataset-file": lambda w: ["train", "--dataset", w / "d.npz", "-o", w / "d.npz", "--force"],
    "train-contains-dataset-file": lambda w: ["train", "--dataset", w / "d.npz", "-o", w, "--force"],
    "train=dataset-folder": lambda w: ["train", "--dataset", f"folder:{w / 'imgs'}", "-o", w / "imgs", "--force"],
    "train-inside-dataset-folder": lambda w: ["train", "--dataset", f"folder:{w / 'imgs'}", "-o",
                                              w / "imgs" / "run"],
    "train-contains-root": lambda w: ["train", "--dataset", "digits", "--root", w / "imgs", "-o", w, "--force"],
    "regions=checkpoint": lambda w: ["regions", w / "mlp.pt", "--dataset", "digits", "--plot", w / "mlp.pt",
                                     "--force"],
    "regions=dataset-file": lambda w: ["regions", w / "mlp.pt", "--dataset", w / "d.npz", "--plot", w / "d.npz",
                                       "--force"],
    "regions-contains": lambda w: ["regions", w / "mlp.pt", "--dataset", "digits", "--plot", w, "--force"],
    "regions-inside-dataset-folder": lambda w: ["regions", w / "mlp.pt", "--dataset", f"folder:{w / 'imgs'}",
                                                "--plot", w / "imgs" / "p.png"],
    "compare=codeset-via-link": lambda w: ["compare", w / "codes.h5", w / "box.png" / "c.h5", "--plot",
                                           w / "link.png", "--force"],
    "compare=cache-via-link": lambda w: ["compare", w / "codes.h5", w / "box.png" / "c.h5", "--plot",
                                         w / "cache.png", "--force"],
    "compare-contains": lambda w: ["compare", w / "codes.h5", w / "box.png" / "c.h5", "--plot", w / "box.png",
                                   "--force"],
    "report=codeset": lambda w: ["report", w / "codes.h5", "-o", w / "codes.h5", "--force"],
    "report=cache": lambda w: ["report", w / "codes.h5", "-o", w / "codes.h5.cache", "--force"],
    "report-contains": lambda w: ["report", w / "box.png" / "c.h5", "-o", w / "box.png", "--force"],
    "report-contains-cwd": lambda w: ["report", w / "codes.h5", "-o", ".", "--force"],
    "report-inside-file": lambda w: ["report", w / "codes.h5", "-o", w / "codes.h5" / "rep"],
    "probe=checkpoint": lambda w: ["probe", w / "mlp.pt", "--dataset", "digits", "--protocol", "fast", "-o",
                                   w / "mlp.pt", "--force"],
    "probe=dataset-file": lambda w: ["probe", w / "mlp.pt", "--dataset", w / "d.npz", "--protocol", "fast", "-o",
                                     w / "d.npz", "--force"],
    "probe-inside-dataset-folder": lambda w: ["probe", w / "mlp.pt", "--dataset", f"folder:{w / 'imgs'}", "-o",
                                              w / "imgs" / "r.json"],
}


@pytest.mark.parametrize("case", sorted(INPUT_CASES))
def test_output_that_is_contains_or_lies_in_an_input_is_refused(case, world, monkeypatch):
    monkeypatch.chdir(world)  # for `-o .`
    assert_refused(INPUT_CASES[case](world), world, "input")


# -- the output exists and is not what the command writes ----------------------------------------------
#: command -> args with the output ``OUT``; the output is a file, or a folder for train, report and demo.
FILE_OUTPUTS: dict[str, Callable[[Path, Path], list]] = {
    "export": lambda w, out: ["export", w / "codes.h5", "--layer", "fc1", "-o", out, "-f", "npz", "--force"],
    "import-codes": lambda w, out: ["import-codes", w / "codes.npy", "-o", out, "--force"],
    "dump": lambda w, out: ["dump", w / "mlp.pt", "--dataset", "digits", "-o", out, "--force"],
    "regions": lambda w, out: ["regions", w / "mlp.pt", "--dataset", "digits", "--plot", out, "--force"],
    "compare": lambda w, out: ["compare", w / "codes.h5", w / "box.png" / "c.h5", "--plot", out, "--force"],
    "probe": lambda w, out: ["probe", w / "mlp.pt", "--dataset", "digits", "--protocol", "fast", "-o", out,
                             "--force"],
}
FOLDER_OUTPUTS: dict[str, Callable[[Path, Path], list]] = {
    "train": lambda w, out: ["train", "--dataset", "digits", "-o", out, "--force"],
    "report": lambda w, out: ["report", w / "codes.h5", "-o", out, "--force"],
    "demo": lambda w, out: ["demo", "-o", out, "--no-tui", "--force"],
}


def _device(world: Path) -> Path:
    """A character device: as root a null device node made here (so a failing guard harms nothing
    outside the test folder), else the real /dev/null (which no failing guard may replace)."""
    if not IS_ROOT:
        return Path("/dev/null")
    node = world / "null.png"  # .png: compare and regions check the suffix first
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return node


@pytest.mark.parametrize("kind", ["device", "fifo", "folder"])
@pytest.mark.parametrize("command", sorted(FILE_OUTPUTS))
def test_file_output_that_is_not_a_regular_file_is_refused(command, kind, world):
    if kind == "device":
        out = _device(world)
    elif kind == "fifo":
        out = world / "pipe.png"
        os.mkfifo(out)
    else:
        out = world / "adir.png"
        out.mkdir()
    assert_refused(FILE_OUTPUTS[command](world, out), world, str(out))


@pytest.mark.parametrize("kind", ["device", "fifo", "file"])
@pytest.mark.parametrize("command", sorted(FOLDER_OUTPUTS))
def test_folder_output_that_is_not_a_folder_is_refused(command, kind, world):
    if kind == "device":
        out = _device(world)
    elif kind == "fifo":
        out = world / "pipe"
        os.mkfifo(out)
    else:
        out = world / "labels.npy"
    assert_refused(FOLDER_OUTPUTS[command](world, out), world, "not a folder")


# -- a symlink planted at a temporary name is replaced, never written through ---------------------------
#: command -> (args writing OUT, the temporary names planted as symlinks, relative to OUT's folder or OUT)
PARTIAL_CASES: dict[str, tuple[Callable[[Path, Path], list], Callable[[Path], list[Path]]]] = {
    "export": (lambda w, out: ["export", w / "codes.h5", "--layer", "fc1", "-o", out],
               lambda out: [partial_path(out)]),
    "import-codes": (lambda w, out: ["import-codes", w / "codes.npy", "--labels", w / "labels.npy", "-o", out],
                     lambda out: [partial_path(out)]),
    "dump": (lambda w, out: ["dump", w / "mlp.pt", "--dataset", "digits", "-o", out, "--thumbnails", "0"],
             lambda out: [partial_path(out)]),
    "compare": (lambda w, out: ["compare", w / "codes.h5", w / "box.png" / "c.h5", "--layer", "fc1", "--plot", out,
                                "--json"],
                lambda out: [partial_path(out)]),
    "regions": (lambda w, out: ["regions", w / "mlp.pt", "--dataset", "digits", "--pairs", "1", "--dense", "0",
                                "--plane-method", "grid", "--resolution", "8", "--plot", out, "--json"],
                lambda out: [partial_path(out)]),
    "probe": (lambda w, out: ["probe", w / "mlp.pt", "--dataset", "digits", "--protocol", "fast", "-o", out, "-q"],
              lambda out: [partial_path(out)]),
    "train": (lambda w, out: ["train", "--dataset", "digits", "--epochs", "1", "--ckpt-every", "1", "--batch-size",
                              "256", "--no-baseline", "-q", "-o", out],
              lambda out: [partial_path(out / n) for n in ("last.pt", "config.json", "epoch_0001.pt")]),
    "report": (lambda w, out: ["report", w / "codes.h5", "-o", out, "--layer", "fc1", "--no-umap", "--no-plane",
                               "--force"],
               lambda out: [partial_path(out / ".nacscope-report.json")]),
}
OUT_NAMES = {"export": "e.npz", "import-codes": "i.h5", "dump": "dd.h5", "compare": "c.png", "regions": "r.png",
             "probe": "p.json", "train": "run", "report": "rep"}


@pytest.mark.parametrize("command", sorted(PARTIAL_CASES))
def test_symlink_at_the_temporary_name_is_not_written_through(command, world, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious bytes\n" * 100)
    digest = hashlib.sha256(victim.read_bytes()).hexdigest()
    args, planted = PARTIAL_CASES[command]
    out = world / OUT_NAMES[command]
    if command in ("train", "report"):
        out.mkdir()
    links = planted(out)
    for link in links:
        link.symlink_to(victim)
    r = invoke(*args(world, out))
    assert r.exit_code == 0, r.output
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == digest
    assert not [p for p in links if os.path.lexists(p)]  # removed, not left behind
    written = [out / "last.pt", out / "config.json", out / "epoch_0001.pt"] if command == "train" else (
        [out / ".nacscope-report.json", out / "summary.md"] if command == "report" else [out])
    for p in written:
        assert p.is_file() and not p.is_symlink(), p


# -- report --force touches only its own files -----------------------------------------------------------
REPORT_ARGS = ("--layer", "fc1", "--no-umap", "--no-plane")


def test_report_into_the_current_folder(world, tmp_path, monkeypatch):
    """``report -o .`` (an existing folder named ``.``) works, and writes only the report's files there."""
    here = tmp_path / "here"
    here.mkdir()
    (here / "notes.txt").write_text("mine")
    monkeypatch.chdir(here)
    r = invoke("report", world / "codes.h5", "-o", ".", "--force", *REPORT_ARGS)
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in here.iterdir())
    assert names == sorted([".nacscope-report.json", "bit_rates.png", "collisions.png", "nn_distance.png",
                            "notes.txt", "pr_curve.png", "regions.png", "summary.md"])
    assert (here / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_report_force_replaces_its_files_and_keeps_everything_else(world, tmp_path):
    out = tmp_path / "rep"
    r = invoke("report", world / "codes.h5", "-o", out, *REPORT_ARGS)
    assert r.exit_code == 0, r.output
    (out / "notes.txt").write_text("mine")
    shutil.copy(world / "codes.h5", out / "other.h5")  # an unrelated file that is not an input
    keep = {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in ("notes.txt", "other.h5")}
    old_summary = (out / "summary.md").read_text()
    r = invoke("report", world / "codes.h5", "-o", out, "--force", "--layer", "fc2", "--no-umap", "--no-plane")
    assert r.exit_code == 0, r.output
    assert "| fc2 |" in (out / "summary.md").read_text() and (out / "summary.md").read_text() != old_summary
    assert {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in keep} == keep
    # a file of a report's name that no report wrote is refused, and nothing changes
    (out / "umap.png").write_bytes(b"the user's picture")
    assert_refused(["report", world / "codes.h5", "-o", out, "--force", *REPORT_ARGS], out, "umap.png",
                   "not written by nacscope report")


# -- read-only output folders ----------------------------------------------------------------------------
@pytest.fixture()
def readonly(world, tmp_path):
    """A folder this process cannot write into: mode 0o555, and as root (whom the mode does not stop)
    also the immutable attribute (``chattr +i``); skipped where neither restricts."""
    import subprocess

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    immutable = False
    if IS_ROOT and shutil.which("chattr"):
        immutable = subprocess.run(["chattr", "+i", str(ro)], capture_output=True).returncode == 0
    try:
        if os.access(ro, os.W_OK, effective_ids=os.access in os.supports_effective_ids):
            pytest.skip("this process can write into a 0o555 folder (root without chattr +i)")
        yield ro
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(ro)], check=True)
        ro.chmod(0o755)


READONLY_CASES: dict[str, Callable[[Path, Path], list]] = {
    "export": lambda w, ro: ["export", w / "codes.h5", "--layer", "fc1", "-o", ro / "x.npz"],
    "import-codes": lambda w, ro: ["import-codes", w / "codes.npy", "-o", ro / "i.h5"],
    "dump": lambda w, ro: ["dump", w / "mlp.pt", "--dataset", "digits", "-o", ro / "d.h5"],
    "train-new-run": lambda w, ro: ["train", "--dataset", "digits", "--epochs", "1", "-q", "-o", ro / "run"],
    "train-in-readonly-run": lambda w, ro: ["train", "--dataset", "digits", "--epochs", "1", "-q", "-o", ro],
    "report-new": lambda w, ro: ["report", w / "codes.h5", "-o", ro / "rep", "--no-umap", "--no-plane"],
    "report-into-readonly": lambda w, ro: ["report", w / "codes.h5", "-o", ro, "--no-umap", "--no-plane"],
    "compare": lambda w, ro: ["compare", w / "codes.h5", w / "box.png" / "c.h5", "--plot", ro / "c.png"],
    "regions": lambda w, ro: ["regions", w / "mlp.pt", "--dataset", "digits", "--plot", ro / "r.png"],
    "probe": lambda w, ro: ["probe", w / "mlp.pt", "--dataset", "digits", "--protocol", "fast", "-o", ro / "p.json"],
    "demo-new": lambda w, ro: ["demo", "-o", ro / "demo", "--no-tui"],
    "demo-into-readonly": lambda w, ro: ["demo", "-o", ro, "--no-tui"],
}


@pytest.mark.parametrize("case", sorted(READONLY_CASES))
def test_readonly_output_folder_is_one_line(case, world, readonly):
    assert_refused(READONLY_CASES[case](world, readonly), world, str(readonly))
    assert list(readonly.iterdir()) == []


def test_an_os_error_met_while_writing_names_the_path_and_the_reason(world):
    """No guard foresees this one (a folder where train writes config.json): the write itself fails."""
    run = world / "run"
    (run / "config.json").mkdir(parents=True)
    assert_refused(["train", "--dataset", "digits", "--epochs", "1", "-q", "-o", run], world,
                   f"cannot write {run / 'config.json'}: {os.strerror(errno.EISDIR)}")
