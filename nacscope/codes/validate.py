"""Check a file against the code-set specification (``docs/format.md``) and report every violation."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from nacscope.codes.format import FORMAT_NAME, FORMAT_VERSION, LAYER_KINDS, packed_width

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
        return [f"{p}: cannot be opened as HDF5 ({str(exc).splitlines()[0]})"]
    with f:
        return _validate_open(f, check_padding)


def _validate_open(f: h5py.File, check_padding: bool) -> list[str]:
    errors: list[str] = []
    a = f.attrs
    for key in REQUIRED_ROOT_ATTRS:
        if key not in a:
            errors.append(f"root: missing attribute {key!r}")
    if a.get("format") not in (None, FORMAT_NAME):
        errors.append(f"root: format is {a.get('format')!r}, expected {FORMAT_NAME!r}")
    version = a.get("format_version")
    if version is not None and not (1 <= int(version) <= FORMAT_VERSION):
        errors.append(f"root: format_version {version} not supported (1..{FORMAT_VERSION})")
    if "samples" not in f or "index" not in f.get("samples", {}):
        errors.append("samples/index: missing")
        return errors
    n = f["samples"]["index"].shape[0]
    complete = bool(a.get("complete", False))
    if complete and int(a.get("n_samples", -1)) != n:
        errors.append(f"root: n_samples={a.get('n_samples')} but samples/index has {n} rows")
    s = f["samples"]
    _check_rows(errors, s["index"], n, "samples/index", ndim=1, kinds="i")
    if "labels" in s:
        lab = s["labels"]
        kind = lab.attrs.get("kind", "class")
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
        if th.ndim == 4 and th.shape[3] not in (1, 3):
            errors.append(f"samples/thumbnails: last axis must be 1 or 3 channels, got {th.shape[3]}")
    if "class_names" in s and "labels" in s and s["labels"].attrs.get("kind", "class") == "multihot":
        if s["class_names"].shape[0] != s["labels"].shape[1]:
            errors.append("samples/class_names: length differs from the multi-hot label columns")
    if "layers" not in f or not len(f["layers"]):
        errors.append("layers: no layer")
    else:
        for name, g in f["layers"].items():
            errors.extend(_validate_layer(name, g, n, check_padding))
    for name, ds in f.get("features", {}).items():
        _check_rows(errors, ds, n, f"features/{name}", ndim=2, kinds="f")
    for name, ds in f.get("projections", {}).items():
        if not isinstance(ds, h5py.Dataset) or ds.shape != (n, 2):
            errors.append(f"projections/{name}: must be a ({n}, 2) dataset")
        elif "params" not in ds.attrs:
            errors.append(f"projections/{name}: missing attribute 'params'")
    for key, g in f.get("analysis", {}).items():
        if not isinstance(g, h5py.Group) or "params" not in g.attrs or "result" not in g.attrs:
            errors.append(f"analysis/{key}: must be a group with attributes 'params' and 'result'")
    return errors


def _validate_layer(name: str, g, n: int, check_padding: bool) -> list[str]:
    errors: list[str] = []
    where = f"layers/{name}"
    if not isinstance(g, h5py.Group):
        return [f"{where}: not a group"]
    units = g.attrs.get("units")
    if units is None or int(units) < 1:
        errors.append(f"{where}: attribute 'units' missing or < 1")
        return errors
    units = int(units)
    shape = g.attrs.get("shape")
    if shape is None or int(np.prod(shape)) != units:
        errors.append(f"{where}: attribute 'shape' missing or does not multiply to units={units}")
    if str(g.attrs.get("kind", "")) not in LAYER_KINDS:
        errors.append(f"{where}: attribute 'kind' must be one of {LAYER_KINDS}")
    if str(g.attrs.get("bitorder", "")) != "big":
        errors.append(f"{where}: attribute 'bitorder' must be 'big'")
    if "bits" not in g:
        errors.append(f"{where}/bits: missing")
        return errors
    bits = g["bits"]
    _check_rows(errors, bits, n, f"{where}/bits", ndim=2, kinds="u")
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
        if g["features"].ndim == 2 and g["features"].shape[1] != units:
            errors.append(f"{where}/features: must have {units} columns")
    return errors


def _check_rows(errors: list[str], ds, n: int, where: str, *, ndim: int, kinds: str) -> None:
    if not isinstance(ds, h5py.Dataset):
        errors.append(f"{where}: not a dataset")
        return
    if ds.ndim != ndim:
        errors.append(f"{where}: expected {ndim} dimensions, got {ds.ndim}")
    if ds.shape[0] != n:
        errors.append(f"{where}: {ds.shape[0]} rows, samples/index has {n}")
    if ds.dtype.kind not in kinds:
        errors.append(f"{where}: dtype {ds.dtype} not allowed here")
