"""Export chosen rows of an open code set: to npz/csv (or any :data:`FORMATS`) or as a new code set.

Used by the TUI's ``x`` (a collision group, a projection selection): the rows are given as row
numbers of the file, sorted and deduplicated before writing. A new code set (``.h5``) holds every
layer, the labels, sample indices, split, thumbnails and features of those rows, and the source's
provenance attributes plus ``subset_of`` and ``subset_rows``; cached analyses are not copied
(they describe the whole file). Every output is written under a temporary name and renamed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from nacscope.codes.format import CodeSet, CodeSetWriter, LayerSpec
from nacscope.codes.inputs import codeset_files
from nacscope.errors import OptionError
from nacscope.export import SUFFIX_FORMATS, write_rows
from nacscope.progress import Progress

#: Suffixes written as a new code set.
CODESET_SUFFIXES = (".h5", ".hdf5")
#: Root attributes the writer sets itself (not copied from the source).
_OWN_ATTRS = {"format", "format_version", "format_minor", "nacscope_version", "created", "complete", "n_samples",
              "n_expected"}
BLOCK_ROWS = 4096


def selection_rows(cs: CodeSet, rows: Sequence[int] | np.ndarray) -> np.ndarray:
    """``rows`` as sorted unique int64 row numbers of ``cs``; a one-line error if empty or out of range."""
    sel = np.unique(np.asarray(rows, dtype=np.int64).reshape(-1))  # (M,) sorted
    if not len(sel):
        raise OptionError("no rows selected to export")
    if sel[0] < 0 or sel[-1] >= cs.n_samples:
        raise OptionError(f"row {int(sel[0] if sel[0] < 0 else sel[-1])} is outside {cs.path.name} "
                          f"(0..{cs.n_samples - 1})")
    return sel


def export_selection(cs: CodeSet, out: str | os.PathLike, rows: Sequence[int] | np.ndarray, *, layer: str,
                     packed: bool = False, force: bool = False, progress: Progress | None = None) -> list[Path]:
    """Write ``rows`` of ``cs``: a new code set for ``.h5``/``.hdf5``, else the format of the suffix
    (``.npz``, ``.csv``, ...: ``layer``'s codes with the sample indices, labels and split, as
    :func:`nacscope.export.export_codes` writes them). Returns the paths written."""
    out = Path(out).expanduser()
    sel = selection_rows(cs, rows)
    if out.suffix.lower() in CODESET_SUFFIXES:
        return [write_subset_codeset(cs, out, sel, force=force, progress=progress)]
    fmt = SUFFIX_FORMATS.get(out.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted({*SUFFIX_FORMATS, *CODESET_SUFFIXES}))
        raise OptionError(f"cannot tell the format from {out.name!r}: end the name in one of {known}")
    cs.layer(layer)  # raises with the available layers
    return write_rows(cs, out, fmt=fmt, layer=layer, rows=sel, packed=packed, force=force, progress=progress)


def write_subset_codeset(cs: CodeSet, out: str | os.PathLike, rows: np.ndarray, *, force: bool = False,
                         progress: Progress | None = None) -> Path:
    """A new code set holding only ``rows`` (sorted row numbers) of ``cs``, every layer included."""
    from nacscope._files import check_output

    out = Path(out)
    check_output(out, force=force, inputs=codeset_files(cs.path))
    layers = cs.layers
    specs = [LayerSpec(l.name, l.units, l.shape, l.kind, features=l.has_features) for l in layers]
    labels = cs.labels(rows[:1])
    thumbs = cs.thumbnails(rows[:1])
    features = {name: int(cs.features(name, rows[:1]).shape[1]) for name in cs.feature_names}
    attrs = {k: v for k, v in cs.attrs.items() if k not in _OWN_ATTRS}
    attrs.update(subset_of=str(cs.path.name), subset_rows=int(len(rows)))
    mask = cs.query_mask
    index = cs.sample_index
    with CodeSetWriter(out, specs, label_kind=cs.label_kind,
                       n_label_columns=None if labels is None or labels.ndim == 1 else int(labels.shape[1]),
                       class_names=cs.class_names, has_query_mask=mask is not None, features=features,
                       thumbnail_shape=None if thumbs is None else tuple(thumbs.shape[1:]), attrs=attrs,
                       force=force, expected_rows=len(rows)) as w:
        for start in range(0, len(rows), BLOCK_ROWS):
            sel = rows[start : start + BLOCK_ROWS]  # (B,) increasing: h5py reads them in one call
            w.append({l.name: cs.packed(l.name, sel) for l in layers}, packed=True, labels=cs.labels(sel),
                     index=index[sel], is_query=None if mask is None else mask[sel], thumbnails=cs.thumbnails(sel),
                     features={name: cs.features(name, sel) for name in cs.feature_names} or None,
                     layer_features={l.name: cs.layer_features(l.name, sel) for l in layers if l.has_features} or None)
            if progress is not None:
                progress(min(len(rows), start + BLOCK_ROWS), len(rows), "writing the code set")
    return out


__all__ = ["CODESET_SUFFIXES", "export_selection", "selection_rows", "write_subset_codeset"]
