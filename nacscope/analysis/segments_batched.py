"""Exact regions along segments, batched: the 1-D version of the layer-by-layer partition.

Every segment ``x0 + t (x1 - x0)``, ``t`` in [0, 1], starts as one interval. For each ReLU site in
call order, every interval of the partition by the earlier sites has a fixed pattern of those sites,
so each unit of this site is affine in ``t`` on it: one gated forward pass at the intervals' midpoints
(:func:`nacscope.analysis.segments.preactivations_and_slopes`, many intervals of many segments per pass) gives each unit's
value and slope, hence all its zero crossings inside the interval at once. The intervals are cut there.
Forward passes: one per site per batch of intervals, instead of one per boundary as in the walk of
:func:`nacscope.analysis.segments.count_regions_exact` (the same counts and crossings, see the tests).

With a site selection, the intervals are cut by every ReLU site up to the last chosen one and
neighbours with the same pattern of the chosen sites are merged (one more pass at the midpoints).

Tolerance: crossings closer than ``tol`` (in ``t``) to an interval's end or to each other are one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nacscope.analysis.segments import (
    SegmentRegions,
    cut_sites,
    preactivations_and_slopes,
    prepare_network,
)
from nacscope.codes.capture import Site
from nacscope.errors import OptionError
from nacscope.progress import Progress, report


def _cut_intervals(lo, hi, roots, tol):
    """Cut each interval ``[lo, hi]`` (B,) at its ``roots`` (B, U) inside it: new (lo, hi, row)."""
    r = np.where((roots > lo[:, None] + tol) & (roots < hi[:, None] - tol), roots, np.inf)
    r.sort(axis=1)
    with np.errstate(invalid="ignore"):
        dup = np.diff(r, axis=1) < tol  # (B, U - 1) coincident crossings of two units (inf - inf: not)
    if dup.any():
        r[:, 1:][dup] = np.inf
        r.sort(axis=1)
    cnt = np.isfinite(r).sum(1)  # (B,)
    c = int(cnt.max(initial=0))
    r = r[:, :c]
    starts = np.concatenate([lo[:, None], r], 1)  # (B, c + 1)
    col = np.arange(c + 1)[None]
    ends = np.where(col == cnt[:, None], hi[:, None], np.concatenate([r, np.full((len(r), 1), np.inf)], 1))
    keep = col <= cnt[:, None]
    rows = np.broadcast_to(np.arange(len(lo))[:, None], keep.shape)
    return starts[keep], ends[keep], rows[keep]


@torch.no_grad()
def count_regions_batched(
    model: nn.Module,
    x0: torch.Tensor,
    x1: torch.Tensor,
    *,
    sites: Sequence[Site] | None = None,
    layers: Sequence[str] | None = None,
    tol: float = 1e-12,
    batch: int = 4096,
    progress: Progress | None = None,
) -> SegmentRegions:
    """Exact number of linear regions crossed by each segment ``x0[p] -> x1[p]`` (P, ...), batched.

    Same arguments and result as :func:`nacscope.analysis.segments.count_regions_exact` (``steps``:
    intervals evaluated per segment); ``progress`` gets one stage per site.
    """
    if x0.shape != x1.shape:
        raise OptionError(f"segment ends differ in shape: {tuple(x0.shape)} vs {tuple(x1.shape)}")
    net, chosen = prepare_network(model, x0[:1], sites, layers)
    sites, cols = cut_sites(net, chosen)  # cut by every site up to the last chosen one
    x0, x1 = x0.double(), x1.double()
    v = x1 - x0  # (P, ...)
    p = len(x0)
    seg = np.arange(p)
    lo, hi = np.zeros(p), np.ones(p)
    steps = np.zeros(p, np.int64)
    sizes = [s.units for s in sites]
    offs = np.cumsum([0] + sizes)
    shape = (-1,) + (1,) * (x0.dim() - 1)
    for k, site in enumerate(sites):
        stage = f"batched walk: site {k + 1}/{len(sites)} ({site.name})"
        n = len(seg)
        report(progress, 0, n, stage)
        parts = []
        for a in range(0, n, batch):
            s_, l_, h_ = seg[a : a + batch], lo[a : a + batch], hi[a : a + batch]
            m = torch.from_numpy((l_ + h_) / 2)  # (B,)
            idx = torch.from_numpy(s_)
            z, dz = preactivations_and_slopes(net, sites, x0[idx] + m.view(shape) * v[idx], v[idx])  # (B, U) all sites
            z, dz = z[:, offs[k] : offs[k + 1]].numpy(), dz[:, offs[k] : offs[k + 1]].numpy()
            with np.errstate(divide="ignore", invalid="ignore"):
                roots = np.where(dz != 0, m.numpy()[:, None] - z / dz, np.inf)  # (B, U)
            nl, nh, rows = _cut_intervals(l_, h_, roots, tol)
            parts.append((s_[rows], nl, nh))
            np.add.at(steps, s_, 1)
            report(progress, min(a + batch, n), n, stage)
        seg = np.concatenate([q[0] for q in parts])
        lo = np.concatenate([q[1] for q in parts])
        hi = np.concatenate([q[2] for q in parts])
        order = np.lexsort((lo, seg))
        seg, lo, hi = seg[order], lo[order], hi[order]
    if bool(cols.all()):
        boundary = lo > 0
    else:  # adjacent pieces with the same pattern of the chosen sites are one region
        on = []
        for a in range(0, len(seg), batch):
            idx, m = torch.from_numpy(seg[a : a + batch]), torch.from_numpy((lo[a : a + batch] + hi[a : a + batch]) / 2)
            z, _ = preactivations_and_slopes(net, sites, x0[idx] + m.view(shape) * v[idx], v[idx])  # (B, U)
            on.append((z[:, cols] > 0).numpy())
        on_ = np.concatenate(on)
        boundary = np.zeros(len(seg), bool)
        boundary[1:] = (seg[1:] == seg[:-1]) & (on_[1:] != on_[:-1]).any(1)
    regions = 1 + np.bincount(seg[boundary], minlength=p).astype(np.int64)
    crossings = [lo[(seg == i) & boundary] for i in range(p)]
    return SegmentRegions(regions, crossings, steps)
