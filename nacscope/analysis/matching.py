"""Matching the rows of several code sets of the same samples (for side-by-side comparison)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from nacscope.errors import CodeSetError


def match_samples(names: Sequence[str], attrs: Sequence[dict[str, Any]],
                  indices: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Rows of each file that hold the same samples, in the first file's order.

    Files must come from the same dataset and split (``attrs['dataset']``, ``attrs['split']``); their
    rows are matched by ``/samples/index``. Only samples present in every file are kept.

    Args:
        names: a display name per file (for the error message).
        attrs: each file's root attributes.
        indices: each file's source-dataset sample indices, (N_f,) int.

    Returns:
        One (M,) int64 row array per file; ``rows[f][i]`` is the row of the i-th common sample in file f.

    Raises:
        CodeSetError: the files are of different datasets or splits, or share no sample.
    """
    first = (attrs[0].get("dataset"), attrs[0].get("split"))
    for name, a in zip(names[1:], attrs[1:]):
        other = (a.get("dataset"), a.get("split"))
        if other != first:
            raise CodeSetError(f"{name} holds other samples ({other[0]}/{other[1]}) than {names[0]} "
                               f"({first[0]}/{first[1]}): compare files of the same dataset and split")
    common = np.asarray(indices[0], dtype=np.int64)
    for idx in indices[1:]:
        common = common[np.isin(common, idx)]  # keeps the first file's order
    if len(common) == 0:
        raise CodeSetError(f"{', '.join(names)} share no sample index: nothing to compare")
    rows = []
    for idx in indices:
        idx = np.asarray(idx, dtype=np.int64)
        order = np.argsort(idx, kind="stable")
        rows.append(order[np.searchsorted(idx[order], common)].astype(np.int64))
    return rows
