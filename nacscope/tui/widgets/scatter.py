"""A 2-D scatter plot drawn with braille characters (2x4 dots per cell), coloured by label."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from nacscope.tui.widgets.palette import label_hex, label_rgb

# Bit of the braille character for the dot in column dx (0..1) and row dy (0..3) of a cell.
_DOT_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.uint8)  # (4, 2)


def braille_grid(
    xy: np.ndarray, cols: int, rows: int, bounds: tuple[float, float, float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rasterise points into braille cells.

    Args:
        xy: (N, 2) point coordinates.
        cols, rows: size of the grid in cells.
        bounds: (x0, x1, y0, y1) data range shown; y grows upwards.

    Returns:
        masks (rows, cols) uint8 braille bit masks, owner (rows, cols) int64 index of the last
        point drawn in each cell (-1 if empty), and cell (N,) int64 flat cell of each point
        (-1 if outside the view).
    """
    x0, x1, y0, y1 = bounds
    px = np.floor((xy[:, 0] - x0) / max(x1 - x0, 1e-12) * (2 * cols)).astype(np.int64)  # (N,)
    py = np.floor((y1 - xy[:, 1]) / max(y1 - y0, 1e-12) * (4 * rows)).astype(np.int64)  # (N,)
    inside = (px >= 0) & (px < 2 * cols) & (py >= 0) & (py < 4 * rows)
    cell = np.where(inside, (py // 4) * cols + px // 2, -1)
    masks = np.zeros(rows * cols, dtype=np.uint8)
    owner = np.full(rows * cols, -1, dtype=np.int64)
    idx = np.flatnonzero(inside)
    np.bitwise_or.at(masks, cell[idx], _DOT_BITS[py[idx] % 4, px[idx] % 2])
    owner[cell[idx]] = idx  # last point wins: deterministic colour per cell
    return masks.reshape(rows, cols), owner.reshape(rows, cols), cell


_PLAIN = Style()


@lru_cache(maxsize=256)
def _label_style(label: int) -> Style:
    return Style(color=Color.from_rgb(*label_rgb(label)))


@lru_cache(maxsize=64)
def _hex_style(colour: str) -> Style:
    return Style(color=Color.parse(colour))


class Scatter(Widget, can_focus=True):
    """Points coloured by label, with zoom, pan and a cursor that selects the nearest point."""

    DEFAULT_CSS = """
    Scatter { width: 1fr; height: 1fr; }
    """

    class Selected(Message):
        """A point was selected (by Enter or a click)."""

        def __init__(self, row: int) -> None:
            super().__init__()
            self.row = row

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.xy: np.ndarray | None = None
        self.labels: np.ndarray | None = None  # (N,) colour class of each point
        self.palette: list[str] | None = None  # colour of each class; None: the label colours
        self.order: np.ndarray | None = None  # drawing order (the last point drawn owns its cell)
        self.center = np.zeros(2)
        self.span = np.ones(2)  # half-width and half-height of the view in data units
        self.home_span = np.ones(2)
        self.home_center = np.zeros(2)
        self.selected: int | None = None
        self._strips: list[Strip] | None = None

    # -- data and view -------------------------------------------------------------------------
    def set_points(self, xy: np.ndarray | None, labels: np.ndarray | None = None) -> None:
        self.xy = None if xy is None else np.asarray(xy, dtype=np.float64)
        self.labels = None if labels is None else np.asarray(labels)
        self.palette, self.order = None, None
        if self.xy is not None and len(self.xy):
            lo, hi = self.xy.min(axis=0), self.xy.max(axis=0)
            self.home_center = (lo + hi) / 2
            self.home_span = np.maximum((hi - lo) / 2 * 1.05, 1e-9)
        self.reset_view()

    def set_colours(self, classes: np.ndarray | None, palette: list[str] | None = None) -> None:
        """Colour point i by ``palette[classes[i]]`` (the label colours when ``palette`` is None).

        Points of higher classes are drawn last, so they own the cells they share (a highlighted
        group over grey points); ties keep row order.
        """
        self.labels = None if classes is None else np.asarray(classes, dtype=np.int64)
        self.palette = palette
        self.order = None if palette is None or self.labels is None else np.argsort(self.labels, kind="stable")
        self._changed()

    def point_colours(self) -> list[str] | None:
        """The colour (``#rrggbb``) each point is drawn with, (N,); None without colours."""
        if self.labels is None or self.labels.ndim != 1:
            return None
        table = self.palette or [label_hex(i) for i in range(int(self.labels.max(initial=0)) + 1)]
        return [table[int(c)] if c >= 0 else label_hex(-1) for c in self.labels]

    def in_view(self) -> np.ndarray:
        """Rows of the points inside the current view (sorted)."""
        if self.xy is None:
            return np.empty(0, dtype=np.int64)
        x0, x1, y0, y1 = self.bounds
        x, y = self.xy[:, 0], self.xy[:, 1]
        return np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))

    def reset_view(self) -> None:
        self.center = self.home_center.copy()
        self.span = self.home_span.copy()
        self._changed()

    def zoom(self, factor: float) -> None:
        """Zoom in (factor > 1) or out around the cursor (the view's centre)."""
        self.span = np.clip(self.span / factor, self.home_span * 1e-4, self.home_span * 4)
        self._changed()

    def pan(self, dx: float, dy: float) -> None:
        """Move the view by a fraction of its size (dy > 0 moves up)."""
        self.center = self.center + np.array([dx, dy]) * self.span
        self._changed()

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        (cx, cy), (sx, sy) = self.center, self.span
        return cx - sx, cx + sx, cy - sy, cy + sy

    def nearest(self, x: float, y: float) -> int | None:
        """Index of the point nearest to (x, y) in view units (the view's aspect is equalised)."""
        if self.xy is None or not len(self.xy):
            return None
        d = ((self.xy - (x, y)) / self.span) ** 2  # (N, 2)
        return int(np.argmin(d.sum(axis=1)))

    def select_at_center(self) -> int | None:
        self.selected = self.nearest(*self.center)
        self._changed()
        if self.selected is not None:
            self.post_message(self.Selected(self.selected))
        return self.selected

    def on_click(self, event: events.Click) -> None:
        w, h = max(1, self.size.width), max(1, self.size.height)
        x0, x1, y0, y1 = self.bounds
        x = x0 + (event.x + 0.5) / w * (x1 - x0)
        y = y1 - (event.y + 0.5) / h * (y1 - y0)
        self.center = np.array([x, y])
        self.select_at_center()

    def _changed(self) -> None:
        self._strips = None
        self.refresh()

    def on_resize(self) -> None:
        self._strips = None

    # -- drawing -----------------------------------------------------------------------------------
    def _build(self) -> list[Strip]:
        cols, rows = self.size.width, self.size.height
        if self.xy is None or cols < 2 or rows < 2:
            msg = "no projection: press u to compute one" if self.xy is None else ""
            return [Strip([Segment(msg, Style(dim=True))])] + [Strip.blank(cols)] * max(0, rows - 1)
        if self.order is None:
            masks, owner, _ = braille_grid(self.xy, cols, rows, self.bounds)
        else:  # drawn in class order: the owner of a cell is the point of the highest class in it
            masks, owner, _ = braille_grid(self.xy[self.order], cols, rows, self.bounds)
            owner = np.where(owner >= 0, self.order[np.maximum(owner, 0)], -1)
        cur_c, cur_r = cols // 2, rows // 2
        sel_cell = None
        if self.selected is not None:
            _, _, cell = braille_grid(self.xy[[self.selected]], cols, rows, self.bounds)
            sel_cell = int(cell[0]) if cell[0] >= 0 else None
        strips = []
        for r in range(rows):
            segs = []
            for c in range(cols):
                m, o = int(masks[r, c]), int(owner[r, c])
                ch = chr(0x2800 + m) if m else " "
                lab = int(self.labels[o]) if (o >= 0 and self.labels is not None and self.labels.ndim == 1) else 0
                style = (_label_style(lab) if self.palette is None else _hex_style(self.palette[lab])) if m else _PLAIN
                if sel_cell is not None and r * cols + c == sel_cell:
                    ch, style = "\u25c9", Style(color="white", bold=True)
                elif r == cur_r and c == cur_c:
                    ch = ch if m else "+"
                    style = style + Style(reverse=True)
                segs.append(Segment(ch, style))
            strips.append(Strip(Segment.simplify(segs), cols))
        return strips

    def render_line(self, y: int) -> Strip:
        if self._strips is None:
            self._strips = self._build()
        return self._strips[y] if y < len(self._strips) else Strip.blank(self.size.width)
