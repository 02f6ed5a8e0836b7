"""Exact linear regions: plane partitions (faces, time, faces/s) and exact segment walks, in one run.

    PYTHONPATH=$PWD python benchmarks/regions.py [--quick]

1. The exact partition of the plane through three test digits (the anchors of ``nacscope regions``)
   on ``models/digits-nac``, beside the 200x200 grid count (a lower bound) on the same window.
2. The exact partition of a small plane (three inputs near one random 32x32 RGB input, [0, 1]^2) of a
   small convnet (3 ReLU sites, 3,136 units): faces/s.
3. 20 exact segments of a random 784-256-256-256-32 ReLU MLP (digits-sized inputs), same run:
   :func:`count_regions_exact` with ``method="walk"`` (one gated forward per boundary, the walk before
   the chain walk existed), :func:`count_regions_batched` (one forward per site per batch) and the
   default ``method="auto"``, which takes the chain walk (one matmul per layer for all cut points).
   Then the same three on 20 segments between test digits on ``models/digits-nac`` (a NAC MLP, with
   the code layer). ``--segments-only`` runs just these.
4. Exact segments between test digits on a random-init ``convnet`` (nacscope's arch: conv-BN-ReLU 32,
   64, 128, global average pool, 32-bit code; no chain, so no chain walk), code layer included, same
   run: ``method="walk"`` (one gated forward per boundary) against ``method="layers"`` (one batched
   forward per site over all cut points) and ``auto``. ``--convnet-only`` runs just this.
One thread throughout, so the numbers compare across machines of the shared CPU.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]


def _plane_digits(margin: float) -> dict:
    from nacscope.analysis.partition import exact_plane_partition
    from nacscope.analysis.plane import plane_regions
    from nacscope.codes.study import load_data, load_source, normalizer

    data = load_data("digits", "test", None)
    model, meta = load_source(ROOT / "models/digits-nac/model.pt", random_init=False, arch=None, bits=None, seed=0,
                              in_channels=None, image_size=None)
    triple = np.random.default_rng(1).choice(len(data), 3, replace=False)  # as `regions --sample-seed 0`
    anchors = normalizer(meta, data)[0](data.images[torch.as_tensor(triple)])
    t = time.perf_counter()
    res = exact_plane_partition(model, anchors, margin=margin)
    exact_s = time.perf_counter() - t
    t = time.perf_counter()
    grid = plane_regions(model, anchors, resolution=200, margin=margin, dtype=torch.float64)
    grid_s = time.perf_counter() - t
    return {"faces": res.n_faces, "per_layer": res.per_layer, "V": res.n_vertices, "E": res.n_edges,
            "seconds": exact_s, "grid200": grid.n_regions, "grid_seconds": grid_s}


def _plane_convnet(margin: float) -> dict:
    from nacscope.analysis.partition import exact_plane_partition

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1),
                        nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16 * 4 * 4, 64), nn.ReLU()).eval()
    base = torch.randn(1, 3, 32, 32)
    anchors = base + 0.1 * torch.randn(3, 3, 32, 32)  # a small plane near one input: ~10^4 faces
    t = time.perf_counter()
    res = exact_plane_partition(net, anchors, margin=0.0)
    s = time.perf_counter() - t
    return {"faces": res.n_faces, "seconds": s, "faces_per_s": res.n_faces / s}


def _timed(f, repeats: int):
    """(result, best seconds over ``repeats`` calls)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t)
    return out, best


def _segments(n: int, repeats: int) -> dict:
    from nacscope.analysis.segments import count_regions_exact
    from nacscope.analysis.segments_batched import count_regions_batched

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                        nn.Linear(256, 32), nn.ReLU()).eval()
    x0, x1 = torch.randn(n, 784), torch.randn(n, 784)
    res, walk_s = _timed(lambda: count_regions_exact(net, x0, x1, method="walk"), repeats)
    batched, batched_s = _timed(lambda: count_regions_batched(net, x0, x1), repeats)
    chain, chain_s = _timed(lambda: count_regions_exact(net, x0, x1), repeats)
    return {"segments": n, "regions_mean": float(res.regions.mean()), "seconds": walk_s, "batched_seconds": batched_s,
            "chain_seconds": chain_s, "agree": int((batched.regions == res.regions).sum()),
            "chain_agree": int((chain.regions == res.regions).sum())}


def _segments_digits(n: int, repeats: int) -> dict:
    from nacscope.analysis.segments import count_regions_exact, sample_pairs
    from nacscope.analysis.segments_batched import count_regions_batched
    from nacscope.codes.study import load_data, load_source, normalizer

    data = load_data("digits", "test", None)
    model, meta = load_source(ROOT / "models/digits-nac/model.pt", random_init=False, arch=None, bits=None, seed=0,
                              in_channels=None, image_size=None)
    x = normalizer(meta, data)[0](data.images)
    pr = torch.as_tensor(sample_pairs(len(x), n, seed=0))
    x0, x1 = x[pr[:, 0]], x[pr[:, 1]]
    res, walk_s = _timed(lambda: count_regions_exact(model, x0, x1, layers=["all"], method="walk"), repeats)
    batched, batched_s = _timed(lambda: count_regions_batched(model, x0, x1, layers=["all"]), repeats)
    chain, chain_s = _timed(lambda: count_regions_exact(model, x0, x1, layers=["all"]), repeats)
    return {"segments": n, "regions_mean": float(res.regions.mean()), "seconds": walk_s, "batched_seconds": batched_s,
            "chain_seconds": chain_s, "agree": int((batched.regions == res.regions).sum()),
            "chain_agree": int((chain.regions == res.regions).sum())}


def _segments_convnet(n: int, repeats: int) -> dict:
    from nacscope.analysis.segments import count_regions_exact, sample_pairs
    from nacscope.codes.study import load_data
    from nacscope.nets.model import random_init

    data = load_data("digits", "test", None)
    x = data.images.double()
    x = (x - x.mean()) / x.std()
    model = random_init("convnet", 32, 0, in_channels=1, image_size=8).eval()
    pr = torch.as_tensor(sample_pairs(len(x), n, seed=0))
    x0, x1 = x[pr[:, 0]], x[pr[:, 1]]
    res, walk_s = _timed(lambda: count_regions_exact(model, x0, x1, layers=["all"], method="walk"), repeats)
    lay, lay_s = _timed(lambda: count_regions_exact(model, x0, x1, layers=["all"], method="layers"), repeats)
    auto, auto_s = _timed(lambda: count_regions_exact(model, x0, x1, layers=["all"]), repeats)
    return {"segments": n, "regions_mean": float(res.regions.mean()), "seconds": walk_s, "layers_seconds": lay_s,
            "auto_seconds": auto_s, "agree": int((lay.regions == res.regions).sum()),
            "auto_agree": int((auto.regions == res.regions).sum())}


def _print_segments(what: str, s: dict, repeats: int) -> None:
    print(f"{what}, {s['segments']} exact segments (mean {s['regions_mean']:,.0f} regions, "
          f"best of {repeats}): walk {s['seconds']:.3f} s, batched {s['batched_seconds']:.3f} s "
          f"(x{s['seconds'] / s['batched_seconds']:.1f}), chain {s['chain_seconds']:.3f} s "
          f"(x{s['seconds'] / s['chain_seconds']:.1f}); counts equal the walk's on {s['agree']}/{s['segments']} "
          f"(batched), {s['chain_agree']}/{s['segments']} (chain)")


def _print_convnet(s: dict, repeats: int) -> None:
    print(f"convnet (random init, digits, code included), {s['segments']} exact segments (mean "
          f"{s['regions_mean']:,.0f} regions, best of {repeats}): walk {s['seconds']:.2f} s, layers "
          f"{s['layers_seconds']:.2f} s (x{s['seconds'] / s['layers_seconds']:.1f}), auto {s['auto_seconds']:.2f} s "
          f"(x{s['seconds'] / s['auto_seconds']:.1f}); counts equal the walk's on {s['agree']}/{s['segments']} "
          f"(layers), {s['auto_agree']}/{s['segments']} (auto)")


def _planes(m: float) -> None:
    """Parts 1 and 2: the exact plane partitions."""
    d = _plane_digits(m)
    print(f"digits-nac plane (margin {m}): {d['faces']:,} exact faces in {d['seconds']:.1f} s "
          f"({d['faces'] / d['seconds']:,.0f} faces/s; V={d['V']:,}, E={d['E']:,}); "
          f"200x200 grid: {d['grid200']:,} (lower bound) in {d['grid_seconds']:.1f} s")
    print("  per layer:", ", ".join(f"{k}: {v:,}" for k, v in d["per_layer"]))
    c = _plane_convnet(m)
    print(f"convnet 32x32 plane: {c['faces']:,} faces in {c['seconds']:.1f} s ({c['faces_per_s']:,.0f} faces/s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="Small margins and 4 segments (a smoke run).")
    ap.add_argument("--segments-only", action="store_true", help="Only the segment walks (part 3).")
    ap.add_argument("--convnet-only", action="store_true", help="Only the convnet segment walks (part 4).")
    ap.add_argument("--repeats", type=int, default=3, help="Segment timings: best of this many runs each.")
    args = ap.parse_args()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        m = 0.02 if args.quick else 0.25
        n = 4 if args.quick else 20
        if args.convnet_only:
            _print_convnet(_segments_convnet(n // 2, args.repeats), args.repeats)
            return
        if not args.segments_only:
            _planes(m)
        _print_segments("784-256-256-256-32 MLP", _segments(n, args.repeats), args.repeats)
        _print_segments("digits-nac (all sites, code included)", _segments_digits(n, args.repeats), args.repeats)
        _print_convnet(_segments_convnet(n // 2, args.repeats), args.repeats)
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    main()
