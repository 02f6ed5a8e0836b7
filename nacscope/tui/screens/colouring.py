"""How the Projection screen colours its points: by label, query/gallery, a collision group, or a bit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.text import Text

from nacscope.tui.widgets import label_hex

MODES = ("label", "role", "group", "bit")
QUERY, GALLERY = "#ff8c1a", "#3a8fd9"
HIGHLIGHT, GREY = "#ffd11a", "#5a5a5a"


@dataclass
class Colouring:
    """Per-point colour classes, the colour of each class, the legend, and the class names."""

    mode: str
    classes: np.ndarray | None  # (N,) int class of each point
    palette: list[str] | None  # colour of each class; None: the label colours
    names: list[str]  # name of each class
    title: str  # what the legend says the colours mean

    def legend(self) -> Text:
        t = Text(f"colour: {self.title}\n", style="bold")
        for i, name in enumerate(self.names[:20]):
            t.append("\u25a0 ", style=self.palette[i] if self.palette else label_hex(i))
            t.append(f"{name}  ")
        return t


def available(session) -> list[str]:
    """The modes this file allows (labels and a split are optional)."""
    out = []
    if session.labels is not None and session.label_kind == "class":
        out.append("label")
    if session.query_mask is not None:
        out.append("role")
    return out + ["group", "bit"]


def colouring(session, layer: str, mode: str, *, group: tuple[int, np.ndarray] | None = None, bit: int = 0) -> Colouring:
    """The colouring of ``layer``'s points in ``mode``.

    Args:
        group: ``(group number, member rows)`` of the highlighted collision group (mode ``group``).
        bit: the unit shown on/off (mode ``bit``).
    """
    n = session.n
    if mode == "label":
        labels = np.asarray(session.labels, dtype=np.int64)
        names = session.class_names or [str(i) for i in range(int(labels.max(initial=-1)) + 1)]
        return Colouring(mode, labels, None, list(names), "label")
    if mode == "role":
        classes = np.asarray(session.query_mask, dtype=np.int64)  # 1 = query
        return Colouring(mode, classes, [GALLERY, QUERY], ["gallery", "query"], "query / gallery")
    if mode == "group":
        classes = np.zeros(n, dtype=np.int64)
        if group is None:
            return Colouring(mode, classes, [GREY, HIGHLIGHT], ["other", "group"], "collision group (none)")
        gi, members = group
        classes[np.asarray(members, dtype=np.int64)] = 1
        return Colouring(mode, classes, [GREY, HIGHLIGHT], ["other rows", f"group {gi} ({len(members)})"],
                         f"collision group {gi} of {layer}")
    if mode == "bit":
        from nacscope.codes.format import unpack_bits

        units = session.layer(layer).units
        bit = int(bit) % units
        byte = session.packed(layer)[:, bit // 8 : bit // 8 + 1]  # (N, 1): the byte holding the unit
        classes = unpack_bits(byte, 8)[:, bit % 8].astype(np.int64)  # big bit order: unit 8k+j is bit j
        return Colouring(mode, classes, [GREY, HIGHLIGHT], [f"bit {bit} off", f"bit {bit} on"],
                         f"bit {bit} of {layer} ({units} units; b: choose)")
    raise ValueError(mode)
