"""Images drawn in the terminal with half-block characters (two pixels per cell), or shaded text."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

#: Characters from dark to light for the plain (no-colour) fallback.
SHADES = " .:-=+*#%@"
UPPER_HALF = "\u2580"  # ▀: foreground = top pixel, background = bottom pixel


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Any (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image as (H, W, 3) uint8."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        lo, hi = float(np.min(img)), float(np.max(img))
        img = ((img - lo) / (hi - lo if hi > lo else 1.0) * 255).astype(np.uint8)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return img[:, :, :3]


def fit_scale(h: int, w: int, cols: int, rows: int) -> int:
    """Largest integer zoom so that a (h, w) image fits in cols x rows cells (>= 1)."""
    return max(1, min(cols // max(1, w), (2 * rows) // max(1, h)))


@lru_cache(maxsize=65536)
def _cell_style(top: int, bottom: int) -> Style:
    """The style of a cell whose top and bottom pixels are the packed RGB ints ``top`` and ``bottom``.

    Cached: building rich Styles dominated drawing a 56x56 thumbnail (about 3,000 per image, 24 ms);
    images repeat few colours.
    """
    return Style(color=Color.from_rgb(top >> 16, (top >> 8) & 255, top & 255),
                 bgcolor=Color.from_rgb(bottom >> 16, (bottom >> 8) & 255, bottom & 255))


def halfblock_strips(rgb: np.ndarray) -> list[Strip]:
    """Strips for a (H, W, 3) uint8 image: each cell shows two vertically stacked pixels."""
    h, w, _ = rgb.shape
    if h % 2:
        rgb = np.concatenate([rgb, np.zeros((1, w, 3), np.uint8)], axis=0)
    packed = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]  # (H', W)
    strips = []
    for y in range(0, packed.shape[0], 2):
        top, bottom = packed[y].tolist(), packed[y + 1].tolist()  # (W,) each
        segs = [Segment(UPPER_HALF, _cell_style(t, b)) for t, b in zip(top, bottom)]
        strips.append(Strip(Segment.simplify(segs), w))
    return strips


def shaded_strips(rgb: np.ndarray) -> list[Strip]:
    """Plain fallback: one character per 1x2 pixels, brightness as a shade character."""
    gray = rgb.astype(np.float32).mean(axis=2)  # (H, W)
    if gray.shape[0] % 2:
        gray = np.concatenate([gray, np.zeros((1, gray.shape[1]), np.float32)], axis=0)
    cells = (gray[0::2] + gray[1::2]) / 2  # (H/2, W)
    idx = np.clip((cells / 256 * len(SHADES)).astype(int), 0, len(SHADES) - 1)
    return [Strip([Segment("".join(SHADES[i] for i in row))], len(row)) for row in idx]


class ImageView(Widget):
    """A thumbnail, scaled by an integer factor to fill the widget.

    Args:
        plain: draw with shade characters instead of colours (terminals without colour).
    """

    DEFAULT_CSS = """
    ImageView { width: 1fr; height: 1fr; min-height: 4; }
    """

    def __init__(self, image: np.ndarray | None = None, *, plain: bool = False, caption: str = "", **kw) -> None:
        super().__init__(**kw)
        self.plain = plain
        self.caption = caption
        self._image = None if image is None else to_rgb(image)
        self._strips: list[Strip] = []
        self._key: tuple | None = None

    def set_image(self, image: np.ndarray | None, caption: str = "") -> None:
        self._image = None if image is None else to_rgb(image)
        self.caption = caption
        self._key = None
        self.refresh()

    @property
    def image(self) -> np.ndarray | None:
        return self._image

    def _build(self) -> None:
        cols, rows = self.size.width, self.size.height - (1 if self.caption else 0)
        key = (cols, rows, id(self._image), self.plain, self.caption)
        if key == self._key:
            return
        self._key = key
        self._strips = []
        if self._image is not None and cols > 0 and rows > 0:
            h, w, _ = self._image.shape
            shrink = max(1, -(-h // (2 * rows)), -(-w // cols))  # keep every shrink-th pixel if too big
            img = self._image[::shrink, ::shrink] if shrink > 1 else self._image
            s = fit_scale(img.shape[0], img.shape[1], cols, rows)
            big = img.repeat(s, axis=0).repeat(s, axis=1)  # (s*H, s*W, 3)
            self._strips = shaded_strips(big) if self.plain else halfblock_strips(big)
        elif self._image is None:
            self._strips = [Strip([Segment("(no image)", Style(dim=True))])]
        if self.caption:
            self._strips.append(Strip([Segment(self.caption[:cols])]))
        self._strips = [s.crop_extend(0, cols, None) for s in self._strips]

    def render_line(self, y: int) -> Strip:
        self._build()
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width)
