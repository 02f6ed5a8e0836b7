"""The code-set format: bit-exact round trips, the plain-h5py reading of the spec, SWMR, atomic writes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from nacscope.codes import CodeSet, CodeSetWriter, LayerSpec, pack_bits, partial_path, unpack_bits
from tests.helpers import hang_guard, write_bad_codeset
from nacscope.codes.validate import validate
from nacscope.errors import CodeSetError, OptionError

D_VALUES = [1, 7, 8, 9, 63, 64, 65, 4096]
N_VALUES = [1, 1000, pytest.param(100_000, marks=pytest.mark.slow)]


def _random_bits(n: int, d: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, size=(n, d), dtype=np.uint8).astype(bool)


@pytest.mark.parametrize("d", D_VALUES)
@pytest.mark.parametrize("n", N_VALUES)
def test_round_trip_api(tmp_path, n, d):
    bits = _random_bits(n, d, seed=n * 7919 + d)
    path = tmp_path / "c.h5"
    with CodeSetWriter(path, [LayerSpec("code", d, kind="code")]) as w:
        step = max(1, n // 3)  # several appends of uneven size
        for s in range(0, n, step):
            w.append({"code": bits[s : s + step]})
    with CodeSet(path) as cs:
        assert cs.n_samples == n and cs.complete
        assert cs.layer("code").units == d
        assert cs.layer("code").row_bytes == (d + 7) // 8
        np.testing.assert_array_equal(cs.bits("code"), bits)
        # Row access returns the same rows in the order asked, duplicates included.
        rows = np.array([n - 1, 0, n // 2, 0])
        np.testing.assert_array_equal(cs.bits("code", rows), bits[rows])
    assert validate(path) == []


def test_pack_bits_order_is_big_endian_per_byte():
    # Hand-worked: units 0 and 9 on, 10 units -> bytes 0b10000000, 0b01000000.
    bits = np.zeros((1, 10), bool)
    bits[0, [0, 9]] = True
    np.testing.assert_array_equal(pack_bits(bits), [[0b1000_0000, 0b0100_0000]])
    np.testing.assert_array_equal(unpack_bits(pack_bits(bits), 10), bits.astype(np.uint8))


def test_packed_append_equals_unpacked(tmp_path):
    bits = _random_bits(300, 13, 1)
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    with CodeSetWriter(a, [LayerSpec("x", 13)]) as w:
        w.append({"x": bits})
    with CodeSetWriter(b, [LayerSpec("x", 13)]) as w:
        w.append({"x": pack_bits(bits)}, packed=True)
    with CodeSet(a) as ca, CodeSet(b) as cb:
        np.testing.assert_array_equal(ca.packed("x"), cb.packed("x"))


def test_packed_append_rejects_nonzero_padding(tmp_path):
    with CodeSetWriter(tmp_path / "a.h5", [LayerSpec("x", 13)]) as w:
        with pytest.raises(OptionError, match="padding"):
            w.append({"x": np.full((2, 2), 255, np.uint8)}, packed=True)
        w.append({"x": np.zeros((2, 13), bool)})


def test_spec_reading_with_plain_h5py(digits_codeset, digits):
    """Follow docs/format.md with nothing but h5py and numpy."""
    from tests.conftest import random_relu_codes

    x, y = digits
    expected = random_relu_codes(x)
    with h5py.File(digits_codeset, "r") as f:
        assert f.attrs["format"] == "nacscope.codeset"
        assert f.attrs["format_version"] == 1
        assert bool(f.attrs["complete"]) and f.attrs["n_samples"] == len(y)
        np.testing.assert_array_equal(f["samples/labels"][()], y)
        assert f["samples/labels"].attrs["kind"] == "class"
        np.testing.assert_array_equal(f["samples/index"][()], np.arange(len(y)))
        assert [c.decode() for c in f["samples/class_names"][()]] == [str(i) for i in range(10)]
        assert f["samples/thumbnails"].shape == (len(y), 8, 8, 1)
        order = sorted(f["layers"], key=lambda k: f["layers"][k].attrs["order"])
        assert order == ["fc1", "fc2"]
        for name in order:
            g = f["layers"][name]
            units = int(g.attrs["units"])
            assert g.attrs["bitorder"] == "big"
            assert tuple(g.attrs["shape"]) == (units,)
            bits = np.unpackbits(g["bits"][()], axis=1, count=units, bitorder="big").astype(bool)
            np.testing.assert_array_equal(bits, expected[name])
        np.testing.assert_allclose(f["features/h"][()], x, rtol=1e-3)


def test_signed_01_and_bool_inputs_give_identical_content(tmp_path):
    from nacscope.codes.importing import import_codes

    bits = _random_bits(500, 37, 3)
    variants = {"bool": bits, "01": bits.astype(np.int64), "pm1": np.where(bits, 1, -1).astype(np.int8),
                "float01": bits.astype(np.float32)}
    contents = []
    for name, arr in variants.items():
        np.save(tmp_path / f"{name}.npy", arr)
        out = import_codes(tmp_path / f"{name}.npy", tmp_path / f"{name}.h5")
        with CodeSet(out) as cs:
            contents.append(cs.packed("code"))
    for c in contents[1:]:
        np.testing.assert_array_equal(c, contents[0])
    np.testing.assert_array_equal(unpack_bits(contents[0], 37).astype(bool), bits)


def test_refuses_existing_output_and_keeps_it(tmp_path):
    path = tmp_path / "c.h5"
    path.write_bytes(b"precious")
    with pytest.raises(CodeSetError, match="exists"):
        CodeSetWriter(path, [LayerSpec("x", 4)])
    # With force, a failed write leaves the old file untouched.
    with pytest.raises(RuntimeError):
        with CodeSetWriter(path, [LayerSpec("x", 4)], force=True) as w:
            w.append({"x": np.ones((3, 4), bool)})
            raise RuntimeError("boom")
    assert path.read_bytes() == b"precious"
    assert not partial_path(path).exists()


@pytest.mark.parametrize(
    "kwargs, match",
    [({"layers": []}, "at least one layer"), ({"layers": [LayerSpec("a", 3), LayerSpec("a", 3)]}, "duplicate"),
     ({"label_kind": "regression"}, "label_kind")],
)
def test_writer_rejects_bad_layouts(tmp_path, kwargs, match):
    kwargs = {"layers": [LayerSpec("x", 4)], **kwargs}
    with pytest.raises(OptionError, match=match):
        CodeSetWriter(tmp_path / "c.h5", kwargs.pop("layers"), **kwargs)
    assert not (tmp_path / "c.h5").exists()


@pytest.mark.parametrize("spec", [dict(name="bad/name", units=3), dict(name="x", units=0),
                                  dict(name="x", units=6, shape=(4, 2)), dict(name="x", units=3, kind="tanh")])
def test_layer_spec_validation(spec):
    with pytest.raises(OptionError):
        LayerSpec(**spec)


WRITER = textwrap.dedent(
    """
    import sys, time, numpy as np
    from nacscope.codes import CodeSetWriter, LayerSpec
    path, batches, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    rng = np.random.default_rng(0)
    w = CodeSetWriter(path, [LayerSpec("code", 32, kind="code")], label_kind="class")
    for i in range(batches):
        w.append({"code": rng.integers(0, 2, (100, 32)).astype(bool)}, labels=np.full(100, i))
        print(i, flush=True)
        time.sleep(pause)
    w.close()
    """
)


def _start_writer(path, batches, pause):
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(batches), str(pause)],
                            stdout=subprocess.PIPE, text=True)


def test_swmr_reader_follows_a_writer(tmp_path):
    path = tmp_path / "live.h5"
    proc = _start_writer(path, batches=4, pause=0.6)
    try:
        assert proc.stdout.readline().strip() == "0"  # first batch flushed
        cs = CodeSet(path)  # final name absent: opens the .partial in SWMR mode
        assert cs.swmr and not cs.complete
        seen = [cs.refresh()]
        assert seen[0] >= 100
        assert proc.stdout.readline().strip() == "1"
        seen.append(cs.refresh())
        assert seen[1] >= 200
        labels = cs.labels(slice(0, seen[1]))
        np.testing.assert_array_equal(labels[:200], np.repeat([0, 1], 100))
        cs.close()
    finally:
        proc.wait(timeout=hang_guard())
    assert proc.returncode == 0
    with CodeSet(path) as cs:
        assert cs.complete and cs.n_samples == 400


def test_killed_writer_leaves_no_final_file(tmp_path):
    path = tmp_path / "killed.h5"
    proc = _start_writer(path, batches=1000, pause=0.05)
    assert proc.stdout.readline().strip() == "0"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=hang_guard())
    assert not path.exists()
    # What is left is clearly named as partial, and nacscope reports it as incomplete.
    assert partial_path(path).exists()
    with CodeSet(path) as cs:
        assert not cs.complete


def test_attrs_round_trip_json(tmp_path):
    path = tmp_path / "c.h5"
    cfg = {"arch": "mlp", "bits": 64, "lr": 0.5}
    with CodeSetWriter(path, [LayerSpec("x", 4)], attrs={"config": cfg, "dataset": "digits"}) as w:
        w.append({"x": np.ones((2, 4), bool)})
    with CodeSet(path) as cs:
        assert cs.attrs["config"] == cfg and cs.attrs["dataset"] == "digits"
    with h5py.File(path) as f:
        assert json.loads(f.attrs["config"]) == cfg


@pytest.mark.parametrize("case", ["missing", "directory", "not_hdf5", "truncated", "not_codeset", "newer_version",
                                  "no_layers_group"])
def test_reader_errors(tmp_path, digits_codeset, case):
    path = write_bad_codeset(tmp_path / "bad.h5", case, digits_codeset)
    with pytest.raises(CodeSetError) as info:
        CodeSet(path)
    assert "\n" not in str(info.value)


def test_validate_reports_every_violation(tmp_path, digits_codeset):
    path = tmp_path / "v.h5"
    path.write_bytes(digits_codeset.read_bytes())
    with h5py.File(path, "r+") as f:
        f["layers/fc1"].attrs["units"] = 63  # now disagrees with the 8-byte rows? 63 -> 8 bytes: padding bit set
        del f["layers/fc2"].attrs["bitorder"]
        f.attrs["n_samples"] = 5
        del f["samples/labels"]
        f["samples/labels"] = np.arange(3)
    problems = validate(path)
    joined = "\n".join(problems)
    assert "n_samples=5" in joined
    assert "layers/fc2: attribute 'bitorder'" in joined
    assert "samples/labels: 3 rows" in joined
    assert "layers/fc1/bits: padding bits" in joined
    assert len(problems) >= 4
