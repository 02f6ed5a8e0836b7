"""Colours for labels and regions (the widgets' only shared constant)."""

from __future__ import annotations

import numpy as np

#: Twenty distinguishable colours (tab10 followed by its light variants), as RGB.
LABEL_RGB = np.array(
    [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
        (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
        (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213),
        (196, 156, 148), (247, 182, 210), (199, 199, 199), (219, 219, 141), (158, 218, 229),
    ],
    dtype=np.uint8,
)  # (20, 3)


def label_rgb(label: int) -> tuple[int, int, int]:
    """The RGB colour of a class label (cycles after twenty classes; -1 = grey)."""
    if label < 0:
        return (90, 90, 90)
    r, g, b = LABEL_RGB[int(label) % len(LABEL_RGB)]
    return int(r), int(g), int(b)


def label_hex(label: int) -> str:
    r, g, b = label_rgb(label)
    return f"#{r:02x}{g:02x}{b:02x}"


def region_rgb(ids: np.ndarray) -> np.ndarray:
    """Map integer region ids (any shape) to distinct-looking RGB colours, (..., 3) uint8.

    Golden-ratio steps spread neighbouring ids over the hue circle (HSV with fixed
    saturation and value), so adjacent regions with consecutive ids still look different.
    """
    ids = np.asarray(ids, dtype=np.int64)
    hue = ((ids * 0.6180339887498949) % 1.0) * 6.0  # (...) in [0, 6)
    k = np.stack([(5 + hue) % 6, (3 + hue) % 6, (1 + hue) % 6], axis=-1)  # (..., 3)
    rgb = 0.9 - 0.9 * 0.7 * np.clip(np.minimum(k, 4 - k), 0, 1)  # HSV -> RGB, s=0.7, v=0.9
    return (rgb * 255).round().astype(np.uint8)
