"""Deterministic mutations of one small valid code set, for ``test_fuzz.py``.

Each case is ``Case(name, expect, mutate)``: ``mutate(path)`` changes the code set at ``path`` (and
may write its sidecar ``<path>.cache`` or files beside it) in place. ``expect`` is what every
reading command must do with the result:

* ``"refuse"``: exit 2 with one ``error:`` line (the file breaks ``docs/format.md``);
* ``"accept"``: exit 0 with results that match the file as read by plain h5py;
* ``"either"``: one of the two (random corruption: whether it hits metadata or data depends on the
  offset), never a traceback, never results that differ from what h5py reads.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

N = 200
#: What a hostile file links to: bytes that must never come out of nacscope.
SECRET = b"root:x:0:0:root:/root:/bin/bash\n" * 64

DATASETS = {  # member -> (shape, dtype) in the base file
    "samples/index": ((N,), "int64"),
    "samples/labels": ((N,), "int64"),
    "samples/is_query": ((N,), "bool"),
    "samples/thumbnails": ((N, 8, 8, 1), "uint8"),
    "layers/pix/bits": ((N, 8), "uint8"),
    "layers/code/bits": ((N, 2), "uint8"),
    "features/h": ((N, 64), "float16"),
}


@dataclass(frozen=True)
class Case:
    name: str
    expect: str  # "refuse" | "accept" | "either"
    mutate: Callable[[Path], None]
    #: The sidecar cache is built (by ``analyze``) before ``mutate`` runs.
    with_cache: bool = False


def build_base(path: Path) -> Path:
    """200 digits, two layers of real bits (pixels > 7: 64 units; a 12-unit slice as the code), labels,
    a query split, thumbnails and features."""
    from sklearn.datasets import load_digits

    from nacscope.codes import CodeSetWriter, LayerSpec

    d = load_digits()
    x, y = d.data[:N].astype(np.float32), d.target[:N].astype(np.int64)
    bits = x > 7  # (N, 64)
    q = np.zeros(N, bool)
    q[::10] = True
    thumbs = (x.reshape(-1, 8, 8, 1) * 255 / 16).astype(np.uint8)
    specs = [LayerSpec("pix", 64, shape=(8, 8)), LayerSpec("code", 12, kind="code")]
    with CodeSetWriter(path, specs, label_kind="class", class_names=[str(i) for i in range(10)], has_query_mask=True,
                       thumbnail_shape=(8, 8, 1), features={"h": 64}, attrs={"dataset": "digits"}) as w:
        w.append({"pix": bits, "code": bits[:, 20:32]}, labels=y, is_query=q, thumbnails=thumbs, features={"h": x})
    return path


# -- helpers -------------------------------------------------------------------------------------
def _edit(fn: Callable[[h5py.File], None]) -> Callable[[Path], None]:
    def mutate(path: Path) -> None:
        with h5py.File(path, "r+", locking=False) as f:
            fn(f)
    return mutate


def _replace(member: str, make: Callable[[np.ndarray], object]) -> Callable[[Path], None]:
    """Replace dataset ``member`` by ``make(old values)``: an array (a new dataset, old attributes kept) or
    the string "group" (an empty group)."""
    def fn(f: h5py.File) -> None:
        old = f[member][()]
        attrs = dict(f[member].attrs)
        del f[member]
        new = make(old)
        if isinstance(new, str) and new == "group":
            f.create_group(member)
            return
        ds = f.create_dataset(member, data=new)
        for k, v in attrs.items():
            ds.attrs[k] = v
    return _edit(fn)


def _secret_files(folder: Path, shape: tuple[int, ...], dtype: str) -> tuple[Path, Path]:
    """A raw file and an HDF5 file beside the code set holding SECRET bytes shaped like the member."""
    raw = folder / "secret.bin"
    raw.write_bytes(SECRET * (1 + int(np.prod(shape)) * np.dtype(dtype).itemsize // len(SECRET)))
    h5 = folder / "secret.h5"
    data = np.frombuffer(raw.read_bytes()[: int(np.prod(shape)) * np.dtype(dtype).itemsize], dtype=dtype).reshape(shape)
    with h5py.File(h5, "w") as f:
        f.create_dataset("data", data=data)
    return raw, h5


def _foreign(member: str, how: str) -> Callable[[Path], None]:
    shape, dtype = DATASETS[member]

    def mutate(path: Path) -> None:
        raw, h5 = _secret_files(path.parent, shape, dtype)
        with h5py.File(path, "r+", locking=False) as f:
            attrs = dict(f[member].attrs)
            del f[member]
            if how == "extlink":
                f[member] = h5py.ExternalLink(str(h5), "/data")
                return
            if how == "external":
                ds = f.create_dataset(member, shape, dtype, external=[(str(raw), 0, h5py.h5f.UNLIMITED)])
            else:  # a virtual dataset mapping the other file
                layout = h5py.VirtualLayout(shape, dtype)
                layout[...] = h5py.VirtualSource(str(h5), "data", shape)
                ds = f.create_virtual_dataset(member, layout)
            for k, v in attrs.items():
                ds.attrs[k] = v
    return mutate


def _set_attr(member: str, key: str, value) -> Callable[[Path], None]:
    def fn(f: h5py.File) -> None:
        if value is _DELETE:
            del f[member].attrs[key]
        else:
            f[member].attrs[key] = value
    return _edit(fn)


_DELETE = object()


def _bytes(fn: Callable[[bytearray], bytearray]) -> Callable[[Path], None]:
    def mutate(path: Path) -> None:
        path.write_bytes(bytes(fn(bytearray(path.read_bytes()))))
    return mutate


def _flip(offset: int, mask: int = 0xFF) -> Callable[[bytearray], bytearray]:
    def fn(b: bytearray) -> bytearray:
        if offset < len(b):
            b[offset] ^= mask
        return b
    return fn


# -- the table -----------------------------------------------------------------------------------
def _dataset_cases() -> list[Case]:
    cases: list[Case] = []
    for member, (shape, dtype) in DATASETS.items():
        m = member.replace("/", ".")
        cases += [
            Case(f"{m}.rank+1", "refuse", _replace(member, lambda a: a[:, None])),
            Case(f"{m}.scalar", "refuse", _replace(member, lambda a: a.reshape(-1)[0])),
            Case(f"{m}.missing", "accept" if member.startswith(("features", "samples/labels", "samples/is_query",
                                                               "samples/thumbnails")) else "refuse",
                 _edit(lambda f, member=member: f.__delitem__(member))),
            Case(f"{m}.group", "refuse", _replace(member, lambda a: "group")),
            Case(f"{m}.rows-1", "refuse", _replace(member, lambda a: a[:-1])),
            Case(f"{m}.rows+1", "refuse", _replace(member, lambda a: np.concatenate([a, a[:1]]))),
            Case(f"{m}.rows0", "refuse", _replace(member, lambda a: a[:0])),
            Case(f"{m}.extlink", "refuse", _foreign(member, "extlink")),
            Case(f"{m}.external", "refuse", _foreign(member, "external")),
            Case(f"{m}.vds", "refuse", _foreign(member, "vds")),
            Case(f"{m}.dangling-softlink", "refuse",
                 _edit(lambda f, member=member: (f.__delitem__(member), f.__setitem__(member, h5py.SoftLink("/nowhere"))))),
            Case(f"{m}.softlink-to-group", "refuse",
                 _edit(lambda f, member=member: (f.__delitem__(member), f.__setitem__(member, h5py.SoftLink("/samples"))))),
        ]
        if len(shape) > 1:
            cases += [
                Case(f"{m}.flat", "refuse", _replace(member, lambda a: a.reshape(len(a), -1)[:, 0])),
                # Bits must be ceil(units / 8) bytes wide; thumbnails (H, W) and features (F) may have any size.
                Case(f"{m}.width-1", "refuse" if "bits" in member else "accept", _replace(member, lambda a: a[:, :-1])),
                Case(f"{m}.width+1", "refuse" if "bits" in member else "accept",
                     _replace(member, lambda a: np.concatenate([a, a[:, :1]], axis=1))),
            ]
        # A soft link to a copy of itself inside the file is fine (the spec allows links to the right kind).
        cases.append(Case(f"{m}.softlink-to-copy", "accept", _edit(lambda f, member=member: (
            f.copy(member, f"/copy_{member.replace('/', '_')}"), f.__delitem__(member),
            f.__setitem__(member, h5py.SoftLink(f"/copy_{member.replace('/', '_')}"))))))
        wrong = ["float64", "int8", "uint64", "float32", "str", "compound", "bool", "int64"]
        for dt in wrong:
            if dt == dtype or (dt == "int64" and dtype == "uint8" and "bits" not in member and "thumb" not in member):
                continue
            def conv(a, dt=dt):
                if dt == "str":
                    return a.astype(str).astype(h5py.string_dtype()) if a.ndim == 1 else a.astype("S4")
                if dt == "compound":
                    out = np.zeros(a.shape, dtype=[("x", "i4"), ("y", "f4")])
                    out["x"] = a
                    return out
                return a.astype(dt)
            # Integers stored as another integer width hold the same values: readers may accept them.
            ok_int = dtype == "int64" and dt in ("int8", "uint64")
            ok_int |= member == "features/h" and dt in ("float32", "float64")  # floats of another width
            cases.append(Case(f"{m}.dtype-{dt}", "either" if ok_int else "refuse", _replace(member, conv)))
    return cases


def _attr_cases() -> list[Case]:
    cases: list[Case] = []
    root_bad = {
        "format": [_DELETE, "nacscope.other", 1, np.array([1, 2])],
        "format_version": [_DELETE, 2, 0, -1, "1", 1.5, True, 2**62, np.array([1, 1])],
        "nacscope_version": [_DELETE, 3, np.array([0.5])],
        "created": [_DELETE, 7, np.array([1, 2])],
        "complete": [_DELETE, "yes", 1.0, np.array([True, False])],
        "n_samples": [_DELETE, N + 1, -5, "200", 2.5, 2**62, np.array([N])],
    }
    for key, values in root_bad.items():
        for i, v in enumerate(values):
            name = f"root.{key}.{'delete' if v is _DELETE else i}"
            cases.append(Case(name, "refuse", _set_attr("/", key, v)))
    # Attributes nobody needs to be exact: unknown values and types are ignored.
    for i, (key, v) in enumerate([("format_minor", 99), ("format_minor", "x"), ("dataset", 5), ("command", np.zeros(3)),
                                  ("config", "{not json"), ("model_source", "[1,2"), ("n_expected", "many"),
                                  ("extra", np.array([b"\xff\xfe"])), ("checkpoint", b"\xff\xfe")]):
        cases.append(Case(f"root.{key}.odd{i}", "accept", _set_attr("/", key, v)))
    for layer, units in (("pix", 64), ("code", 12)):
        g = f"layers/{layer}"
        bad = {
            "units": [_DELETE, 0, -1, units + 1, units - 1, 2**40, "12", 1.0 * units, True, np.array([units, units])],
            "shape": [_DELETE, np.array([units + 1]), np.array([0, units]), np.array([-units, -1]), "12",
                      np.array([1.5 * units]), np.array([[units]])],
            "kind": [_DELETE, "bogus", 3],
            "bitorder": [_DELETE, "little", 1],
            "order": ["first", 1.5, np.array([1, 2])],
        }
        for key, values in bad.items():
            for i, v in enumerate(values):
                cases.append(Case(f"{g.replace('/', '.')}.{key}.{'delete' if v is _DELETE else i}", "refuse",
                                  _set_attr(g, key, v)))
        cases.append(Case(f"{g.replace('/', '.')}.order-huge", "accept", _set_attr(g, "order", 2**62)))
        cases.append(Case(f"{g.replace('/', '.')}.order-delete", "accept", _set_attr(g, "order", _DELETE)))
        cases.append(Case(f"{g.replace('/', '.')}.extra-attr", "accept", _set_attr(g, "note", np.arange(3))))
    for i, v in enumerate(["bogus", 3, "multihot"]):
        cases.append(Case(f"samples.labels.kind.{i}", "refuse", _set_attr("samples/labels", "kind", v)))
    cases.append(Case("samples.labels.kind.delete", "accept", _set_attr("samples/labels", "kind", _DELETE)))
    return cases


def _structure_cases() -> list[Case]:
    def as_dataset(name):
        return _edit(lambda f: (f.__delitem__(name), f.create_dataset(name, data=np.arange(3))))

    cases = [Case(f"group.{g}.dataset", "refuse", as_dataset(g)) for g in ("samples", "layers", "features", "layers/pix")]
    cases += [
        Case("group.layers.missing", "refuse", _edit(lambda f: f.__delitem__("layers"))),
        Case("group.samples.missing", "refuse", _edit(lambda f: f.__delitem__("samples"))),
        Case("group.layers.empty", "refuse", _edit(lambda f: (f.__delitem__("layers/pix"), f.__delitem__("layers/code")))),
        Case("group.features.missing", "accept", _edit(lambda f: f.__delitem__("features"))),
        Case("group.analysis.dataset", "refuse", _edit(lambda f: f.create_dataset("analysis", data=[1]))),
        Case("group.analysis.entry-dataset", "refuse", _edit(lambda f: f.create_dataset("analysis/layer.pix", data=[1]))),
        Case("group.projections.wrong-shape", "refuse", _edit(lambda f: f.create_dataset("projections/umap.pix", data=np.zeros((N, 3))))),
        Case("group.layers.extra-dataset", "refuse", _edit(lambda f: f.create_dataset("layers/stray", data=np.zeros(N)))),
        Case("group.layer.only-code", "accept", _edit(lambda f: f.__delitem__("layers/pix"))),
        Case("extra.root-dataset", "accept", _edit(lambda f: f.create_dataset("notes", data=np.arange(5)))),
        Case("extra.root-group", "accept", _edit(lambda f: f.create_group("mine/deep/er"))),
        Case("extra.layer-member", "accept", _edit(lambda f: f.create_dataset("layers/pix/extra", data=np.zeros(3)))),
        Case("extra.samples-member", "accept", _edit(lambda f: f.create_dataset("samples/weights", data=np.ones(N)))),
        Case("extra.root-extlink", "refuse", lambda p: _extlink_at(p, "/notes")),
        Case("extra.layer-softlink-copy", "accept", _edit(lambda f: f.__setitem__("layers/pix2", h5py.SoftLink("/layers/pix")))),
        Case("extra.class_names.short", "either", _replace("samples/class_names", lambda a: a[:3])),
        Case("extra.class_names.int", "refuse", _replace("samples/class_names", lambda a: np.arange(10))),
        Case("extra.class_names.2d", "refuse", _replace("samples/class_names", lambda a: a.reshape(2, 5))),
        Case("extra.class_names.missing", "accept", _edit(lambda f: f.__delitem__("samples/class_names"))),
    ]
    return cases


def _extlink_at(path: Path, where: str) -> None:
    _, h5 = _secret_files(path.parent, (8,), "uint8")
    with h5py.File(path, "r+", locking=False) as f:
        f[where] = h5py.ExternalLink(str(h5), "/data")


def _semantic_cases() -> list[Case]:
    def values(member, fn):
        return _edit(lambda f: f[member].__setitem__(Ellipsis, fn(f[member][()])))

    return [
        Case("sem.is_query.all-true", "accept", values("samples/is_query", lambda a: np.ones_like(a))),
        Case("sem.is_query.all-false", "accept", values("samples/is_query", lambda a: np.zeros_like(a))),
        Case("sem.is_query.one", "accept", values("samples/is_query", lambda a: np.arange(N) == 7)),
        Case("sem.index.duplicates", "accept", values("samples/index", lambda a: a // 2)),
        Case("sem.index.reversed", "accept", values("samples/index", lambda a: a[::-1])),
        Case("sem.index.negative", "accept", values("samples/index", lambda a: -a - 1)),
        Case("sem.index.huge", "accept", values("samples/index", lambda a: a + 2**62)),
        Case("sem.labels.negative", "either", values("samples/labels", lambda a: a - 100)),
        Case("sem.labels.huge", "either", values("samples/labels", lambda a: a + 2**62)),
        Case("sem.labels.constant", "accept", values("samples/labels", lambda a: np.zeros_like(a))),
        Case("sem.labels.unique", "accept", values("samples/labels", lambda a: np.arange(N))),
        Case("sem.bits.padding", "accept", values("layers/code/bits", lambda a: a | np.uint8(0x0F))),
        Case("sem.bits.all-ones", "accept", values("layers/pix/bits", lambda a: np.full_like(a, 255))),
        Case("sem.bits.all-zero", "accept", values("layers/code/bits", lambda a: np.zeros_like(a))),
        Case("sem.features.nan", "accept", values("features/h", lambda a: np.full_like(a, np.nan))),
        Case("sem.features.inf", "accept", values("features/h", lambda a: np.full_like(a, np.inf))),
        Case("sem.thumbnails.2ch", "refuse", _replace("samples/thumbnails", lambda a: np.concatenate([a, a], axis=3))),
        Case("sem.one-row", "refuse", _edit(lambda f: f.attrs.__setitem__("n_samples", 1))),
        Case("sem.incomplete", "accept", _edit(lambda f: (f.attrs.__setitem__("complete", False),
                                                         f.attrs.__setitem__("n_samples", -1)))),
    ]


def _byte_cases() -> list[Case]:
    cases = [
        Case("bytes.empty", "refuse", _bytes(lambda b: bytearray())),
        Case("bytes.text", "refuse", _bytes(lambda b: bytearray(b"format = nacscope.codeset\n"))),
        Case("bytes.signature-only", "refuse", _bytes(lambda b: b[:8])),
        Case("bytes.directory", "refuse", lambda p: (p.unlink(), p.mkdir())),
        Case("bytes.symlink-to-secret", "refuse", lambda p: (p.unlink(), (p.parent / "s.txt").write_bytes(SECRET),
                                                             p.symlink_to(p.parent / "s.txt"))),
        Case("bytes.stale-write-flags", "accept", _stale_flags),
    ]
    for frac in (0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99):
        cases.append(Case(f"bytes.truncate-{frac}", "either", _bytes(lambda b, frac=frac: b[: int(len(b) * frac)])))
    cases.append(Case("bytes.truncate-1", "either", _bytes(lambda b: b[:-1])))
    cases.append(Case("bytes.appended-garbage", "either", _bytes(lambda b: b + bytearray(SECRET))))
    for off in range(48):  # the superblock (v2/v3: 48 bytes with its checksum)
        cases.append(Case(f"bytes.superblock-{off}", "either", _bytes(_flip(off))))
    rng = np.random.default_rng(14)
    size = 110_000  # the base file's size is about this; offsets past the end are taken modulo the size
    for i, off in enumerate(sorted(rng.integers(48, size, 60).tolist())):
        mask = int(rng.integers(1, 256))
        cases.append(Case(f"bytes.random-{i:02d}-at-{off}", "either",
                          _bytes(lambda b, off=off, mask=mask: _flip(off % len(b), mask)(b))))
    return cases


def _stale_flags(path: Path) -> None:
    from nacscope.codes.repair import lookup3

    b = bytearray(path.read_bytes())
    assert b[8] in (2, 3)
    body_len = 12 + 4 * b[9]
    b[11] = 0x05  # "open for write" + SWMR: what a killed writer leaves
    b[body_len : body_len + 4] = lookup3(bytes(b[:body_len])).to_bytes(4, "little")
    path.write_bytes(bytes(b))


def all_cases() -> list[Case]:
    from tests.codes.fuzz_cache_cases import cache_cases

    cases = _dataset_cases() + _attr_cases() + _structure_cases() + _semantic_cases() + _byte_cases() + cache_cases()
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "duplicate case names"
    return cases


def copy_base(base: Path, folder: Path, with_cache: bool) -> Path:
    path = folder / "c.h5"
    shutil.copyfile(base, path)
    if with_cache:
        shutil.copyfile(base.with_name(base.name + ".cache"), path.with_name(path.name + ".cache"))
    return path
