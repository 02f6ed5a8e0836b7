"""Exact regions along segments of any piecewise-linear network, site by site for all segments at once.

The chain walk (:mod:`nacscope.analysis.segments_chain`) needs the network as a list of affine maps; this
walk needs only forward passes, so it takes everything the boundary walk takes (convolutions, eval-mode
BatchNorm, average pooling, residual sums). Each segment ``x0 + t (x1 - x0)`` is a sorted list of cut
points in ``t`` (at first 0 and 1). For each ReLU site in call order (then ``code``, if chosen): one
batched forward pass, stopped at that site, gives its pre-activations at every point of every segment.
Between two consecutive points every earlier site has one pattern (their crossings are points already),
so the site is affine in ``t`` there: a unit crosses zero between two points exactly when its sign
differs at them, at the linearly interpolated ``t``. The crossings become new points. A point is a region
boundary when the chosen sites' pattern differs on its two sides (as in the chain walk, whose helpers
this uses). Cost: one forward per site over all points in batches of ``batch`` rows, instead of one
small forward per boundary. Memory: one site's values at all points, (points, units).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nacscope.analysis.segments_chain import cut_site
from nacscope.codes.capture import RELU_FUNCS, Site, run_model
from nacscope.errors import OptionError
from nacscope.progress import Progress, report


class _Stop(Exception):
    pass


class _StopAt(TorchFunctionMode):
    """Records the input of ReLU call number ``target`` as ``z`` (B, U) and stops the forward pass."""

    def __init__(self, target: int):
        super().__init__()
        self.target, self.calls, self.z = target, 0, None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in RELU_FUNCS:
            if self.calls == self.target:
                self.z = args[0].reshape(len(args[0]), -1).clone()
                raise _Stop
            self.calls += 1
        return func(*args, **(kwargs or {}))


def site_values(net: nn.Module, k: int, x: torch.Tensor) -> torch.Tensor:
    """(B, U) pre-activations of ReLU call ``k`` at inputs ``x`` (B, ...); ``k = -1``: the code (output)."""
    if k < 0:
        _, out = run_model(net, x)
        return out.reshape(len(x), -1)
    mode = _StopAt(k)
    try:
        with mode:
            run_model(net, x)
    except _Stop:
        return mode.z
    raise OptionError("the network made fewer ReLU calls than when it was traced")


def _check_affine(net, target, x0, v, z, seg, t, n: int = 64) -> None:
    """On every piece the site must be affine in ``t``: checked at the midpoints of up to ``n`` pieces."""
    piece = np.flatnonzero(seg[1:] == seg[:-1])
    piece = piece[np.linspace(0, len(piece) - 1, min(n, len(piece))).astype(np.int64)]
    sg, tm = torch.from_numpy(seg[piece]), torch.from_numpy((t[piece] + t[piece + 1]) / 2)
    shape = (-1,) + (1,) * (x0.dim() - 1)
    mid = site_values(net, target, x0[sg] + tm.view(shape) * v[sg])  # (n, U)
    za, zb = z[torch.from_numpy(piece)], z[torch.from_numpy(piece + 1)]
    if bool(((mid - (za + zb) / 2).abs() > 1e-7 * (za.abs() + zb.abs() + 1)).any()):
        raise OptionError(
            "the network is not piecewise linear in its ReLU sites (pre-activations are not affine between "
            "boundaries): it has a nonlinearity other than ReLU, max-pooling, or input-dependent structure"
        )


@torch.no_grad()
def count_regions_layers(
    net: nn.Module,
    cut: Sequence[Site],
    chosen: Sequence[Site],
    x0: torch.Tensor,
    x1: torch.Tensor,
    *,
    tol: float = 1e-12,
    batch: int = 4096,
    max_steps: int = 200_000,
    progress: Progress | None = None,
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Exact regions crossed by each segment ``x0[p] -> x1[p]`` (P, ...), cutting site by site.

    Args:
        net: a prepared float64 network (:func:`nacscope.analysis.segments.prepare_network`).
        cut: the sites to cut by, from :func:`nacscope.analysis.segments.cut_sites`: every ReLU site in
            call order up to the last chosen one, then ``code`` if chosen.
        chosen: the sites whose patterns define regions.
        x0, x1: (P, ...) float64 segment ends.
        tol: crossings closer than this in ``t`` are one.
        batch: points per forward pass.
        max_steps: more regions than this on one segment is an OptionError, as in the walk.
        progress: ``progress(done, total, message)`` after each batch (``done`` of ``total`` sites, in
            thousandths); raising from it cancels.

    Returns:
        ``regions`` (P,), ``crossings`` (the ``t`` of each segment's boundaries) and ``steps`` (P,)
        (pieces evaluated, over all sites), the fields of :class:`nacscope.analysis.segments.SegmentRegions`.
    """
    names = {s.name for s in chosen}
    relu_index = {s.name: i for i, s in enumerate(net._nacscope_relu_sites)}
    p = len(x0)
    v = x1 - x0  # (P, ...)
    shape = (-1,) + (1,) * (x0.dim() - 1)
    seg, t = np.repeat(np.arange(p), 2), np.tile([0.0, 1.0], p)  # (2P,) the points, by segment and t
    flag = np.zeros(2 * p, bool)  # the point is a region boundary
    steps = np.zeros(p, np.int64)
    total = 1000 * len(cut)
    for k, site in enumerate(cut):
        stage = f"exact walk (by site): site {k + 1}/{len(cut)} ({site.name})"
        target = -1 if site.kind == "code" else relu_index[site.name]
        m = len(seg)
        parts = []
        for a in range(0, m, batch):
            sg, tt = torch.from_numpy(seg[a : a + batch]), torch.from_numpy(t[a : a + batch])
            x = x0[sg] + tt.view(shape) * v[sg]  # (B, ...) the points
            parts.append(site_values(net, target, x))  # (B, U)
            report(progress, 1000 * k + 1000 * min(a + batch, m) // m, total, stage)
        z = torch.cat(parts)  # (M, U)
        _check_affine(net, target, x0, v, z, seg, t)
        steps += np.bincount(seg, minlength=p) - 1
        z, seg, t, flag = cut_site(z, seg, t, flag, tol, site.name in names)  # (M', U)
        if (np.bincount(seg[flag], minlength=p) >= max_steps).any():
            bad = int(np.argmax(np.bincount(seg[flag], minlength=p) >= max_steps))
            raise OptionError(f"segment {bad} crossed more than {max_steps} boundaries; raise max_steps")
    regions = 1 + np.bincount(seg[flag], minlength=p).astype(np.int64)
    crossings = [t[(seg == i) & flag] for i in range(p)]
    return regions, crossings, steps
