"""Widgets of the inspect TUI: terminal images, a braille scatter plot, a bar chart."""

from nacscope.tui.widgets.bars import BarChart, bar
from nacscope.tui.widgets.keybar import KeyBar
from nacscope.tui.widgets.image import ImageView, halfblock_strips, shaded_strips, to_rgb
from nacscope.tui.widgets.palette import label_hex, label_rgb, region_rgb
from nacscope.tui.widgets.scatter import Scatter, braille_grid

__all__ = [
    "BarChart",
    "ImageView",
    "KeyBar",
    "Scatter",
    "bar",
    "braille_grid",
    "halfblock_strips",
    "label_hex",
    "label_rgb",
    "region_rgb",
    "shaded_strips",
    "to_rgb",
]
