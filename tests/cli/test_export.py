"""`nacscope export` on the command line: a round trip per format and every bad input."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.helpers import assert_one_line_error, invoke






@pytest.mark.parametrize("fmt", ["npz", "npy", "parquet", "csv", "faiss"])
def test_export_each_format(tmp_path, digits_codeset, digits, fmt):
    from tests.helpers import random_relu_codes

    out = tmp_path / f"out.{fmt}"
    r = invoke("export", digits_codeset, "--layer", "fc1", "-o", out)  # format from the suffix
    assert r.exit_code == 0, r.output
    assert f"wrote {out}\n" in r.output  # whole paths, never wrapped
    expected = random_relu_codes(digits[0])["fc1"]
    if fmt == "npz":
        np.testing.assert_array_equal(np.load(out)["codes"], expected.astype(np.uint8))
    elif fmt == "npy":
        np.testing.assert_array_equal(np.load(out), expected.astype(np.uint8))
        np.testing.assert_array_equal(np.load(tmp_path / "out.labels.npy"), digits[1])
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        np.testing.assert_array_equal(np.array(pq.read_table(out).column("code").to_pylist()), expected)
    elif fmt == "csv":
        lines = [l for l in out.read_text().splitlines() if not l.startswith("#")]
        assert lines[0] == "index,label,is_query,code" and len(lines) == 1 + len(expected)
        first = lines[1].split(",")[-1]
        assert first == "".join(f"{int(''.join(map(str, map(int, expected[0][i:i + 8]))), 2):02x}" for i in range(0, 64, 8))
    else:
        import faiss

        assert faiss.read_index_binary(str(out)).ntotal == len(expected)


def test_packed_option_and_rows(tmp_path, digits_codeset):
    out = tmp_path / "g.npz"
    r = invoke("export", digits_codeset, "--layer", "fc2", "--packed", "--rows", "gallery", "-o", out)
    assert r.exit_code == 0, r.output
    z = np.load(out)
    assert z["codes"].shape == (1797 - len(range(0, 1797, 10)), 4) and bool(z["packed"])
    assert not z["is_query"].any()


def test_missing_file(tmp_path):
    assert_one_line_error(invoke("export", tmp_path / "nope.h5", "-o", tmp_path / "x.npz"), "not found")


def test_not_a_codeset(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_text("hello")
    assert_one_line_error(invoke("export", bad, "-o", tmp_path / "x.npz"), "not an HDF5 file")


def test_unknown_layer_lists_available(tmp_path, digits_codeset):
    r = invoke("export", digits_codeset, "--layer", "nope", "-o", tmp_path / "x.npz")
    assert_one_line_error(r, "no layer 'nope'", "fc1", "fc2")


def test_several_layers_need_layer(tmp_path, digits_codeset):
    assert_one_line_error(invoke("export", digits_codeset, "-o", tmp_path / "x.npz"), "--layer", "fc1, fc2")


@pytest.mark.parametrize("args, fragment", [
    (["--format", "zip"], "unknown format 'zip'"),
    (["--rows", "some"], "unknown row selection 'some'"),
])
def test_bad_option_values(tmp_path, digits_codeset, args, fragment):
    r = invoke("export", digits_codeset, "--layer", "fc1", *args, "-o", tmp_path / "x.npz")
    assert_one_line_error(r, fragment)
    assert not list(tmp_path.iterdir())


def test_format_not_inferable(tmp_path, digits_codeset):
    r = invoke("export", digits_codeset, "--layer", "fc1", "-o", tmp_path / "x.bin")
    assert_one_line_error(r, "cannot tell the format", "--format")


def test_existing_output_needs_force(tmp_path, digits_codeset):
    out = tmp_path / "x.csv"
    out.write_text("precious")
    assert_one_line_error(invoke("export", digits_codeset, "--layer", "fc1", "-o", out), "exists", "--force")
    assert out.read_text() == "precious"
    r = invoke("export", digits_codeset, "--layer", "fc1", "-o", out, "--force")
    assert r.exit_code == 0, r.output
    assert out.read_text().startswith("# nacscope export")


def test_existing_sidecar_needs_force(tmp_path, digits_codeset):
    (tmp_path / "x.labels.npy").write_bytes(b"precious")
    r = invoke("export", digits_codeset, "--layer", "fc1", "-o", tmp_path / "x.npy")
    assert_one_line_error(r, "x.labels.npy exists")
    assert not (tmp_path / "x.npy").exists()


def test_missing_output_directory(tmp_path, digits_codeset):
    r = invoke("export", digits_codeset, "--layer", "fc1", "-o", tmp_path / "no" / "x.npz")
    assert_one_line_error(r, "does not exist")


def test_rows_without_split(tmp_path):
    from nacscope.codes import CodeSetWriter, LayerSpec

    path = tmp_path / "nosplit.h5"
    with CodeSetWriter(path, [LayerSpec("code", 8)]) as w:
        w.append({"code": np.eye(8, dtype=bool)})
    assert_one_line_error(invoke("export", path, "--rows", "query", "-o", tmp_path / "x.npz"), "no query/gallery split")


@pytest.mark.parametrize("fmt, module", [("faiss", "faiss"), ("parquet", "pyarrow")])
def test_missing_optional_package(tmp_path, digits_codeset, monkeypatch, fmt, module):
    monkeypatch.setitem(sys.modules, module, None)
    r = invoke("export", digits_codeset, "--layer", "fc1", "--format", fmt, "-o", tmp_path / "x")
    assert_one_line_error(r, f"pip install {'faiss-cpu' if fmt == 'faiss' else 'pyarrow'}", f"extra '{fmt}'")
