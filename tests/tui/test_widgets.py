"""The TUI's drawing widgets against slow, obvious references."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

from nacscope.tui.widgets import bar, braille_grid, halfblock_strips, region_rgb, shaded_strips, to_rgb
from nacscope.tui.widgets.image import SHADES, fit_scale


def pixels_from_strips(strips, width: int) -> np.ndarray:
    """Read the pixels back from half-block strips: top = foreground, bottom = background."""
    rows = []
    for strip in strips:
        top, bottom = [], []
        for seg in strip:
            for _ch in seg.text:
                top.append(seg.style.color.get_truecolor())
                bottom.append(seg.style.bgcolor.get_truecolor())
        assert len(top) == width
        rows += [top, bottom]
    return np.array(rows, dtype=np.uint8)


@pytest.mark.parametrize("shape", [(8, 8, 1), (7, 5, 3), (28, 28, 1), (6, 9, 4)])
def test_halfblock_round_trip(shape):
    rng = np.random.default_rng(sum(shape))
    img = rng.integers(0, 256, size=shape, dtype=np.uint8)
    rgb = to_rgb(img)
    back = pixels_from_strips(halfblock_strips(rgb), shape[1])
    assert np.array_equal(back[: shape[0]], rgb)
    if shape[0] % 2:  # the padding row is black
        assert not back[shape[0]:].any()


def test_halfblock_on_a_real_digit():
    from sklearn.datasets import load_digits

    x = load_digits().images[0]  # (8, 8) in 0..16
    img = (x * 255 / 16).round().astype(np.uint8)[:, :, None]
    back = pixels_from_strips(halfblock_strips(to_rgb(img)), 8)
    assert np.array_equal(back[:, :, 0], img[:, :, 0])  # gray: every channel equals the pixel


def test_to_rgb_scales_floats_and_drops_alpha():
    img = np.array([[0.0, 0.5], [1.0, 0.25]])
    rgb = to_rgb(img)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 0] == 0 and rgb[1, 0, 0] == 255 and rgb[0, 1, 0] == 127
    assert to_rgb(np.zeros((3, 3, 4), np.uint8)).shape == (3, 3, 3)


def test_shaded_fallback_hand_worked():
    # Two columns: a dark pair (0, 0) and a bright pair (255, 205) averaged to 230 -> index 230*10//256 = 8.
    img = np.array([[[0], [255]], [[0], [205]]], dtype=np.uint8)
    (strip,) = shaded_strips(to_rgb(img))
    assert "".join(seg.text for seg in strip) == SHADES[0] + SHADES[8]


@pytest.mark.parametrize("h,w,cols,rows,expected", [(8, 8, 16, 8, 2), (8, 8, 10, 20, 1), (28, 28, 60, 30, 2),
                                                     (8, 8, 3, 3, 1)])
def test_fit_scale(h, w, cols, rows, expected):
    assert fit_scale(h, w, cols, rows) == expected


def braille_reference(xy, cols, rows, bounds):
    """Dot by dot, point by point."""
    bits = {(0, 0): 0x01, (0, 1): 0x02, (0, 2): 0x04, (1, 0): 0x08, (1, 1): 0x10, (1, 2): 0x20, (0, 3): 0x40,
            (1, 3): 0x80}
    x0, x1, y0, y1 = bounds
    masks = np.zeros((rows, cols), dtype=np.uint8)
    owner = np.full((rows, cols), -1)
    for i, (x, y) in enumerate(xy):
        px = int(np.floor((x - x0) / (x1 - x0) * 2 * cols))
        py = int(np.floor((y1 - y) / (y1 - y0) * 4 * rows))
        if 0 <= px < 2 * cols and 0 <= py < 4 * rows:
            masks[py // 4, px // 2] |= bits[(px % 2, py % 4)]
            owner[py // 4, px // 2] = i
    return masks, owner


@pytest.mark.parametrize("seed,cols,rows", [(0, 20, 10), (1, 7, 3), (2, 80, 24)])
def test_braille_grid_matches_reference(seed, cols, rows):
    rng = np.random.default_rng(seed)
    xy = rng.normal(size=(500, 2))
    bounds = (-1.5, 2.0, -1.0, 1.0)  # some points fall outside
    masks, owner, cell = braille_grid(xy, cols, rows, bounds)
    ref_masks, ref_owner = braille_reference(xy, cols, rows, bounds)
    assert np.array_equal(masks, ref_masks)
    assert np.array_equal(owner, ref_owner)
    assert (cell >= 0).sum() == sum(1 for x, y in xy if -1.5 <= x < 2.0 and -1.0 < y <= 1.0)


def test_bar_eighths():
    assert bar(0, 10, 4) == ""
    assert bar(10, 10, 4) == "\u2588" * 4
    assert bar(5, 10, 4) == "\u2588" * 2
    assert bar(1, 16, 4) == "\u258e"  # 1/16 of 4 cells = 2 eighths: the left quarter block
    assert bar(3, 8, 1) == "\u258d"  # 3 eighths


def test_region_colours_are_hsv():
    ids = np.arange(12)
    got = region_rgb(ids)
    for i in ids:
        ref = colorsys.hsv_to_rgb((i * 0.6180339887498949) % 1.0, 0.7, 0.9)
        assert np.abs(got[i].astype(int) - np.round(np.array(ref) * 255)).max() <= 1
    assert len({tuple(c) for c in got}) == len(ids)  # neighbouring ids look different
