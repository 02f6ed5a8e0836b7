"""Choosing a table's columns by the width it has: the most important ones first, short headers if needed."""

from __future__ import annotations

from typing import Sequence

from nacscope.analysis.labels import label, short_label

#: What a DataTable adds around each cell (one space each side).
CELL_PAD = 2


def fit_columns(rows: Sequence[dict[str, str]], keys: Sequence[str], priority: Sequence[str],
                width: int) -> list[tuple[str, str]]:
    """The columns that fit in ``width`` cells, as ``(key, header)`` in ``keys`` order.

    Columns are taken in ``priority`` order while they fit with their short header (the first always);
    then headers are widened to the full label, in the same order, while the room lasts. A column's
    width is its widest cell or header plus the table's padding.
    """

    def need(key: str, header: str) -> int:
        return max([len(header), *(len(r.get(key, "")) for r in rows)]) + CELL_PAD

    chosen: dict[str, str] = {}
    used = 0
    for key in priority:
        w = need(key, short_label(key))
        if chosen and used + w > width:
            continue
        chosen[key] = short_label(key)
        used += w
    for key in priority:
        if key in chosen:
            extra = need(key, label(key)) - need(key, chosen[key])
            if used + extra <= width:
                chosen[key] = label(key)
                used += extra
    return [(k, chosen[k]) for k in keys if k in chosen]
