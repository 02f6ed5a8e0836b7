"""Exact regions along segments of a plain chain of affine layers and ReLUs, all segments at once.

For a network that is a sequence of affine maps (``nn.Linear``, eval-mode ``BatchNorm1d``, ``Flatten``,
``Identity``, eval-mode ``Dropout``) and ``nn.ReLU`` modules (an ``nn.Sequential``, nested ones included,
or a NAC model whose encoder and code head are such sequences), the walk goes layer by layer over all
segments at once. Each segment ``x0 + t (x1 - x0)`` is a sorted list of cut points in ``t`` (at first
0 and 1). The network is continuous, so at every point each site's pre-activation is simply the
network's value there; between two consecutive points, where every earlier site has one pattern, it is
affine in ``t``. So for each site in order: one matmul per affine map gives the site's values at all
points of all segments (from the previous site's values through ReLU); a unit crosses zero between two
consecutive points exactly when its sign differs there, at the linearly interpolated ``t``; the
crossings become new points, their values interpolated. No forward pass per boundary.

The segments are cut by every ReLU site up to the last chosen one (the later sites' pre-activations
are affine only between those boundaries) and counted by the chosen sites' pattern: a point is a
region boundary when the chosen pattern (signs at the two neighbouring pieces' midpoints) differs on
its two sides, which holds at every crossing of a chosen unit. The ``code`` site is the sign of the
network's output (the code pre-activation). Memory: the values of one site at all points, (points, units).
Tolerance: crossings closer than ``tol`` (in ``t``) to a point or to each other are one, as in
:mod:`nacscope.analysis.segments_batched`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nacscope.codes.capture import Site
from nacscope.errors import OptionError
from nacscope.progress import Progress, report

#: An affine map of the chain on (N, ...) tensors.
Affine = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class _Stage:
    """The affine maps before one cut, and the site the cut belongs to (``code``: the output)."""

    maps: list[Affine]
    site: str


def _linear(m: nn.Linear) -> Affine:
    return lambda z: torch.nn.functional.linear(z, m.weight, m.bias)  # (N, out)


def _batchnorm(m: nn.BatchNorm1d) -> Affine:
    scale = m.weight / torch.sqrt(m.running_var + m.eps) if m.affine else 1 / torch.sqrt(m.running_var + m.eps)
    shift = (m.bias if m.affine else 0) - m.running_mean * scale

    def f(z):
        shape = (1, -1) + (1,) * (z.dim() - 2)  # channels on dim 1
        return z * scale.view(shape) + shift.view(shape)

    return f


def _leaves(path: str, m: nn.Module, out: list[tuple[str, nn.Module]]) -> bool:
    """Append ``(path, module)`` for every leaf of nested Sequentials; False when ``m`` is no such chain."""
    if isinstance(m, nn.Sequential):
        return all(_leaves(f"{path}.{k}" if path else k, sub, out) for k, sub in m.named_children())
    out.append((path, m))
    return True


def _stages(leaves: list[tuple[str, nn.Module]], out_scale: float | None) -> list[_Stage] | None:
    """Cuts of the chain: the maps before each ReLU, then the maps to the output (site ``code``)."""
    stages, maps = [], []
    for path, m in leaves:
        if isinstance(m, nn.ReLU):
            stages.append(_Stage(maps, path))
            maps = []
        elif isinstance(m, nn.Linear):
            maps.append(_linear(m))
        elif isinstance(m, nn.BatchNorm1d) and not m.training and m.track_running_stats:
            maps.append(_batchnorm(m))
        elif isinstance(m, nn.Flatten):
            maps.append(m)
        elif isinstance(m, nn.Identity) or (isinstance(m, nn.Dropout) and not m.training):
            continue
        else:
            return None
    if out_scale is not None:
        maps.append(lambda z: z * out_scale)
    stages.append(_Stage(maps, "code"))
    return stages


def affine_chain(net: nn.Module, example: torch.Tensor) -> list[_Stage] | None:
    """The chain of affine maps and ReLUs of ``net`` (from ``prepare_network``), or None when it is none.

    Checked against the network itself: its ReLU sites (``net._nacscope_relu_sites``) must be the chain's
    ReLU modules in order, and the chain must give the network's output on ``example``.
    """
    from nacscope.codes.capture import is_nac_model, run_model

    leaves: list[tuple[str, nn.Module]] = []
    if is_nac_model(net) and isinstance(getattr(net, "encoder", None), nn.Module) and isinstance(getattr(net, "head", None), nn.Module):
        ok = _leaves("encoder", net.encoder, leaves) and _leaves("head", net.head, leaves)
        scale = getattr(net, "scale", None)
        if not ok or not isinstance(scale, (int, float)):
            return None
        stages = _stages(leaves, float(scale))
    elif isinstance(net, nn.Sequential):
        stages = _stages(leaves, None) if _leaves("", net, leaves) else None
    else:
        return None
    relus = list(net._nacscope_relu_sites)
    if stages is None or [s.owner for s in relus] != [g.site for g in stages[:-1]] or any(s.functional for s in relus):
        return None
    names = {s.owner: s.name for s in relus}
    for g in stages[:-1]:
        g.site = names[g.site]
    with torch.no_grad():
        c = example.double()
        for g in stages:
            for f in g.maps:
                c = f(c)
            if g.site != "code":
                c = torch.relu(c)
        _, ref = run_model(net, example.double())
    if c.shape != ref.shape or not torch.allclose(c, ref, rtol=1e-9, atol=1e-9):
        return None
    return stages


def insert_roots(z, seg, t, tol):
    """Cut the pieces between consecutive points at the zero crossings of their units.

    Args:
        z: (M, U) the site's pre-activations at the points (affine in ``t`` between two consecutive ones).
        seg, t: (M,) the points' segment and position, sorted by (segment, t).
        tol: crossings closer than this in ``t`` to a point or to each other are one.

    Returns:
        ``(z, seg, t, at_old, at_new, edge)``: the points with the crossings inserted (z interpolated
        there), the new positions of the old points (M,) and of the inserted ones (K,), and the old points
        with a crossing within ``tol`` of them, where the site's pattern may change too. At an inserted
        point it does change: a unit is affine on the piece it cut, with opposite signs on the two sides.
    """
    same = seg[1:] == seg[:-1]  # (M - 1,) the pair is a piece
    pos = z > 0  # (M, U)
    i, u = torch.nonzero(pos[1:] != pos[:-1], as_tuple=True)  # the unit changes sign between two points
    i, u = i.numpy(), u.numpy()
    on_piece = same[i]
    i, u = i[on_piece], u[on_piece]
    flat = z.reshape(-1)
    za = flat.index_select(0, torch.from_numpy(i * z.shape[1] + u)).numpy()
    zb = flat.index_select(0, torch.from_numpy((i + 1) * z.shape[1] + u)).numpy()
    tc = t[i] + (t[i + 1] - t[i]) * (za / (za - zb))  # (K,) the crossings
    keep = (tc > t[i] + tol) & (tc < t[i + 1] - tol)
    edge = np.where(tc[~keep] <= t[i[~keep]] + tol, i[~keep], i[~keep] + 1)  # old points with a crossing at them
    i, tc = i[keep], tc[keep]
    order = np.lexsort((tc, i))
    i, tc = i[order], tc[order]
    if len(tc) > 1:  # coincident crossings of two units are one
        dup = np.zeros(len(tc), bool)
        dup[1:] = (i[1:] == i[:-1]) & (tc[1:] - tc[:-1] < tol)
        i, tc = i[~dup], tc[~dup]
    frac = torch.from_numpy((tc - t[i]) / (t[i + 1] - t[i]))[:, None]  # (K, 1)
    za, zb = z.index_select(0, torch.from_numpy(i)), z.index_select(0, torch.from_numpy(i + 1))  # (K, U)
    z_new = za + frac * (zb - za)  # (K, U) affine on the piece
    m, k = len(t), len(tc)
    at_new = np.arange(k) + i + 1  # inserted after point i, after the earlier crossings
    at_old = np.arange(m) + np.searchsorted(i, np.arange(m), side="left")
    out = torch.empty((m + k, z.shape[1]), dtype=z.dtype)
    out.index_copy_(0, torch.from_numpy(at_old), z)
    out.index_copy_(0, torch.from_numpy(at_new), z_new)
    seg2, t2 = np.empty(m + k, seg.dtype), np.empty(m + k)
    seg2[at_old], seg2[at_new] = seg, seg[i]
    t2[at_old], t2[at_new] = t, tc
    return out, seg2, t2, at_old, at_new, np.unique(at_old[edge])


def pattern_changes(z: torch.Tensor, seg: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The points ``at`` where the site's pattern (sign at the pieces' midpoints) differs on the two sides."""
    at = at[(at > 0) & (at < len(seg) - 1)]
    at = at[(seg[at - 1] == seg[at]) & (seg[at + 1] == seg[at])]  # a piece on each side
    za, zb, zc = (z.index_select(0, torch.from_numpy(at + o)) for o in (-1, 0, 1))  # (C, U)
    left, right = (za + zb) > 0, (zb + zc) > 0  # the two pieces' patterns
    return at[(left != right).any(1).numpy()]


@torch.no_grad()
def cut_site(z: torch.Tensor, seg: np.ndarray, t: np.ndarray, flag: np.ndarray, tol: float, counted: bool):
    """Cut the pieces at one site's zero crossings (:func:`insert_roots`) and carry the boundary flags over.

    ``flag`` marks the points that are region boundaries so far; with ``counted`` (the site defines regions)
    the new cut points where the site's pattern changes are marked too.

    Returns:
        ``(z, seg, t, flag)`` for the refined points.
    """
    z, seg, t, at_old, at_new, edge = insert_roots(z, seg, t, tol)  # (M', U)
    moved = np.zeros(len(seg), bool)
    moved[at_old] = flag
    if counted:
        moved[at_new] = True
        moved[pattern_changes(z, seg, edge)] = True
    return z, seg, t, moved


def count_regions_chain(
    stages: list[_Stage],
    x0: torch.Tensor,
    x1: torch.Tensor,
    sites: Sequence[Site],
    *,
    tol: float = 1e-12,
    max_steps: int = 200_000,
    progress: Progress | None = None,
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Exact regions crossed by each segment ``x0[p] -> x1[p]`` (P, ...) of the chain ``stages``.

    The network is continuous, so each site's pre-activations are kept at the cut points of the segments
    (where they are the network's own values), not per piece: between two consecutive points they are
    affine in ``t``, so a unit crosses zero there exactly when its sign differs at the two points, at the
    linearly interpolated ``t``. One matmul per affine map for all points of all segments.

    Args:
        stages: from :func:`affine_chain`.
        x0, x1: (P, ...) segment ends, float64.
        sites: the sites whose patterns define regions.
        tol: crossings closer than this in ``t`` are one.
        max_steps: more regions than this on one segment is an OptionError, as in the walk.
        progress: ``progress(done, total, message)`` once per stage (``done`` stages of ``total``).

    Returns:
        The fields of :class:`nacscope.analysis.segments.SegmentRegions`: ``regions`` (P,), ``crossings``
        (the ``t`` of each segment's boundaries) and ``steps`` (P,) (pieces evaluated, over all stages).
    """
    chosen = {s.name for s in sites}
    last = max(i for i, g in enumerate(stages) if g.site in chosen)
    p = len(x0)
    seg, t = np.repeat(np.arange(p), 2), np.tile([0.0, 1.0], p)  # (2P,) the points, by segment and t
    z = torch.stack([x0.double(), x1.double()], 1).reshape((2 * p,) + tuple(x0.shape[1:]))  # (2P, ...)
    flag = np.zeros(2 * p, bool)  # the point is a region boundary
    steps = np.zeros(p, np.int64)
    total = last + 1
    for k, g in enumerate(stages[: last + 1]):
        report(progress, k, total, f"exact walk (by layer): site {k + 1}/{total} ({g.site})")
        if k:
            z = torch.relu(z)
        for f in g.maps:
            z = f(z)
        shape = tuple(z.shape[1:])
        steps += np.bincount(seg, minlength=p) - 1
        z, seg, t, flag = cut_site(z.reshape(len(z), -1), seg, t, flag, tol, g.site in chosen)  # (M', U)
        z = z.view((len(z), *shape))
    report(progress, total, total, f"exact walk (by layer): {len(seg) - p:,} pieces")
    regions = 1 + np.bincount(seg[flag], minlength=p).astype(np.int64)
    if (regions > max_steps).any():
        raise OptionError(f"segment {int(np.argmax(regions > max_steps))} crossed more than {max_steps} boundaries; raise max_steps")
    crossings = [t[(seg == i) & flag] for i in range(p)]
    return regions, crossings, steps
