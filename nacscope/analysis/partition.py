"""The exact partition of a bounded 2-D slice of input space into linear regions (convex polygons).

The slice is ``x(u, v) = x0 + u d1 + v d2`` over a convex polygon in ``(u, v)`` (by default the square
window ``[-margin, 1 + margin]^2`` of :mod:`nacscope.analysis.plane`, whose anchors sit at (0, 0),
(1, 0), (0, 1)). The partition is built layer by layer: on every polygon of the partition by the
earlier ReLU sites the activation pattern of those sites is fixed, so each unit of the next site is an
affine function of ``(u, v)`` there; its zero line cuts the polygon in two. The affine function is read
off one batched forward pass over three points per polygon (its centroid ``c`` and ``c + (1, 0)``,
``c + (0, 1)`` in plane units), where every ReLU of the two extra points is gated by the centroid's
mask: they then follow the polygon's own affine map even outside the polygon, so the differences are
the exact gradients (up to float64 rounding).

Tolerances (``tol``, default 1e-9, relative to the region's diameter ``D``): a vertex within
``tol * D`` of a unit's zero line lies on it; a cut leaving a piece of area below ``(tol * D)**2`` is
not made (the polygon keeps the pattern of its centroid), so slivers never appear and the faces still
cover the region exactly. When counting the graph (:func:`nacscope.analysis.polygons.planar_graph`),
vertices closer than ``SNAP * tol * D`` are one vertex: copies of one vertex computed from the affine
maps of different faces differ by rounding (measured at most 1e-4 ``tol * D`` on the digits models),
while distinct vertices are about ``tol * D`` apart or more (a new vertex is made only on an edge whose
ends are both farther than that from the cutting line). A vertex on the inside of a neighbour's side
(a T-junction, left where a cut was not made in the neighbour) splits that side. With both, every
inner edge has two faces and V - E + F = 1. (The earlier count snapped at ``10 * tol * D``, merged
the two close vertices of a thin sliver on the digits-nac plane and gave V - E + F = 2; it also
counted a T-junction's long side as an edge of its own, which gave -1 on digits-simclr planes.)

Supported: what :mod:`nacscope.analysis.segments` supports (affine layers, eval-mode BatchNorm, average
pooling, residual sums, ReLUs); max-pooling and other nonlinearities are refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nacscope.analysis import polygons as pg
from nacscope.analysis.segments import prepare_network
from nacscope.codes.capture import RELU_FUNCS, Site, run_model
from nacscope.errors import OptionError
from nacscope.progress import Progress, report

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)
SNAP = 0.05  # vertex identification distance, in units of ``tol * D`` (see the module docstring)


@dataclass
class PlanePartition:
    """Faces of the exact partition of a plane region, one convex polygon per activation pattern.

    Attributes:
        polygons: per face, its vertices (n, 2) in ``(u, v)``, counter-clockwise.
        hashes: (F,) uint64 hash of each face's pattern (see :func:`pattern_hashes`).
        areas: (F,) face areas in plane units.
        n_vertices, n_edges: counts of the planar graph of the partition (region boundary included).
        per_layer: ``(site name, faces after cutting by the sites up to this one)`` per site.
        region: (n, 2) the partitioned polygon.
        anchors_uv: (3, 2) plane coordinates of the anchors.
        anchor_faces: (3,) index of the face holding each anchor (-1 when outside the region).
        site_names: the sites that define the patterns, in order.
        bits: (F, U) bool patterns over the sites' units (only when asked for), else None.
    """

    polygons: list[np.ndarray]
    hashes: np.ndarray
    areas: np.ndarray
    n_vertices: int
    n_edges: int
    per_layer: list[tuple[str, int]]
    region: np.ndarray
    anchors_uv: np.ndarray
    anchor_faces: np.ndarray
    site_names: list[str] = field(default_factory=list)
    bits: np.ndarray | None = None

    @property
    def n_faces(self) -> int:
        """Number of faces (linear regions meeting the region)."""
        return len(self.polygons)

    def area_stats(self) -> dict[str, float]:
        """Minimum, median and maximum face area."""
        a = self.areas
        return {"min": float(a.min()), "median": float(np.median(a)), "max": float(a.max())}


def _mix(h: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, vectorised over uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return h ^ (h >> np.uint64(31))


def pattern_hashes(bits: np.ndarray, seed: np.ndarray | None = None) -> np.ndarray:
    """(F,) 64-bit hashes of (F, U) bool patterns, continuing the hashes ``seed`` (F,) of earlier sites.

    Hashing site by site with the previous hash as ``seed`` equals hashing all sites' bits at once
    when every site's unit count is a multiple of 64; the library always hashes site by site.
    """
    f, u = bits.shape
    h = np.zeros(f, np.uint64) if seed is None else seed.astype(np.uint64)
    h = _mix(h ^ np.uint64(u))
    packed = np.packbits(bits, axis=1, bitorder="little")  # (F, ceil(U/8))
    pad = (-packed.shape[1]) % 8
    words = np.pad(packed, ((0, 0), (0, pad))).view("<u8")  # (F, W)
    for w in range(words.shape[1]):
        h = _mix(h ^ words[:, w])
    return h


class _Gated3(TorchFunctionMode):
    """Runs ``[x; x + d1; x + d2]`` (3B rows); every ReLU of the last 2B rows uses the first B rows' mask.

    Records the pre-activation at ReLU call number ``target`` as ``z`` (B, U) and its two directional
    derivatives ``du``, ``dv`` (B, U), then stops the pass (:class:`_Stop`).
    """

    def __init__(self, target: int):
        super().__init__()
        self.target, self.calls = target, 0
        self.z = self.du = self.dv = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in RELU_FUNCS:
            return func(*args, **kwargs)
        x = args[0]  # (3B, ...)
        b = len(x) // 3
        z = x[:b]
        if self.calls == self.target:
            self.z = z.reshape(b, -1).clone()
            self.du = (x[b : 2 * b] - z).reshape(b, -1)
            self.dv = (x[2 * b :] - z).reshape(b, -1)
            raise _Stop
        self.calls += 1
        gate = (z > 0).to(x.dtype).repeat((3,) + (1,) * (x.dim() - 1))  # (3B, ...)
        inplace = func in (torch.relu_, torch.Tensor.relu_) or bool(kwargs.get("inplace", args[1] if len(args) > 1 else False))
        return x.mul_(gate) if inplace else x * gate


class _Stop(Exception):
    pass


@torch.no_grad()
def _affine_at(net: nn.Module, k: int, code: bool, x: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor):
    """Value and (u, v) gradients of site ``k``'s units at inputs ``x`` (B, ...): three (B, U) arrays."""
    mode = _Gated3(-1 if code else k)
    try:
        with mode:
            _, out = run_model(net, torch.cat([x, x + d1, x + d2]))  # (3B, D)
    except _Stop:
        return mode.z.numpy(), mode.du.numpy(), mode.dv.numpy()
    if not code:
        raise OptionError("the network made fewer ReLU calls than when it was traced")
    b = len(x)
    out = out.reshape(3 * b, -1)
    return out[:b].numpy(), (out[b : 2 * b] - out[:b]).numpy(), (out[2 * b :] - out[:b]).numpy()


def partition_slice(
    model: nn.Module,
    x0: torch.Tensor,
    d1: torch.Tensor,
    d2: torch.Tensor,
    region: np.ndarray,
    *,
    sites: Sequence[Site] | None = None,
    layers: Sequence[str] | None = None,
    tol: float = 1e-9,
    batch: int = 1024,
    keep_bits: bool = False,
    progress: Progress | None = None,
) -> PlanePartition:
    """Exact partition of ``x0 + u d1 + v d2`` over the convex polygon ``region`` in ``(u, v)``.

    Args:
        model: a piecewise-linear ReLU network (a float64 eval-mode copy is used).
        x0, d1, d2: model inputs (...) (already normalised): the origin and the two directions.
        region: (n, 2) convex polygon in ``(u, v)``.
        sites: sites that define regions: the first ReLU sites in call order (the regions up to a
            layer), or every one optionally with the code layer last (default: every ReLU site).
        layers: site-name patterns instead of ``sites``; they must select the same (``all`` adds the code).
        tol: relative tolerance of degenerate cuts (see the module docstring).
        batch: polygons per forward pass (three input rows each).
        keep_bits: also keep every face's full pattern (F, U) bool.
        progress: ``progress(done, total, message)``: one stage per site (``done`` of ``total``
            polygons of the earlier sites cut); raising from it cancels.

    Returns:
        :class:`PlanePartition` (anchors at (0, 0), (1, 0), (0, 1)).
    """
    try:
        region = pg.check_convex(region)
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    if tol <= 0 or tol >= 1e-3:
        raise OptionError(f"tol must be in (0, 1e-3), got {tol}")
    net, sites = prepare_network(model, x0.unsqueeze(0), sites, layers)
    relu = net._nacscope_relu_sites
    n_relu = sum(s.kind == "relu" for s in sites)
    prefix = [s.name for s in sites[:n_relu]] == [s.name for s in relu[:n_relu]]
    code_after_all = n_relu == len(relu) or n_relu == len(sites)
    if not prefix or not code_after_all or any(s.kind != "code" for s in sites[n_relu:]):
        raise OptionError("the exact partition cuts by the first ReLU sites in order "
                          "(all of them, optionally the code layer after them)")
    x0, d1, d2 = x0.double(), d1.double(), d2.double()
    diam = float(np.max(np.linalg.norm(region[:, None] - region[None], axis=2)))
    eps_s = tol * diam
    min_area = eps_s**2
    from nacscope.analysis import cutting

    verts, offs = region.copy(), np.array([0, len(region)], np.int64)
    hashes = np.zeros(1, np.uint64)
    bits_all = np.zeros((1, 0), bool) if keep_bits else None
    per_layer: list[tuple[str, int]] = []
    shape = (-1,) + (1,) * x0.dim()
    for k, site in enumerate(sites):
        n = len(offs) - 1
        stage = f"exact plane: site {k + 1}/{len(sites)} ({site.name})"
        report(progress, 0, n, stage)
        parts_v, parts_o, parts_h, parts_b = [], [], [], []
        base = 0
        for a in range(0, n, batch):
            o = offs[a : min(a + batch, n) + 1]
            cv, co = verts[o[0] : o[-1]], o - o[0]
            cents, _ = cutting.centroids(cv, co)  # (B, 2)
            cu_, cv_ = torch.from_numpy(cents[:, 0].copy()).view(shape), torch.from_numpy(cents[:, 1].copy()).view(shape)
            x = x0.unsqueeze(0) + cu_ * d1.unsqueeze(0) + cv_ * d2.unsqueeze(0)  # (B, ...)
            z, du, dv = _affine_at(net, k, site.kind == "code", x, d1.unsqueeze(0), d2.unsqueeze(0))  # (B, U) x3
            pv, po, bits, parent = cutting.cut_all(cv, co, np.ascontiguousarray(z), np.ascontiguousarray(du),
                                                   np.ascontiguousarray(dv), cents, eps_s, min_area)
            parts_v.append(pv)
            parts_o.append(po[1:] + base)
            base += len(pv)
            parts_h.append(pattern_hashes(bits, hashes[a + parent]))
            if keep_bits:
                parts_b.append(np.concatenate([bits_all[a + parent], bits], 1))
            report(progress, min(a + batch, n), n, stage)
        verts = np.concatenate(parts_v)
        offs = np.concatenate([np.zeros(1, np.int64)] + parts_o)
        hashes = np.concatenate(parts_h)
        if keep_bits:
            bits_all = np.concatenate(parts_b)
        per_layer.append((site.name, len(offs) - 1))
    polys = np.split(verts, offs[1:-1])
    _, face_areas = cutting.centroids(verts, offs)
    n_v, n_e = pg.graph_counts(polys, SNAP * eps_s)
    anchors_uv = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    return PlanePartition(
        polys, hashes, face_areas, n_v, n_e, per_layer, region, anchors_uv,
        np.array([cutting.face_of(verts, offs, q[0], q[1]) for q in anchors_uv]), [s.name for s in sites], bits_all,
    )


def exact_plane_partition(
    model: nn.Module,
    anchors: torch.Tensor,
    *,
    margin: float = 0.25,
    region: np.ndarray | None = None,
    **kw,
) -> PlanePartition:
    """Exact partition of the plane through three inputs ``anchors`` (3, ...).

    The plane is ``x0 + u (x1 - x0) + v (x2 - x0)``; the region is ``region`` in ``(u, v)`` or, by
    default, the square ``[-margin, 1 + margin]^2`` (the window of :func:`nacscope.analysis.plane.plane_regions`).
    Other keywords go to :func:`partition_slice`.
    """
    if anchors.shape[0] != 3:
        raise OptionError(f"a plane needs exactly 3 anchor inputs, got {anchors.shape[0]}")
    if margin < 0:
        raise OptionError(f"margin must be >= 0, got {margin}")
    if region is None:
        region = pg.box(-margin, 1 + margin, -margin, 1 + margin)
    a = anchors.double()
    return partition_slice(model, a[0], a[1] - a[0], a[2] - a[0], region, **kw)
