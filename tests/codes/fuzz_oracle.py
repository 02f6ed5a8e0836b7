"""What a code set holds, read with plain h5py and numpy (no nacscope), for ``test_fuzz.py``.

The reference reads the file as ``docs/format.md`` says and computes the few numbers the commands
report with the slow obvious method: distinct patterns by ``np.unique`` of unpacked rows, and the
Hamming mAP (ties by gallery index) with one loop over queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np


@dataclass
class Reference:
    n: int
    complete: bool
    layers: list[str]
    units: dict[str, int]
    bits: dict[str, np.ndarray]  # (n, units) uint8 0/1
    index: np.ndarray
    labels: np.ndarray | None
    is_query: np.ndarray | None
    distinct: dict[str, int] = field(default_factory=dict)
    maps: dict[str, float] = field(default_factory=dict)

    @property
    def split(self) -> str | None:
        if self.labels is None:
            return None
        m = self.is_query
        return "query" if m is not None and m.any() and (~m).any() else "leave-one-out"


def reference(path: Path) -> Reference:
    """Read ``path`` per the spec; raises whatever h5py raises on a file it cannot read."""
    with h5py.File(path, "r", locking=False) as f:
        s, lay = f["samples"], f["layers"]
        per_sample = [s["index"]] + [lay[k]["bits"] for k in lay]
        per_sample += [s[k] for k in ("labels", "is_query") if k in s]
        complete = bool(f.attrs["complete"])
        n = s["index"].shape[0] if complete else min(d.shape[0] for d in per_sample)
        names = sorted(lay.keys(), key=lambda k: int(lay[k].attrs.get("order", 0)))
        units = {k: int(lay[k].attrs["units"]) for k in names}
        bits = {k: np.unpackbits(lay[k]["bits"][:n], axis=1, count=units[k], bitorder="big") for k in names}
        ref = Reference(
            n=n, complete=complete, layers=names, units=units, bits=bits, index=s["index"][:n],
            labels=s["labels"][:n] if "labels" in s else None,
            is_query=s["is_query"][:n].astype(bool) if "is_query" in s else None,
        )
    for k, b in ref.bits.items():
        ref.distinct[k] = len(np.unique(b, axis=0)) if len(b) else 0
        if ref.labels is not None and n >= 2:
            ref.maps[k] = hamming_map(b, ref.labels, ref.is_query)
    return ref


def hamming_map(bits: np.ndarray, labels: np.ndarray, is_query: np.ndarray | None) -> float:
    """Mean over queries of the AP of the full Hamming ranking, ties by gallery index (0 without relevant items).

    With a query/gallery split the gallery is the non-query rows; otherwise every row queries all the others.
    """
    n = len(bits)
    split = is_query is not None and is_query.any() and (~is_query).any()
    queries = np.flatnonzero(is_query) if split else np.arange(n)
    aps = []
    for q in queries:
        gallery = np.flatnonzero(~is_query) if split else np.delete(np.arange(n), q)
        d = (bits[gallery] != bits[q]).sum(axis=1)
        rel = labels[gallery][np.argsort(d, kind="stable")] == labels[q]
        if not rel.any():
            aps.append(0.0)
            continue
        ranks = np.flatnonzero(rel) + 1
        aps.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
    return float(np.mean(aps))
