"""Round trips of ``nacscope.export`` for every format, each read back with that format's own reader.

The expected values come from the arrays the code sets were built from (not from the code-set
reader), and hex strings / Hamming distances are checked against slow, obvious references.
"""

from __future__ import annotations

import csv
import sys

import numpy as np
import pytest

from nacscope.codes import CodeSet, CodeSetWriter, LayerSpec
from nacscope.errors import OptionError
from nacscope.export import FORMATS, export_codes, hex_rows, output_paths

from tests.helpers import random_relu_codes


@pytest.fixture(scope="module")
def sources(tmp_path_factory, digits):
    """Two code sets and the arrays they hold.

    ``digits``: 1797 rows, layers fc1 (64) and fc2 (32) of a random ReLU MLP, class labels, a split.
    ``odd``: 777 rows, a 13-unit ``code`` layer (padding bits in use), multi-hot labels, a split.
    """
    root = tmp_path_factory.mktemp("export-src")
    x, y = digits
    codes = random_relu_codes(x)
    is_query = np.zeros(len(y), bool)
    is_query[::7] = True
    p1 = root / "digits.h5"
    with CodeSetWriter(p1, [LayerSpec(k, v.shape[1]) for k, v in codes.items()], label_kind="class",
                       has_query_mask=True) as w:
        for s in range(0, len(y), 400):
            sl = slice(s, s + 400)
            w.append({k: v[sl] for k, v in codes.items()}, labels=y[sl], is_query=is_query[sl],
                     index=np.arange(len(y))[sl] + 1000)
    rng = np.random.default_rng(3)
    n = 777
    bits = rng.integers(0, 2, (n, 13)).astype(bool)
    multihot = rng.integers(0, 2, (n, 5)).astype(np.uint8)
    q2 = rng.random(n) < 0.2
    p2 = root / "odd.h5"
    with CodeSetWriter(p2, [LayerSpec("code", 13, kind="code")], label_kind="multihot", n_label_columns=5,
                       has_query_mask=True) as w:
        w.append({"code": bits}, labels=multihot, is_query=q2, index=np.arange(n) * 3)
    return {
        "digits": dict(path=p1, layer="fc2", bits=codes["fc2"], labels=y, is_query=is_query,
                       index=np.arange(len(y)) + 1000),
        "odd": dict(path=p2, layer=None, bits=bits, labels=multihot, is_query=q2, index=np.arange(n) * 3),
    }


def bits_from_hex(s: str, units: int) -> np.ndarray:
    """Slow reference: a hex string -> its binary digits, most significant first, cut to ``units``."""
    return np.array([c == "1" for c in bin(int(s, 16))[2:].zfill(4 * len(s))[:units]], dtype=bool)


def read_back(fmt: str, paths, units: int, packed: bool) -> dict[str, np.ndarray]:
    """Read an export with the format's own library; return codes (bool (N, D)), index, labels, is_query."""
    main = paths[0]
    out: dict[str, np.ndarray] = {}
    if fmt == "npz":
        with np.load(main, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
        assert int(out.pop("units")) == units and bool(out.pop("packed")) == packed
        codes = out.pop("codes")
    elif fmt == "npy":
        codes = np.load(main, allow_pickle=False)
        for p in paths[1:]:
            out[p.name.split(".")[-2]] = np.load(p, allow_pickle=False)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        t = pq.read_table(main)
        assert t.schema.metadata[b"nacscope.units"] == str(units).encode()
        out["index"] = t.column("index").to_numpy()
        if "label" in t.column_names:
            out["labels"] = t.column("label").to_numpy()
        if "labels" in t.column_names:
            out["labels"] = np.array(t.column("labels").to_pylist(), dtype=np.uint8)
        if "is_query" in t.column_names:
            out["is_query"] = t.column("is_query").to_numpy(zero_copy_only=False)
        col = t.column("code").to_pylist()
        codes = np.frombuffer(b"".join(col), np.uint8).reshape(len(col), -1) if packed else np.array(col, np.uint8)
    elif fmt == "csv":
        with open(main, newline="") as fh:
            lines = [l for l in fh if not l.startswith("#")]
        rows = list(csv.DictReader(lines))
        out["index"] = np.array([int(r["index"]) for r in rows])
        if "label" in rows[0]:
            out["labels"] = np.array([int(r["label"]) for r in rows])
        if "labels" in rows[0]:
            out["labels"] = np.array([[str(j) in r["labels"].split(";") for j in range(5)] for r in rows], np.uint8)
        out["is_query"] = np.array([r["is_query"] == "1" for r in rows])
        return {**out, "codes": np.array([bits_from_hex(r["code"], units) for r in rows])}
    elif fmt == "faiss":
        import faiss

        index = faiss.read_index_binary(str(main))
        assert index.d == 8 * ((units + 7) // 8)
        codes = faiss.rev_swig_ptr(faiss.downcast_IndexBinary(index).xb.data(), index.ntotal * index.code_size)
        codes = np.array(codes, np.uint8).reshape(index.ntotal, index.code_size)
        with np.load(paths[1], allow_pickle=False) as z:
            out = {k: z[k] for k in z.files if k != "units"}
        packed = True
    if packed or fmt == "faiss":
        assert codes.shape[1] == (units + 7) // 8
        codes = np.unpackbits(codes, axis=1)
        assert not codes[:, units:].any(), "padding bits must be zero"
        codes = codes[:, :units]
    else:
        assert codes.shape[1] == units and set(np.unique(codes).tolist()) <= {0, 1}
    return {**out, "codes": codes.astype(bool)}


CASES = [(fmt, src, packed, rows) for fmt in FORMATS for src in ("digits", "odd") for packed in (False, True)
         for rows in ("all", "query") if not (fmt in ("csv", "faiss") and packed)]


@pytest.mark.parametrize("fmt, src, packed, rows", CASES)
def test_round_trip(tmp_path, sources, fmt, src, packed, rows):
    s = sources[src]
    out = tmp_path / f"codes.{fmt}"
    paths = export_codes(s["path"], out, fmt=fmt, layer=s["layer"], packed=packed, rows=rows)
    assert paths[0] == out and all(p.exists() for p in paths)
    assert not list(tmp_path.glob("*.partial"))
    sel = np.ones(len(s["bits"]), bool) if rows == "all" else s["is_query"]
    got = read_back(fmt, paths, s["bits"].shape[1], packed)
    np.testing.assert_array_equal(got["codes"], s["bits"][sel])
    np.testing.assert_array_equal(got["index"], s["index"][sel])
    np.testing.assert_array_equal(got["labels"], s["labels"][sel])
    np.testing.assert_array_equal(got["is_query"], s["is_query"][sel])


@pytest.mark.parametrize("src", ["digits", "odd"])
def test_faiss_search_matches_brute_force_hamming(tmp_path, sources, src):
    """Distances from the exported index equal a Python count of differing bits."""
    import faiss

    s = sources[src]
    out = tmp_path / "g.faiss"
    export_codes(s["path"], out, layer=s["layer"], rows="gallery")
    index = faiss.read_index_binary(str(out))
    gallery = s["bits"][~s["is_query"]]
    queries = s["bits"][s["is_query"]][:20]
    k = 10
    dist, ids = index.search(np.packbits(queries, axis=1), k)
    for qi, q in enumerate(queries):
        ref = sorted(sum(int(a != b) for a, b in zip(q, g)) for g in gallery)[:k]
        assert sorted(dist[qi].tolist()) == ref
        for j, d in zip(ids[qi], dist[qi]):
            assert int((gallery[j] != q).sum()) == d


def test_npy_export_imports_back(tmp_path, sources):
    """The npy export and its sidecars are exactly what ``import-codes`` takes."""
    from nacscope.codes.importing import import_codes

    s = sources["digits"]
    paths = export_codes(s["path"], tmp_path / "c.npy", layer="fc2")
    assert [p.name for p in paths] == ["c.npy", "c.index.npy", "c.labels.npy", "c.is_query.npy"]
    import_codes(paths[0], tmp_path / "back.h5", labels_path=paths[2], query_mask_path=paths[3])
    with CodeSet(tmp_path / "back.h5") as cs:
        np.testing.assert_array_equal(cs.bits("code").astype(bool), s["bits"])
        np.testing.assert_array_equal(cs.labels(), s["labels"])
        np.testing.assert_array_equal(cs.query_mask, s["is_query"])


@pytest.mark.parametrize("units", [1, 7, 8, 9, 13, 64, 65])
def test_hex_rows_reference(units):
    bits = np.random.default_rng(units).integers(0, 2, (50, units)).astype(bool)
    hexes = hex_rows(np.packbits(bits, axis=1))
    assert all(len(h) == 2 * ((units + 7) // 8) for h in hexes)
    np.testing.assert_array_equal(np.array([bits_from_hex(h, units) for h in hexes]), bits)


@pytest.mark.parametrize("fmt, module", [("faiss", "faiss"), ("parquet", "pyarrow")])
def test_missing_optional_package(tmp_path, sources, monkeypatch, fmt, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(OptionError, match=rf"pip install {'faiss-cpu' if fmt == 'faiss' else 'pyarrow'} .*extra '{fmt}'"):
        export_codes(sources["odd"]["path"], tmp_path / "x", fmt=fmt)
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_existing_output(tmp_path, sources, monkeypatch):
    """A failure mid-export leaves the old file untouched and no partial file behind."""
    import nacscope.export as ex

    out = tmp_path / "c.npz"
    out.write_bytes(b"old")

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ex, "_write_npz", boom)
    with pytest.raises(RuntimeError):
        export_codes(sources["odd"]["path"], out, force=True)
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]


def test_output_paths_npy_without_labels(tmp_path):
    path = tmp_path / "nolab.h5"
    with CodeSetWriter(path, [LayerSpec("code", 8)]) as w:
        w.append({"code": np.eye(8, dtype=bool)})
    with CodeSet(path) as cs:
        assert set(output_paths(tmp_path / "o.npy", "npy", cs)) == {"main", "index"}
    paths = export_codes(path, tmp_path / "o.npy")
    np.testing.assert_array_equal(np.load(paths[0]), np.eye(8, dtype=np.uint8))
