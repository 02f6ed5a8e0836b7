"""Bring codes made by any other method (a ``.npy``/``.npz`` array) into a code set."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np

from nacscope._files import check_output, file_sha256
from nacscope.codes.format import CodeSetWriter, LayerSpec, check_name
from nacscope.errors import CodeSetError, DataError
from nacscope.progress import Progress

#: Rows converted and written per block (bounds memory for memory-mapped ``.npy`` input).
BLOCK_ROWS = 65536


def load_array_file(path: str | os.PathLike, what: str) -> dict[str, np.ndarray]:
    """Read a ``.npy`` (memory-mapped) or ``.npz`` file into ``{name: array}``, never unpickling."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{what} file not found: {p}")
    if p.is_dir():
        raise DataError(f"{what} path {p} is a directory, expected a .npy or .npz file")
    try:
        if zipfile.is_zipfile(p):
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            if not arrays:
                raise DataError(f"{what} file {p} holds no arrays")
            return arrays
        with open(p, "rb") as fh:
            magic = fh.read(6)
        if magic != b"\x93NUMPY":
            raise DataError(f"{what} file {p} is not a valid .npy/.npz array file")
        return {"": np.load(p, mmap_mode="r", allow_pickle=False)}
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "python objects" in str(exc).lower():
            raise DataError(f"{what} file {p} holds Python objects (pickled); save plain numeric arrays") from None
        raise DataError(f"{what} file {p} is not a valid .npy/.npz array file ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{what} file {p} is not a valid .npy/.npz array file ({exc})") from None


def codes_to_bits(block: np.ndarray, name: str) -> np.ndarray:
    """Map a block of codes in {False,True}, {0,1} or {-1,+1} to a bool (rows, D) array.

    The value set is decided per block; a layer's blocks must agree, which
    :func:`code_value_set` checks up front.
    """
    if block.dtype == bool:
        return block
    values = code_value_set(block, name)
    return block > 0 if values == "pm1" else block == 1


def code_value_set(codes: np.ndarray, name: str) -> str:
    """Return ``"bool"``, ``"01"`` or ``"pm1"``; raise if the values fit none of the accepted sets."""
    if codes.dtype == bool:
        return "bool"
    if codes.dtype.kind not in "biuf":
        raise DataError(f"codes {name!r}: dtype {codes.dtype} is not boolean or numeric")
    seen: set = set()
    for start in range(0, len(codes), BLOCK_ROWS):
        seen |= set(np.unique(np.asarray(codes[start : start + BLOCK_ROWS])).tolist())
        if len(seen) > 3:
            break
    if seen <= {0, 1}:
        return "01"
    if seen <= {-1, 1}:
        return "pm1"
    shown = sorted(seen)[:5]
    raise DataError(f"codes {name!r}: values {shown} are not in {{0,1}}, {{-1,+1}} or bool")


def import_codes(
    codes_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    labels_path: str | os.PathLike | None = None,
    query_mask_path: str | os.PathLike | None = None,
    layer: str = "code",
    force: bool = False,
    attrs: Mapping[str, object] | None = None,
    progress: Progress | None = None,
) -> Path:
    """Write the codes in ``codes_path`` (and optional labels and query mask) as a code set.

    Args:
        codes_path: ``.npy`` with an (N, D) array, or ``.npz`` whose arrays (each (N, D_i))
            become one layer each, named after the array.
        out: the code set to write (refused if it exists, unless ``force``).
        labels_path: ``.npy`` with (N,) integer labels or an (N, C) multi-hot {0,1} matrix.
        query_mask_path: ``.npy`` with an (N,) bool (or {0,1}) mask of query samples.
        layer: the layer name for ``.npy`` input.
        progress: :data:`nacscope.progress.Progress`, ``(rows_done, rows_total, "importing rows")`` after each block.
    """
    codes_path = Path(codes_path)
    check_output(out, force=force, error=CodeSetError, inputs=[codes_path, labels_path, query_mask_path])
    arrays = load_array_file(codes_path, "codes")
    if "" in arrays:
        arrays = {check_name(layer): arrays[""]}
    for name, arr in arrays.items():
        check_name(name)
        if arr.ndim != 2:
            raise DataError(f"codes {name!r}: expected a 2-D (N, D) array, got shape {arr.shape}")
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise DataError(f"codes {name!r}: empty array of shape {arr.shape}")
        code_value_set(arr, name)
    n = {a.shape[0] for a in arrays.values()}
    if len(n) != 1:
        raise DataError(f"codes arrays have different numbers of rows: { {k: a.shape[0] for k, a in arrays.items()} }")
    n_rows = n.pop()

    labels = label_kind = None
    n_cols = None
    if labels_path is not None:
        labels = _single_array(labels_path, "labels")
        if labels.shape[0] != n_rows:
            raise DataError(f"labels have {labels.shape[0]} rows but the codes have {n_rows}")
        if labels.ndim == 1:
            if labels.dtype.kind not in "iub" and not (labels.dtype.kind == "f" and np.all(np.mod(labels, 1) == 0)):
                raise DataError(f"labels: expected integers, got dtype {labels.dtype}")
            label_kind, labels = "class", np.asarray(labels, dtype=np.int64)
        elif labels.ndim == 2:
            if not set(np.unique(labels).tolist()) <= {0, 1}:
                raise DataError("labels: a 2-D label matrix must be multi-hot {0,1}")
            label_kind, n_cols, labels = "multihot", labels.shape[1], np.asarray(labels, dtype=np.uint8)
        else:
            raise DataError(f"labels: expected (N,) or (N, C), got shape {labels.shape}")
    mask = None
    if query_mask_path is not None:
        mask = _single_array(query_mask_path, "query mask")
        if mask.ndim != 1 or mask.shape[0] != n_rows:
            raise DataError(f"query mask: expected shape ({n_rows},), got {mask.shape}")
        if mask.dtype != bool and not set(np.unique(mask).tolist()) <= {0, 1}:
            raise DataError("query mask: values must be bool or {0,1}")
        mask = mask.astype(bool)

    specs = [LayerSpec(name, int(a.shape[1]), kind="imported") for name, a in arrays.items()]
    provenance = {
        "dataset": "imported",
        "split": "",
        "source": codes_path.name,
        "source_sha256": file_sha256(codes_path),
        **(attrs or {}),
    }
    with CodeSetWriter(
        out, specs, label_kind=label_kind, n_label_columns=n_cols, has_query_mask=mask is not None,
        attrs=provenance, force=force,
    ) as w:
        for start in range(0, n_rows, BLOCK_ROWS):
            stop = min(n_rows, start + BLOCK_ROWS)
            w.append(
                {name: codes_to_bits(np.asarray(a[start:stop]), name) for name, a in arrays.items()},
                labels=None if labels is None else labels[start:stop],
                is_query=None if mask is None else mask[start:stop],
                index=np.arange(start, stop),
            )
            if progress is not None:
                progress(stop, n_rows, "importing rows")
    return Path(out)


def _single_array(path: str | os.PathLike, what: str) -> np.ndarray:
    arrays = load_array_file(path, what)
    if len(arrays) != 1:
        raise DataError(f"{what} file {path} must hold exactly one array, found {len(arrays)}")
    return np.asarray(next(iter(arrays.values())))


__all__ = ["code_value_set", "codes_to_bits", "import_codes", "load_array_file"]
