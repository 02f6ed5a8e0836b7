"""edge_raster: polygon edges on a character grid, against a hand-worked partition."""

from __future__ import annotations

import numpy as np

from nacscope.analysis.partition_plot import edge_raster


class _Two:
    """The box [0, 4] x [0, 4] split at u = 2 into two faces."""

    region = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]])
    polygons = [np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 4.0], [0.0, 4.0]]),
                np.array([[2.0, 0.0], [4.0, 0.0], [4.0, 4.0], [2.0, 4.0]])]


def test_edge_raster_marks_the_frame_and_the_cut():
    got = edge_raster(_Two(), 8, 4)
    want = np.zeros((4, 8), bool)
    want[0], want[-1], want[:, 0], want[:, -1] = True, True, True, True
    want[:, 4] = True  # u = 2 is the left edge of column 4 of 8 (cells of width 0.5)
    assert (got == want).all(), got.astype(int)


def test_edge_raster_rows_go_downwards_in_v():
    class Tri:
        region = _Two.region
        polygons = [np.array([[0.0, 4.0], [0.5, 4.0], [0.25, 3.9]])]  # a sliver at the top

    got = edge_raster(Tri(), 4, 4)
    assert got[0].any() and not got[1:].any()
