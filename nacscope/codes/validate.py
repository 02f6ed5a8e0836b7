"""Check a file against the code-set specification (``docs/format.md``) and report every violation."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from nacscope.codes.bits import packed_width
from nacscope.codes.schema import FORMAT_NAME, FORMAT_VERSION, LAYER_KINDS

REQUIRED_ROOT_ATTRS = ("format", "format_version", "nacscope_version", "created", "complete", "n_samples")


def validate(path: str | os.PathLike, *, check_padding: bool = True) -> list[str]:
    """Return the list of ways ``path`` departs from the code-set spec (empty when valid).

    Unlike :class:`~nacscope.codes.format.CodeSet`, which stops at the first problem, this walks
    the whole file and reports everything it finds. ``check_padding`` reads every bit matrix once
    to verify that the padding bits past ``units`` are zero.
    """
    p = Path(path)
    if not p.is_file():
        return [f"{p}: not a file"]
    if not h5py.is_hdf5(p):
        return [f"{p}: not an HDF5 file"]
    try:
        f = h5py.File(p, "r", locking=False)
    except OSError as exc:
        msg = str(exc).splitlines()[0]
        if "already open for write" in msg or "file close degree" in msg:
            return [f"{p}: write flags left set by a killed writer; run `h5clear -s {p}` or open it with nacscope"]
        return [f"{p}: cannot be opened as HDF5 ({msg})"]
    with f:
        return violations(f, check_padding=check_padding)


def violations(f: h5py.File, *, check_padding: bool = False, first: bool = False) -> list[str]:
    """Every departure of an open file from the spec (``first``: stop at the first one).

    Closed-file rules come first: an external link, external raw storage or a virtual dataset
    anywhere would make nacscope read bytes from outside the file. Any exception while looking
    (an attribute of an unexpected type, a member of the wrong kind) is itself a violation.
    """
    try:
        closed = foreign_storage(f, first=first)
    except Exception as exc:  # noqa: BLE001 - damaged metadata while walking the links
        return [f"unreadable metadata ({type(exc).__name__}: {_first_line(exc)})"]
    if closed and first:
        return closed
    try:
        errors = closed + _validate_open(f, check_padding)
    except Exception as exc:  # noqa: BLE001 - a malformed file must give a line, never a traceback
        errors = closed + [f"malformed member or attribute ({type(exc).__name__}: {_first_line(exc)})"]
    return errors[:1] if first else errors


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else ""


def foreign_storage(f: h5py.File, *, first: bool = False) -> list[str]:
    """Members whose data lives outside the file: external links, external raw storage, virtual datasets.

    Soft links are followed by the schema check like any member (they must point at a member of
    the right kind inside the file).
    """
    found: list[str] = []

    def visit(name: str, link) -> bool | None:
        if isinstance(link, h5py.ExternalLink):
            found.append(f"{name}: external link to {link.filename}:{link.path} (code sets must be self-contained)")
        elif isinstance(link, h5py.SoftLink):
            pass
        else:
            obj = f.get(name)
            if isinstance(obj, h5py.Dataset):
                if obj.external:
                    found.append(f"{name}: stored in external file {obj.external[0][0]!s} (code sets must be self-contained)")
                elif obj.is_virtual:
                    found.append(f"{name}: virtual dataset mapping other files (code sets must be self-contained)")
        return True if (first and found) else None

    f.visititems_links(visit)
    return found[:1] if first else found


def _int_attr(errors: list[str], attrs, key: str, where: str) -> int | None:
    v = attrs.get(key)
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    if v is None or isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        errors.append(f"{where}: attribute {key!r} must be an integer, got {type(v).__name__}")
        return None
    return int(v)


def _str_attr(attrs, key: str) -> str | None:
    v = attrs.get(key)
    if isinstance(v, bytes):
        v = v.decode(errors="replace")
    return v if isinstance(v, str) else None


def _validate_open(f: h5py.File, check_padding: bool) -> list[str]:
    errors: list[str] = []
    a = f.attrs
    for key in REQUIRED_ROOT_ATTRS:
        if key not in a:
            errors.append(f"root: missing attribute {key!r}")
    if "format" in a and _str_attr(a, "format") != FORMAT_NAME:
        errors.append(f"root: format is {a.get('format')!r}, expected {FORMAT_NAME!r}")
    if "format_version" in a:
        version = _int_attr(errors, a, "format_version", "root")
        if version is not None and not (1 <= version <= FORMAT_VERSION):
            errors.append(f"root: format_version {version} not supported (1..{FORMAT_VERSION})")
    if "complete" in a and not isinstance(a.get("complete"), (bool, np.bool_)):
        errors.append(f"root: attribute 'complete' must be a bool, got {type(a.get('complete')).__name__}")
    for key in ("created", "nacscope_version"):
        if key in a and _str_attr(a, key) is None:
            errors.append(f"root: attribute {key!r} must be a string")
    for key in ("samples", "layers", "features", "analysis", "projections"):
        if key in f and not isinstance(f[key], h5py.Group):
            errors.append(f"{key}: must be a group")
    if not isinstance(f.get("samples"), h5py.Group) or not isinstance(f["samples"].get("index"), h5py.Dataset):
        errors.append("samples/index: missing or not a dataset")
        return errors
    if f["samples"]["index"].ndim != 1:
        errors.append(f"samples/index: expected 1 dimension, got {f['samples']['index'].ndim}")
        return errors
    n = f["samples"]["index"].shape[0]
    complete = bool(a.get("complete", False)) if isinstance(a.get("complete"), (bool, np.bool_)) else False
    if complete:
        ns = _int_attr(errors, a, "n_samples", "root")
        if ns is not None and ns != n:
            errors.append(f"root: n_samples={ns} but samples/index has {n} rows")
    elif "n_samples" in a:
        _int_attr(errors, a, "n_samples", "root")
    s = f["samples"]
    if not complete:  # a file being written: per-sample arrays may run ahead of samples/index
        n = None  # type: ignore[assignment]
    _check_rows(errors, s["index"], n, "samples/index", ndim=1, kinds="i")
    if "labels" in s:
        lab = s["labels"]
        kind = _str_attr(lab.attrs, "kind") if "kind" in lab.attrs else "class"
        if kind == "class":
            _check_rows(errors, lab, n, "samples/labels", ndim=1, kinds="i")
        elif kind == "multihot":
            _check_rows(errors, lab, n, "samples/labels", ndim=2, kinds="ub")
        else:
            errors.append(f"samples/labels: kind {kind!r} is not 'class' or 'multihot'")
    if "is_query" in s:
        _check_rows(errors, s["is_query"], n, "samples/is_query", ndim=1, kinds="b")
    if "thumbnails" in s:
        th = s["thumbnails"]
        _check_rows(errors, th, n, "samples/thumbnails", ndim=4, kinds="u")
        if isinstance(th, h5py.Dataset) and th.ndim == 4 and th.dtype != np.uint8:
            errors.append(f"samples/thumbnails: dtype {th.dtype}, expected uint8")
        if isinstance(th, h5py.Dataset) and th.ndim == 4 and th.shape[3] not in (1, 3):
            errors.append(f"samples/thumbnails: last axis must be 1 or 3 channels, got {th.shape[3]}")
    if "class_names" in s:
        cn = s["class_names"]
        if not isinstance(cn, h5py.Dataset) or cn.ndim != 1 or not h5py.check_string_dtype(cn.dtype):
            errors.append("samples/class_names: must be a 1-D string dataset")
        elif "labels" in s and isinstance(s["labels"], h5py.Dataset) and s["labels"].ndim == 2 \
                and _str_attr(s["labels"].attrs, "kind") == "multihot" and cn.shape[0] != s["labels"].shape[1]:
            errors.append("samples/class_names: length differs from the multi-hot label columns")
    if not isinstance(f.get("layers"), h5py.Group) or not len(f["layers"]):
        errors.append("layers: no layer")
    else:
        for name, g in f["layers"].items():
            errors.extend(_validate_layer(name, g, n, check_padding))
    feats = f.get("features")
    for name, ds in (feats.items() if isinstance(feats, h5py.Group) else ()):
        _check_rows(errors, ds, n, f"features/{name}", ndim=2, kinds="f")
    proj = f.get("projections")
    n_rows = f["samples"]["index"].shape[0]
    for name, ds in (proj.items() if isinstance(proj, h5py.Group) else ()):
        if not isinstance(ds, h5py.Dataset) or ds.shape != (n_rows, 2):
            errors.append(f"projections/{name}: must be a ({n_rows}, 2) dataset")
        elif "params" not in ds.attrs:
            errors.append(f"projections/{name}: missing attribute 'params'")
    ana = f.get("analysis")
    for key, g in (ana.items() if isinstance(ana, h5py.Group) else ()):
        if not isinstance(g, h5py.Group) or "params" not in g.attrs or "result" not in g.attrs:
            errors.append(f"analysis/{key}: must be a group with attributes 'params' and 'result'")
    return errors


def _validate_layer(name: str, g, n: int, check_padding: bool) -> list[str]:
    errors: list[str] = []
    where = f"layers/{name}"
    if not isinstance(g, h5py.Group):
        return [f"{where}: not a group"]
    units = _int_attr(errors, g.attrs, "units", where)
    if units is None or units < 1:
        if units is not None:
            errors.append(f"{where}: attribute 'units' must be >= 1")
        return errors
    shape = g.attrs.get("shape")
    sh = np.asarray(shape) if shape is not None else None
    if sh is None or sh.dtype.kind not in "iu" or sh.ndim != 1 or sh.size < 1 or np.any(sh < 1) \
            or int(np.prod(sh, dtype=np.int64)) != units:
        errors.append(f"{where}: attribute 'shape' missing or does not multiply to units={units}")
    if _str_attr(g.attrs, "kind") not in LAYER_KINDS:
        errors.append(f"{where}: attribute 'kind' must be one of {LAYER_KINDS}")
    if _str_attr(g.attrs, "bitorder") != "big":
        errors.append(f"{where}: attribute 'bitorder' must be 'big'")
    if "order" in g.attrs:
        _int_attr(errors, g.attrs, "order", where)
    if "bits" not in g:
        errors.append(f"{where}/bits: missing")
        return errors
    bits = g["bits"]
    _check_rows(errors, bits, n, f"{where}/bits", ndim=2, kinds="u")
    if not isinstance(bits, h5py.Dataset):
        return errors
    if bits.dtype != np.uint8 or bits.ndim != 2 or bits.shape[1] != packed_width(units):
        errors.append(f"{where}/bits: must be uint8 (N, {packed_width(units)}), got {bits.dtype} {bits.shape}")
    elif check_padding and units % 8:
        mask = np.uint8((1 << (8 - units % 8)) - 1)
        for start in range(0, bits.shape[0], 1 << 20):
            if np.any(bits[start : start + (1 << 20), -1] & mask):
                errors.append(f"{where}/bits: padding bits past unit {units} are not zero")
                break
    if "features" in g:
        _check_rows(errors, g["features"], n, f"{where}/features", ndim=2, kinds="f")
        if isinstance(g["features"], h5py.Dataset) and g["features"].ndim == 2 and g["features"].shape[1] != units:
            errors.append(f"{where}/features: must have {units} columns")
    return errors


def _check_rows(errors: list[str], ds, n: int | None, where: str, *, ndim: int, kinds: str) -> None:
    if not isinstance(ds, h5py.Dataset):
        errors.append(f"{where}: not a dataset")
        return
    if ds.ndim != ndim:
        errors.append(f"{where}: expected {ndim} dimensions, got {ds.ndim}")
        return
    if n is not None and ds.shape[0] != n:
        errors.append(f"{where}: {ds.shape[0]} rows, samples/index has {n}")
    if ds.dtype.kind not in kinds:
        errors.append(f"{where}: dtype {ds.dtype} not allowed here")
