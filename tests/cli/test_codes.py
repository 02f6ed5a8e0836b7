"""`nacscope import-codes` and `nacscope info`: round trips and every bad input the foundation issue lists."""

from __future__ import annotations

import os

import numpy as np
import pytest

from nacscope.codes import CodeSet, partial_path
from tests.helpers import assert_one_line_error, invoke, write_bad_codeset





GRID = [(n, d) for n in (1, 1000, 100_000) for d in (1, 7, 8, 9, 63, 64, 65, 4096) if (n, d) != (100_000, 4096)]


@pytest.mark.parametrize("n, d", GRID)
def test_import_round_trip(tmp_path, n, d):
    """Every size of the grid but the largest, which test_import_large_round_trip streams from a memmap."""
    bits = np.random.default_rng(n + d).integers(0, 2, (n, d)).astype(bool)
    np.save(tmp_path / "c.npy", np.where(bits, 1, -1).astype(np.int8))
    r = invoke("import-codes", tmp_path / "c.npy", "-o", tmp_path / "c.h5")
    assert r.exit_code == 0, r.output
    with CodeSet(tmp_path / "c.h5") as cs:
        np.testing.assert_array_equal(cs.bits("code").astype(bool), bits)


@pytest.mark.slow
def test_import_large_round_trip(tmp_path):
    """100,000 x 4,096 through import-codes, streamed from a memory-mapped .npy."""
    n, d = 100_000, 4096
    rng = np.random.default_rng(5)
    arr = np.lib.format.open_memmap(tmp_path / "c.npy", mode="w+", dtype=bool, shape=(n, d))
    for s in range(0, n, 20_000):
        arr[s : s + 20_000] = rng.integers(0, 2, (min(20_000, n - s), d)).astype(bool)
    arr.flush()
    r = invoke("import-codes", tmp_path / "c.npy", "-o", tmp_path / "c.h5")
    assert r.exit_code == 0, r.output
    with CodeSet(tmp_path / "c.h5") as cs:
        for start, block in cs.iter_packed("code", 20_000):
            np.testing.assert_array_equal(block, np.packbits(arr[start : start + len(block)], axis=1))


def test_import_npz_labels_mask_layers(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 2, (50, 16)), rng.choice([-1, 1], (50, 5))
    np.savez(tmp_path / "codes.npz", hash16=a, tiny=b)
    labels = rng.integers(0, 2, (50, 4))
    np.save(tmp_path / "labels.npy", labels)
    mask = np.arange(50) < 10
    np.save(tmp_path / "mask.npy", mask)
    r = invoke("import-codes", tmp_path / "codes.npz", "-o", tmp_path / "c.h5", "--labels", tmp_path / "labels.npy",
               "--query-mask", tmp_path / "mask.npy")
    assert r.exit_code == 0, r.output
    with CodeSet(tmp_path / "c.h5") as cs:
        assert cs.layer_names == ["hash16", "tiny"]
        np.testing.assert_array_equal(cs.bits("hash16"), a)
        np.testing.assert_array_equal(cs.bits("tiny"), b > 0)
        assert cs.label_kind == "multihot"
        np.testing.assert_array_equal(cs.labels(), labels)
        np.testing.assert_array_equal(cs.query_mask, mask)
    r = invoke("info", tmp_path / "c.h5", "--check")
    assert r.exit_code == 0
    out = " ".join(r.output.split())
    for frag in ("hash16", "tiny", "multi-hot, 4 labels", "10 queries / 40 gallery", "valid"):
        assert frag in out


def test_info_shows_layers_and_labels(digits_codeset):
    r = invoke("info", digits_codeset)
    assert r.exit_code == 0
    out = " ".join(r.output.split())
    assert "1,797" in out and "10 classes" in out and "fc1" in out and "fc2" in out and "digits / all" in out


@pytest.fixture()
def codes_file(tmp_path):
    np.save(tmp_path / "codes.npy", np.random.default_rng(0).integers(0, 2, (20, 8)))
    return tmp_path / "codes.npy"


def _corrupt(tmp_path, digits_codeset):
    data = digits_codeset.read_bytes()
    p = tmp_path / "corrupt.h5"
    p.write_bytes(data[:4096] + b"\0" * 1000 + data[5096 : len(data) // 2])
    return p


@pytest.mark.parametrize(
    "case, fragments",
    [
        ("missing", ["not found"]),
        ("not_hdf5", ["not an HDF5 file"]),
        ("corrupt", ["corrupt"]),
        ("not_codeset", ["not a nacscope code set"]),
        ("newer_version", ["format v7", "upgrade"]),
    ],
)
def test_info_bad_files(tmp_path, digits_codeset, case, fragments):
    if case == "corrupt":
        p = _corrupt(tmp_path, digits_codeset)
    else:
        p = write_bad_codeset(tmp_path / "x.h5", case, version=7)
    assert_one_line_error(invoke("info", p), *fragments)


@pytest.mark.parametrize(
    "make, fragments",
    [
        (lambda d: np.save(d / "bad.npy", np.array([[0, 1, 2]])), ["values [0, 1, 2]"]),
        (lambda d: np.save(d / "bad.npy", np.array([[0.5, 1.0]])), ["not in"]),
        (lambda d: np.save(d / "bad.npy", np.zeros(5)), ["2-D"]),
        (lambda d: (d / "bad.npy").write_text("garbage"), ["not a valid .npy"]),
        (lambda d: np.save(d / "bad.npy", np.array([[{"a": 1}]], dtype=object)), ["pickled"]),
    ],
)
def test_import_bad_codes(tmp_path, make, fragments):
    make(tmp_path)
    r = invoke("import-codes", tmp_path / "bad.npy", "-o", tmp_path / "out.h5")
    assert_one_line_error(r, *fragments)
    assert not (tmp_path / "out.h5").exists() and not partial_path(tmp_path / "out.h5").exists()


def test_import_missing_codes(tmp_path):
    assert_one_line_error(invoke("import-codes", tmp_path / "nope.npy", "-o", tmp_path / "o.h5"), "not found")


def test_import_label_length_mismatch(tmp_path, codes_file):
    np.save(tmp_path / "labels.npy", np.arange(19))
    r = invoke("import-codes", codes_file, "-o", tmp_path / "o.h5", "--labels", tmp_path / "labels.npy")
    assert_one_line_error(r, "labels have 19 rows", "20")
    assert not (tmp_path / "o.h5").exists()


def test_import_mask_length_mismatch(tmp_path, codes_file):
    np.save(tmp_path / "mask.npy", np.ones(3, bool))
    r = invoke("import-codes", codes_file, "-o", tmp_path / "o.h5", "--query-mask", tmp_path / "mask.npy")
    assert_one_line_error(r, "query mask")


def test_existing_output_refused_then_forced_failure_keeps_it(tmp_path, codes_file):
    out = tmp_path / "o.h5"
    assert invoke("import-codes", codes_file, "-o", out).exit_code == 0
    before = out.read_bytes()
    assert_one_line_error(invoke("import-codes", codes_file, "-o", out), "exists", "--force")
    np.save(tmp_path / "labels.npy", np.arange(3))
    r = invoke("import-codes", codes_file, "-o", out, "--force", "--labels", tmp_path / "labels.npy")
    assert_one_line_error(r, "labels")
    assert out.read_bytes() == before
    assert invoke("import-codes", codes_file, "-o", out, "--force", "--layer", "other").exit_code == 0
    with CodeSet(out) as cs:
        assert cs.layer_names == ["other"]


def test_unwritable_output_directory(tmp_path, codes_file, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() == 0:  # root writes anywhere: make the permission check see a read-only directory
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, m, **kw: False if str(p) == str(locked) else real_access(p, m, **kw))
    else:
        locked.chmod(0o555)
    assert_one_line_error(invoke("import-codes", codes_file, "-o", locked / "o.h5"), "not writable")
    assert_one_line_error(invoke("import-codes", codes_file, "-o", tmp_path / "nodir" / "o.h5"), "does not exist")
    assert list(locked.iterdir()) == []


def test_bad_layer_name(tmp_path, codes_file):
    assert_one_line_error(invoke("import-codes", codes_file, "-o", tmp_path / "o.h5", "--layer", "a/b"), "invalid layer name")


def test_version_and_help():
    r = invoke("--version")
    assert r.exit_code == 0 and r.output.startswith("nacscope ")
    r = invoke()
    assert "import-codes" in r.output and "info" in r.output


def test_info_check_lists_every_violation_not_just_the_first(tmp_path, digits_codeset):
    """Two independent faults: ``info --check`` names both (exit 1); plain ``info`` refuses in one line (exit 2)."""
    import shutil

    import h5py

    bad = tmp_path / "bad.h5"
    shutil.copy(digits_codeset, bad)
    with h5py.File(bad, "a") as f:
        n = int(f.attrs["n_samples"])
        del f["samples/labels"]
        f["samples/labels"] = np.zeros(n + 3, np.int64)  # wrong length
        f["layers/fc1"].attrs["units"] = "many"  # wrong type
    r = invoke("info", bad, "--check")
    assert r.exit_code == 1, r.output
    listed = [ln for ln in r.output.splitlines() if ln.startswith("x ")]
    assert len(listed) >= 2, r.output
    assert any("labels" in ln for ln in listed) and any("units" in ln for ln in listed), r.output
    assert invoke("info", bad).exit_code == 2
