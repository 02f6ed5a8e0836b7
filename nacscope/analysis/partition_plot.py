"""Pictures of plane partitions: exact polygons (edges as thin lines, faces coloured by pattern hash), or grids."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nacscope._files import save_png


def hash_colors(hashes: np.ndarray) -> np.ndarray:
    """(F, 3) RGB in [0, 1] from 64-bit pattern hashes: the same pattern always gets the same colour."""
    import matplotlib.colors as mcolors

    h = hashes.astype(np.uint64)
    hue = (h & np.uint64(0xFFFF)).astype(np.float64) / 65536.0
    sat = 0.35 + 0.45 * ((h >> np.uint64(16)) & np.uint64(0xFF)).astype(np.float64) / 255.0
    val = 0.7 + 0.28 * ((h >> np.uint64(24)) & np.uint64(0xFF)).astype(np.float64) / 255.0
    return mcolors.hsv_to_rgb(np.stack([hue, sat, val], 1))


def draw_partition(ax, res: Any, anchor_labels: Sequence[str] = ("x0", "x1", "x2"), *, title: str = "") -> None:
    """Draw one partition into a matplotlib axes: a :class:`PlanePartition` or a grid :class:`PlaneRegions`."""
    from matplotlib.collections import PolyCollection

    if hasattr(res, "polygons"):
        n = len(res.polygons)
        lw = 0.3 if n < 5000 else 0.12
        coll = PolyCollection(res.polygons, facecolors=hash_colors(res.hashes), edgecolors="black", linewidths=lw)
        ax.add_collection(coll)
        r = res.region
        ax.set_xlim(r[:, 0].min(), r[:, 0].max())
        ax.set_ylim(r[:, 1].min(), r[:, 1].max())
        what = f"{n:,} regions (exact)"
    else:
        from nacscope.analysis.plane import region_colors

        ax.imshow(region_colors(res.n_regions)[res.region_ids], origin="lower", extent=res.extent, interpolation="nearest")
        what = f"{res.n_regions:,} regions (grid: lower bound)"
    for (u, v), lab in zip(res.anchors_uv, anchor_labels):
        ax.plot(u, v, marker="o", markersize=7, markerfacecolor="white", markeredgecolor="black")
        ax.annotate(lab, (u, v), textcoords="offset points", xytext=(6, 6), fontsize=9,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.8})
    ax.set_aspect("equal")
    ax.set_title(f"{title}\n{what}" if title else what, fontsize=10)
    ax.set_xlabel("u (towards x1)")
    ax.set_ylabel("v (towards x2)")


def plot_partitions(results: Sequence[tuple[str, Any]], path: str | Path, *,
                    anchor_labels: Sequence[str] = ("x0", "x1", "x2")) -> Path:
    """One panel per ``(title, partition)`` side by side, into a PNG (written atomically)."""
    from matplotlib.figure import Figure

    k = len(results)
    fig = Figure(figsize=(5.0 * k, 5.2))
    axes = fig.subplots(1, k, squeeze=False)[0]
    for ax, (title, res) in zip(axes, results):
        draw_partition(ax, res, anchor_labels, title=title)
    fig.tight_layout()
    return save_png(fig, path, dpi=150)


def edge_raster(res: Any, width: int, height: int) -> np.ndarray:
    """(height, width) bool: the edges of a :class:`PlanePartition`'s polygons on a character-cell grid.

    Row 0 is the top (largest v). Each edge is sampled at more points than it crosses cells, so
    every cell an edge passes through is set; a terminal drawing (half blocks, braille) shows it.
    """
    if width < 1 or height < 1:
        raise ValueError(f"raster size must be positive, got {width}x{height}")
    r = res.region
    lo, hi = r.min(0), r.max(0)  # (2,)
    span = np.maximum(hi - lo, 1e-300)
    out = np.zeros((height, width), bool)
    for poly in res.polygons:
        a, b = poly, np.roll(poly, -1, 0)  # (n, 2) edge ends
        cells = np.abs((b - a) / span * (width, height)).max(1)  # cells each edge crosses
        k = int(np.ceil(cells.max())) * 2 + 2
        t = np.linspace(0.0, 1.0, k)[None, :, None]  # (1, k, 1)
        pts = (a[:, None] + t * (b - a)[:, None] - lo) / span  # (n, k, 2) in [0, 1]
        j = np.clip((pts[..., 0] * width).astype(int), 0, width - 1)
        i = np.clip(((1.0 - pts[..., 1]) * height).astype(int), 0, height - 1)
        out[i.ravel(), j.ravel()] = True
    return out
