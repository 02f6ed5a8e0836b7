"""Dump speed as a fraction of the bare forward pass on the same model and data, side by side.

Bare: batches of uint8 images -> device -> normalise -> features + code pre-activation (no_grad),
results dropped. Dump: ``dump_codes`` with the default sites (encoder's last ReLU, head ReLU, code),
features ``h`` and thumbnails, into a code set on local disk. Runs alternate (bare, dump, bare, ...)
and the medians are compared.

    python benchmarks/dump_throughput.py                        # mlp on the CPU
    python benchmarks/dump_throughput.py --arch resnet18 --n 20000 --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from nacscope.codes.capture import default_sites, list_sites, run_model
from nacscope.codes.dump import DumpInput, dump_codes
from nacscope.nets import build_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="mlp")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--size", type=int, default=None, help="image side (default 28 for mlp, 32 otherwise)")
    ap.add_argument("--channels", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    size = args.size or (28 if args.arch == "mlp" else 32)
    ch = args.channels or (1 if args.arch == "mlp" else 3)
    dev = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.n, ch, size, size), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (args.n,), generator=g)
    model = build_model(args.arch, 64, in_channels=ch, image_size=size).eval().to(dev)

    def normalize(x: torch.Tensor) -> torch.Tensor:
        return (x.float() / 255.0 - 0.5) / 0.25  # (B, C, H, W)

    sites = default_sites(list_sites(model, normalize(images[:2].to(dev))))

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    @torch.no_grad()
    def bare() -> float:
        sync()
        t0 = time.perf_counter()
        for a in range(0, args.n, args.batch):
            xb = images[a : a + args.batch].to(dev, non_blocking=True)
            run_model(model, normalize(xb))
        sync()
        return time.perf_counter() - t0

    def dump(tmp: Path, i: int, **kw) -> float:
        t0 = time.perf_counter()
        dump_codes(model, DumpInput(images, normalize, labels, None, [str(c) for c in range(10)]),
                   tmp / f"d{i}.h5", sites, batch_size=args.batch, device=dev, **kw)
        sync()
        return time.perf_counter() - t0

    bare()  # warm-up
    from nacscope.codes import writer as fmt

    default_compression = (dict(fmt.OTHER_COMPRESSION), dict(fmt.FEATURE_COMPRESSION))
    variants = {
        "dump (bits+h+thumbs)": ({}, default_compression),
        "dump (bits only)": ({"features": False, "thumbnails": None}, default_compression),
        # The same with the code set's per-sample arrays (index, labels, h, thumbnails) uncompressed:
        # shows what the format's compression costs (h5py compresses while holding the GIL).
        "dump bits+h+thumbs, no gzip": ({}, ({}, {})),
        "dump bits only, no gzip": ({"features": False, "thumbnails": None}, ({}, {})),
    }
    times: dict[str, list[float]] = {"bare forward": [], **{k: [] for k in variants}}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        i = 0
        for r in range(args.repeats):
            times["bare forward"].append(bare())
            for name, (kw, comp) in variants.items():
                fmt.OTHER_COMPRESSION, fmt.FEATURE_COMPRESSION = comp
                try:
                    times[name].append(dump(tmp, i, **kw))
                finally:
                    fmt.OTHER_COMPRESSION, fmt.FEATURE_COMPRESSION = default_compression
                i += 1
            for f in tmp.glob("*.h5"):
                f.unlink()
    base = statistics.median(times["bare forward"])
    print(f"{args.arch} on {dev}, N={args.n}, batch {args.batch}, input {ch}x{size}x{size}, "
          f"sites {[s.name for s in sites]}, torch threads {torch.get_num_threads()}")
    print(f"{'':30s} {'median s':>9s} {'samples/s':>10s} {'vs bare':>8s}")
    for k, v in times.items():
        m = statistics.median(v)
        print(f"{k:30s} {m:9.3f} {args.n / m:10.0f} {base / m:8.2f}")


if __name__ == "__main__":
    main()
