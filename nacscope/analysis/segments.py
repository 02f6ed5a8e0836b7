"""Linear regions crossed along segments between inputs: exact walking, and dense sampling to cross-check.

A ReLU network is piecewise linear: on the segment ``x(t) = x0 + t (x1 - x0)``, ``t`` in [0, 1], every
pre-activation ``z_i(t)`` is linear in ``t`` as long as no ReLU changes state. The exact walk starts
at ``t = 0``, gets every ``z_i`` and its rate of change ``dz_i/dt`` (a forward-mode derivative along
``x1 - x0``, computed exactly by one pass of the region's own affine map, see :class:`_Linearize`), jumps to the nearest zero crossing
``t + min_i(-z_i / dz_i)`` (over units moving toward zero), steps just past it, and counts a new
region whenever the activation pattern there differs from the previous one. The walk runs in
float64; the step past a boundary is ``min(1e-9, half the gap to the next predicted crossing)``.

Counted: the number of maximal pieces of the segment with one activation pattern over the chosen
sites (all ReLU sites by default; add ``code`` to also cut by the code layer's sign). The walk steps
through the boundaries of every ReLU site up to the last chosen one and counts those where the chosen
sites' pattern changes. Dense sampling
counts pattern changes between ``n`` evenly spaced points and can only miss pieces, so it is a lower
bound that converges to the exact count.

Supported: any network made of affine maps (linear, conv, eval-mode BatchNorm, average pooling,
residual sums, flatten...) and ReLUs. Anything else is refused: known nonlinear functions by name
(max-pool included: its argmax pattern would be part of the region), and, as a general check, a
network whose pre-activations are not affine between two boundaries.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nacscope.codes.capture import RELU_FUNCS, Site, list_sites
from nacscope.errors import OptionError

#: Functions that make a network not piecewise linear in its ReLU sites (by ``__name__``).
NONLINEAR = frozenset({
    "max_pool1d", "max_pool2d", "max_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
    "adaptive_max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices", "fractional_max_pool2d",
    "gelu", "silu", "mish", "elu", "selu", "celu", "softplus", "sigmoid", "tanh", "hardtanh", "relu6",
    "hardswish", "hardsigmoid", "leaky_relu", "prelu", "rrelu", "glu", "logsigmoid", "softsign", "tanhshrink",
    "softshrink", "hardshrink", "threshold", "softmax", "log_softmax", "softmin", "layer_norm", "group_norm",
    "instance_norm", "local_response_norm", "rms_norm", "normalize", "exp", "log", "sqrt", "rsqrt", "abs",
    "clamp", "clip", "maximum", "minimum", "max", "min", "sign", "sin", "cos", "pow", "__pow__", "erf",
    "scaled_dot_product_attention", "multi_head_attention_forward",
})


#: ``total`` of the ``progress`` calls of :func:`count_regions_exact` (``done`` is the part walked, per mille).
PROGRESS_TOTAL = 1000


@dataclass
class SegmentRegions:
    """Exact region counts along P segments.

    Attributes:
        regions: (P,) pieces of each segment with one activation pattern.
        crossings: per segment, the ``t`` of every boundary where the pattern changed.
        steps: (P,) forward passes spent per segment.
    """

    regions: np.ndarray
    crossings: list[np.ndarray] = field(default_factory=list)
    steps: np.ndarray | None = None


class _OpLog(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.bad: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in NONLINEAR:
            self.bad.append(name)
        elif name == "batch_norm" and (kwargs.get("training") or (len(args) > 5 and args[5])):
            self.bad.append("batch_norm in training mode")
        elif name == "dropout" and (kwargs.get("training", True) if len(args) < 3 else args[2]) and (kwargs.get("p", args[1] if len(args) > 1 else 0.5) > 0):
            self.bad.append("dropout in training mode")
        return func(*args, **kwargs)


@torch.no_grad()
def check_piecewise_linear(model: nn.Module, example: torch.Tensor) -> None:
    """Refuse networks that use a known non-ReLU nonlinearity (see :data:`NONLINEAR`).

    Raises:
        OptionError: naming the first offending function.
    """
    from nacscope.codes.capture import run_model

    log = _OpLog()
    with log:
        run_model(model, example)
    if log.bad:
        what = log.bad[0]
        extra = " (its argmax pattern is part of the region; not supported)" if "max" in what and "pool" in what else ""
        raise OptionError(
            f"the network is not piecewise linear in its ReLUs: it uses {what}{extra}; "
            "region analyses need affine layers and ReLUs only (and eval mode)"
        )


def _prepare(model: nn.Module, example: torch.Tensor, sites: Sequence[Site] | None, layers: Sequence[str] | None):
    from nacscope.codes.capture import select_sites

    net = copy.deepcopy(model).double().eval()
    ex = example.double()
    try:
        check_piecewise_linear(net, ex)
        all_sites = list_sites(net, ex)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise OptionError(f"the model cannot run on inputs of shape {tuple(ex.shape[1:])} ({first})") from None
    net._nacscope_relu_sites = [s for s in all_sites if s.kind == "relu"]
    if sites is None:
        sites = select_sites(all_sites, layers) if layers else [s for s in all_sites if s.kind == "relu"]
    if not sites:
        raise OptionError("the network has no ReLU sites to count regions of")
    return net, list(sites)


class _Linearize(TorchFunctionMode):
    """Runs a batch ``[x; x + v]`` (2B rows) with every ReLU of the second half gated by the first half's mask.

    The second half then computes the affine map of ``x``'s linear region, extended to ``x + v``, so at
    every site ``z(x + v) - z(x)`` is exactly the directional derivative ``J v``. Plain tensor ops: about
    ten times faster on the CPU than :mod:`torch.autograd.forward_ad`, whose dual tensors go through
    Python decompositions (measured: ~10 ms vs ~1 ms per step for a 2x64 MLP).
    Every ReLU call is recorded in call order (the order of :func:`list_sites`).
    """

    def __init__(self):
        super().__init__()
        self.z: list[torch.Tensor] = []
        self.dz: list[torch.Tensor] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in RELU_FUNCS:
            return func(*args, **kwargs)
        x = args[0]  # (2B, ...)
        b = len(x) // 2
        zp = x[:b]
        mask = (zp > 0).to(x.dtype)  # (B, ...)
        self.z.append(zp.reshape(b, -1).clone())
        self.dz.append((x[b:] - zp).reshape(b, -1))
        gate = torch.cat([mask, mask])  # (2B, ...)
        inplace = func in (torch.relu_, torch.Tensor.relu_) or bool(kwargs.get("inplace", args[1] if len(args) > 1 else False))
        return x.mul_(gate) if inplace else x * gate


def _jvp(net: nn.Module, sites: Sequence[Site], x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-activations of ``sites`` at ``x`` (B, U) and their derivatives along ``v`` (B, U)."""
    from nacscope.codes.capture import run_model

    mode = _Linearize()
    with torch.no_grad(), mode:
        _, out = run_model(net, torch.cat([x, x + v]))  # (2B, D)
    relu_sites = net._nacscope_relu_sites  # all ReLU sites in call order
    if len(mode.z) != len(relu_sites):
        raise OptionError("the network made a different number of ReLU calls than when it was traced")
    by_name = {s.name: i for i, s in enumerate(relu_sites)}
    b = len(x)
    zs, dzs = [], []
    for s in sites:
        if s.kind == "code":
            zs.append(out[:b].reshape(b, -1))
            dzs.append((out[b:] - out[:b]).reshape(b, -1))
        else:
            zs.append(mode.z[by_name[s.name]])
            dzs.append(mode.dz[by_name[s.name]])
    return torch.cat(zs, 1), torch.cat(dzs, 1)  # (B, U), (B, U)


def prepare_network(model: nn.Module, example: torch.Tensor, sites: Sequence[Site] | None, layers: Sequence[str] | None):
    """A float64 eval-mode copy of ``model`` checked piecewise linear, and the sites that define regions."""
    return _prepare(model, example, sites, layers)


def preactivations_and_slopes(net: nn.Module, sites: Sequence[Site], x: torch.Tensor, v: torch.Tensor):
    """Pre-activations of ``sites`` at ``x`` (B, U) and their exact derivatives along ``v`` (B, U) (``net`` from :func:`prepare_network`)."""
    return _jvp(net, sites, x, v)


def _first_crossings(z: torch.Tensor, dz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance in ``t`` to the nearest and second-nearest predicted zero crossing per row (B,), (B,)."""
    s = torch.where(z * dz < 0, -z / dz, torch.full_like(z, float("inf")))  # (B, U)
    s = torch.where((z == 0) & (dz > 0), torch.zeros_like(s), s)  # off at t, on right after
    k = min(2, s.shape[1])
    two = torch.topk(s, k, dim=1, largest=False).values  # (B, k)
    second = two[:, 1] if k == 2 else torch.full_like(two[:, 0], float("inf"))
    return two[:, 0], second


def count_regions_exact(
    model: nn.Module,
    x0: torch.Tensor,
    x1: torch.Tensor,
    *,
    sites: Sequence[Site] | None = None,
    layers: Sequence[str] | None = None,
    max_steps: int = 200_000,
    step: float = 1e-9,
    progress: Callable[[int, int, str], None] | None = None,
    progress_every: int = 64,
    method: str = "auto",
) -> SegmentRegions:
    """Exact number of linear regions crossed by each segment ``x0[p] -> x1[p]``.

    A network that is a plain chain of affine layers and ReLUs (an MLP) is walked layer by layer, all
    segments at once (:mod:`nacscope.analysis.segments_chain`, same counts, much faster); any other
    piecewise-linear network (convnets, residual sums) site by site with one batched forward pass per
    site (:mod:`nacscope.analysis.segments_layers`), or boundary by boundary with ``method="walk"``.

    Args:
        model: a piecewise-linear ReLU network (a float64 eval-mode copy is used).
        x0, x1: (P, ...) model inputs (already normalised), the segments' ends.
        sites: sites whose patterns define regions (default: every ReLU site).
        layers: site-name patterns instead of ``sites`` (``all`` adds the code layer).
        max_steps: give up (OptionError) after this many boundaries on one segment.
        step: how far past a boundary to step (in ``t``), at most.
        progress: ``progress(done, total, message)``, with ``done / total`` the part of the segments
            walked so far (``total`` = :data:`PROGRESS_TOTAL`), at the start, every ``progress_every``
            boundaries and at the end. An exception raised from it stops the walk and propagates:
            that is how a caller (the TUI) cancels.
        progress_every: boundaries (walk steps over all segments) between two ``progress`` calls.
        method: ``auto`` (the chain walk when the network is a chain, else the site walk), ``walk``
            (always the boundary walk), ``chain`` (the chain walk; OptionError when not a chain) or
            ``layers`` (the site walk). The chain walk reports ``progress`` once per site, the site walk
            once per batch of points (``done``: the part of the sites done); their ``steps`` are
            pieces evaluated.

    Returns:
        :class:`SegmentRegions`.
    """
    if x0.shape != x1.shape:
        raise OptionError(f"segment ends differ in shape: {tuple(x0.shape)} vs {tuple(x1.shape)}")
    if progress_every < 1:
        raise OptionError(f"progress_every must be at least 1, got {progress_every}")
    if method not in ("auto", "walk", "chain", "layers"):
        raise OptionError(f"method must be auto, walk, chain or layers, got {method!r}")
    net, sites = _prepare(model, x0[:1], sites, layers)
    x0, x1 = x0.double(), x1.double()
    per_mille = None if progress is None else lambda d, n, m: progress(d * PROGRESS_TOTAL // n, PROGRESS_TOTAL, m)
    if method in ("auto", "chain"):
        from nacscope.analysis.segments_chain import affine_chain, count_regions_chain

        stages = affine_chain(net, x0[:1])
        if stages is not None:
            return SegmentRegions(*count_regions_chain(stages, x0, x1, sites, max_steps=max_steps, progress=per_mille))
        if method == "chain":
            raise OptionError("the network is not a plain chain of affine layers and ReLUs; use method='layers'")
    if method in ("auto", "layers"):
        from nacscope.analysis.segments_layers import count_regions_layers

        cut, _ = cut_sites(net, sites)
        return SegmentRegions(*count_regions_layers(net, cut, sites, x0, x1, max_steps=max_steps, progress=per_mille))
    p = len(x0)
    v = x1 - x0  # (P, ...)
    t = torch.zeros(p, dtype=torch.float64)
    regions = np.ones(p, dtype=np.int64)
    steps = np.ones(p, dtype=np.int64)
    crossings: list[list[float]] = [[] for _ in range(p)]
    shape = (-1,) + (1,) * (x0.dim() - 1)
    cut, cols = cut_sites(net, sites)
    z, dz = _jvp(net, cut, x0, v)  # (P, U) every site the chosen ones depend on
    _check_affine(net, cut, x0, v, z, dz)
    active = torch.arange(p)

    def report() -> None:
        if progress is not None:
            walked = int(float(t.sum()) / p * PROGRESS_TOTAL)  # mean t over the segments, per mille
            progress(walked, PROGRESS_TOTAL, f"exact walk: {int(steps.sum()) - p:,} boundaries")

    report()
    n_walks = 0
    while len(active):
        s1, s2 = _first_crossings(z, dz)  # (A,)
        t_cross = t[active] + s1
        go = t_cross < 1.0
        t[active[~go]] = 1.0  # no boundary left before the end of these segments
        active, z_old, t_cross, s1, s2 = active[go], z[go], t_cross[go], s1[go], s2[go]
        if not len(active):
            break
        delta = torch.clamp((s2 - s1) / 2, max=step)
        delta = torch.where(delta > 0, delta, torch.full_like(delta, step))
        delta = torch.clamp(delta, min=1e-15)  # always move: t + delta > t in float64 for t <= 1
        t_new = torch.clamp(t_cross + delta, max=1.0)
        xa = x0[active] + t_new.view(shape) * v[active]
        z, dz = _jvp(net, cut, xa, v[active])
        changed = ((z > 0) != (z_old > 0))[:, cols].any(1)  # a boundary of the chosen sites
        for i, row in enumerate(active.tolist()):
            steps[row] += 1
            if changed[i]:
                regions[row] += 1
                crossings[row].append(float(t_cross[i]))
            if steps[row] > max_steps:
                raise OptionError(f"segment {row} crossed more than {max_steps} boundaries; raise max_steps")
        t[active] = t_new
        keep = t_new < 1.0
        active, z, dz = active[keep], z[keep], dz[keep]
        n_walks += 1
        if n_walks % progress_every == 0:
            report()
    t.fill_(1.0)  # every segment walked to its end
    report()
    return SegmentRegions(regions, [np.asarray(c) for c in crossings], steps)


def cut_sites(net: nn.Module, sites: Sequence[Site]) -> tuple[list[Site], torch.Tensor]:
    """Sites to walk by: every ReLU site up to the last chosen one (the chosen sites' pre-activations are
    affine only between their boundaries), ``code`` if chosen; and a (U,) mask of the chosen sites' columns."""
    relus = net._nacscope_relu_sites
    names = {s.name for s in sites}
    code = [s for s in sites if s.kind == "code"]
    last = len(relus) - 1 if code else max((i for i, s in enumerate(relus) if s.name in names), default=-1)
    cut = relus[: last + 1] + code
    cols = torch.cat([torch.full((s.units,), s.name in names) for s in cut])  # (U,)
    return cut, cols


def _check_affine(net, sites, x0, v, z, dz) -> None:
    """Between ``t = 0`` and the first crossing the pre-activations must be affine in ``t``."""
    s1, _ = _first_crossings(z, dz)
    s = torch.clamp(s1 / 2, max=0.5)  # (P,)
    s = torch.where(s > 0, s, torch.full_like(s, 1e-6))
    shape = (-1,) + (1,) * (x0.dim() - 1)
    z_mid, _ = _jvp(net, sites, x0 + s.view(shape) * v, v)
    pred = z + s.view(-1, 1) * dz
    err = (z_mid - pred).abs()
    tol = 1e-7 * (z.abs() + (s.view(-1, 1) * dz).abs() + 1)
    if bool((err > tol).any()):
        raise OptionError(
            "the network is not piecewise linear in its ReLU sites (pre-activations are not affine between "
            "boundaries): it has a nonlinearity other than ReLU, max-pooling, or input-dependent structure"
        )


@torch.no_grad()
def patterns_along(
    model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, ts: torch.Tensor, sites: Sequence[Site], batch: int = 4096
) -> torch.Tensor:
    """Packed activation patterns (T, W) at ``x0 + t (x1 - x0)`` for each ``t`` in ``ts`` (one segment)."""
    from nacscope.codes.capture import capture_bits

    out = []
    for a in range(0, len(ts), batch):
        tt = ts[a : a + batch].to(x0.dtype)
        x = x0.unsqueeze(0) + tt.view((-1,) + (1,) * x0.dim()) * (x1 - x0).unsqueeze(0)  # (b, ...)
        packed, _ = capture_bits(model, x, sites)
        out.append(torch.cat([packed[s.name] for s in sites], 1))  # (b, W)
    return torch.cat(out)


def count_regions_dense(
    model: nn.Module,
    x0: torch.Tensor,
    x1: torch.Tensor,
    *,
    n: int = 1000,
    sites: Sequence[Site] | None = None,
    layers: Sequence[str] | None = None,
) -> np.ndarray:
    """Pattern changes between ``n`` evenly spaced points of each segment, plus one: a lower bound.

    Returns:
        (P,) region counts.
    """
    if n < 2:
        raise OptionError(f"dense sampling needs n >= 2 points, got {n}")
    net, sites = _prepare(model, x0[:1], sites, layers)
    ts = torch.linspace(0, 1, n, dtype=torch.float64)
    counts = []
    for p in range(len(x0)):
        pat = patterns_along(net, x0[p].double(), x1[p].double(), ts, sites)  # (n, W)
        counts.append(1 + int((pat[1:] != pat[:-1]).any(1).sum()))
    return np.asarray(counts, dtype=np.int64)


def sample_pairs(n: int, pairs: int, seed: int = 0) -> np.ndarray:
    """``pairs`` random pairs of distinct sample positions (pairs, 2), the same for a given seed."""
    if n < 2:
        raise OptionError("segments need at least 2 samples")
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n, pairs)
    b = (a + rng.integers(1, n, pairs)) % n
    return np.stack([a, b], 1)
