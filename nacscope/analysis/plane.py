"""Linear regions cut by a 2-D plane through three inputs: a grid of activation patterns and its picture.

The plane is ``x(u, v) = x0 + u (x1 - x0) + v (x2 - x0)``, so the anchors sit at (0, 0), (1, 0) and
(0, 1) whatever the geometry of the inputs. A ``resolution x resolution`` grid covers
``[-margin, 1 + margin]^2``; each grid point gets the packed activation pattern of the chosen sites,
and points with the same pattern share a region id. Every activation region of a ReLU network is
convex, so the number of distinct patterns is the number of regions the grid hits (a lower bound on
the regions meeting the window, exact once the grid is finer than the smallest region).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from nacscope._files import save_png
from nacscope.codes.capture import Site, capture_bits, list_sites, select_sites
from nacscope.errors import OptionError


@dataclass
class PlaneRegions:
    """The partition of one plane.

    Attributes:
        region_ids: (R, R) int, region of each grid point (rows: v from bottom to top; columns: u).
        n_regions: number of distinct activation patterns on the grid.
        extent: (u_min, u_max, v_min, v_max).
        anchors_uv: (3, 2) plane coordinates of the three anchors.
        anchor_regions: (3,) region id of each anchor (-1 when outside the grid).
    """

    region_ids: np.ndarray
    n_regions: int
    extent: tuple[float, float, float, float]
    anchors_uv: np.ndarray
    anchor_regions: np.ndarray


def plane_points(anchors: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Inputs at plane coordinates ``(u, v)`` (each (M,)): (M, ...) with ``anchors`` (3, ...)."""
    x0, x1, x2 = anchors[0], anchors[1], anchors[2]
    shape = (-1,) + (1,) * x0.dim()
    return x0.unsqueeze(0) + u.view(shape) * (x1 - x0).unsqueeze(0) + v.view(shape) * (x2 - x0).unsqueeze(0)


@torch.no_grad()
def plane_regions(
    model: nn.Module,
    anchors: torch.Tensor,
    x1: torch.Tensor | None = None,
    x2: torch.Tensor | None = None,
    *,
    resolution: int = 200,
    margin: float = 0.25,
    sites: Sequence[Site] | None = None,
    layers: Sequence[str] | None = None,
    batch: int = 2048,
    dtype: torch.dtype = torch.float32,
    progress: Callable[[int, int, str], None] | None = None,
) -> PlaneRegions:
    """Activation-pattern partition of the plane through three inputs.

    Args:
        model: a ReLU network (an eval-mode copy in ``dtype`` is used).
        anchors: (3, ...) model inputs (already normalised); or the first anchor (...) with ``x1``, ``x2``.
        x1, x2: the other two anchors, when ``anchors`` is a single input.
        resolution: grid points per side.
        margin: how far beyond the anchors' triangle the window reaches, in plane units.
        sites: sites whose patterns define regions (default: every ReLU site).
        layers: site-name patterns instead of ``sites`` (``all`` adds the code layer).
        batch: grid points per forward pass.
        dtype: computation precision.
        progress: ``progress(done, total, message)`` after each batch of grid points.

    Returns:
        :class:`PlaneRegions`.
    """
    import copy

    if x1 is not None or x2 is not None:
        if x1 is None or x2 is None:
            raise OptionError("give three anchors: anchors (3, ...) or x0, x1, x2")
        anchors = torch.stack([anchors, x1, x2])
    if anchors.shape[0] != 3:
        raise OptionError(f"a plane needs exactly 3 anchor inputs, got {anchors.shape[0]}")
    if resolution < 2:
        raise OptionError(f"must be >= 2, got {resolution}", option="resolution")
    if margin < 0:
        raise OptionError(f"margin must be >= 0, got {margin}")
    net = copy.deepcopy(model).to(dtype).eval()
    anchors = anchors.to(dtype)
    if sites is None:
        all_sites = list_sites(net, anchors[:2])
        sites = select_sites(all_sites, layers) if layers else [s for s in all_sites if s.kind == "relu"]
    if not sites:
        raise OptionError("the network has no ReLU sites")
    lo, hi = -margin, 1.0 + margin
    g = torch.linspace(lo, hi, resolution, dtype=torch.float64)
    vv, uu = torch.meshgrid(g, g, indexing="ij")  # (R, R): row = v, column = u
    u, v = uu.reshape(-1), vv.reshape(-1)
    packed = []
    for a in range(0, len(u), batch):
        x = plane_points(anchors, u[a : a + batch].to(dtype), v[a : a + batch].to(dtype))  # (b, ...)
        bits, _ = capture_bits(net, x, sites)
        packed.append(torch.cat([bits[s.name] for s in sites], 1).numpy())  # (b, W)
        if progress is not None:
            progress(min(a + batch, len(u)), len(u), "activation patterns of the grid")
    rows = np.concatenate(packed)  # (R*R, W)
    _, ids = np.unique(rows, axis=0, return_inverse=True)
    ids = ids.reshape(resolution, resolution)
    anchors_uv = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    step = (hi - lo) / (resolution - 1)
    anchor_regions = []
    for uu_, vv_ in anchors_uv:
        j, i = round((uu_ - lo) / step), round((vv_ - lo) / step)
        anchor_regions.append(int(ids[i, j]) if 0 <= i < resolution and 0 <= j < resolution else -1)
    return PlaneRegions(ids, int(ids.max()) + 1, (lo, hi, lo, hi), anchors_uv, np.asarray(anchor_regions))


def region_colors(n: int, seed: int = 0) -> np.ndarray:
    """(n, 3) RGB colours in [0, 1], neighbours in id order far apart in hue (a shuffled HSV wheel)."""
    rng = np.random.default_rng(seed)
    hue = rng.permutation(n) / max(n, 1)
    sat = 0.45 + 0.4 * rng.random(n)
    val = 0.65 + 0.3 * rng.random(n)
    import matplotlib.colors as mcolors

    return mcolors.hsv_to_rgb(np.stack([hue, sat, val], 1))


def plot_planes(
    results: Sequence[tuple[str, PlaneRegions]], path: str | Path, *, anchor_labels: Sequence[str] = ("x0", "x1", "x2")
) -> Path:
    """Draw one panel per partition (each region its own colour, anchors marked) into a PNG."""
    from nacscope._files import subplots

    path = Path(path)
    k = len(results)
    fig, axes = subplots(1, k, figsize=(4.2 * k, 4.4), squeeze=False)
    for ax, (title, res) in zip(axes[0], results):
        rgb = region_colors(res.n_regions)[res.region_ids]  # (R, R, 3)
        ax.imshow(rgb, origin="lower", extent=res.extent, interpolation="nearest")
        for (uu, vv), lab in zip(res.anchors_uv, anchor_labels):
            ax.plot(uu, vv, marker="o", markersize=7, markerfacecolor="white", markeredgecolor="black")
            ax.annotate(lab, (uu, vv), textcoords="offset points", xytext=(6, 6), fontsize=9,
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.8})
        ax.set_title(f"{title}\n{res.n_regions:,} regions", fontsize=10)
        ax.set_xlabel("u (towards x1)")
        ax.set_ylabel("v (towards x2)")
    fig.tight_layout()
    return save_png(fig, path, dpi=110)
