"""Correctness on a CUDA device (part of ``benchmarks/gpu_check.sh``); prints one PASS/FAIL line per check.

Checks: ``nac_loss`` on CUDA (fp32) against the same inputs in float64 on the CPU; code bits of each
encoder in fp32 on CUDA against the CPU (allowing flips only where |pre-activation| is tiny); the
per-sample augmentation on CUDA (shapes, finite, views differ per sample); and a short NAC training
run on digits on CUDA that must reach a better code mAP than its random initialisation.
"""

from __future__ import annotations

import sys
import tempfile
import time

import torch

from nacscope.data import Augment
from nacscope.nets import build_model
from nacscope.objectives import nac_loss

failures = 0


def check(name: str, ok: bool, detail: str = "") -> None:
    global failures
    failures += not ok
    print(f"{'PASS' if ok else 'FAIL'} {name} {detail}", flush=True)


def main(device: str) -> int:
    if device == "cuda" and not torch.cuda.is_available():
        print("FAIL no CUDA device")
        return 1
    dev = torch.device(device)
    g = torch.Generator().manual_seed(0)

    b, d = 256, 64
    a1, a2, l1, l2 = (torch.randn(b, d, generator=g, dtype=torch.float64) for _ in range(4))
    flips = torch.where(torch.rand(2 * b, d, generator=g) < 0.1, -1.0, 1.0).double()
    ref = nac_loss(a1, a2, l1, l2, 0.1, flips).item()
    got = nac_loss(*(t.float().to(dev) for t in (a1, a2, l1, l2)), 0.1, flips.float().to(dev)).item()
    check("nac_loss cuda fp32 vs cpu fp64", abs(got - ref) < 1e-4 * max(1, abs(ref)), f"{got:.6f} vs {ref:.6f}")

    for arch, c, s in (("mlp", 1, 8), ("convnet", 3, 32), ("resnet18", 3, 32), ("vgg16_bn", 3, 32)):
        torch.manual_seed(0)
        model = build_model(arch, 64, in_channels=c, image_size=s).eval()
        x = torch.randn(64, c, s, s, generator=g)
        with torch.no_grad():
            a_cpu = model.code_preactivation(x)
            a_gpu = model.to(dev).code_preactivation(x.to(dev)).cpu()
        differ = (a_cpu > 0) != (a_gpu > 0)
        near_zero = a_cpu.abs() < 1e-3 * a_cpu.abs().max()
        check(f"code bits {arch} cuda vs cpu", bool((~differ | near_zero).all()),
              f"({int(differ.sum())} of {differ.numel()} bits differ, all near zero)")

    aug = Augment("cifar", (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    imgs = torch.randint(0, 256, (512, 3, 32, 32), dtype=torch.uint8, device=dev)
    v1, v2 = aug.two_views(imgs, torch.Generator(device=dev).manual_seed(1))
    same_image = imgs[:1].expand(8, -1, -1, -1)
    w1, _ = aug.two_views(same_image.contiguous(), torch.Generator(device=dev).manual_seed(2))
    per_sample = all(not torch.allclose(w1[0], w1[i]) for i in range(1, 8))
    check("augmentation on cuda", v1.shape == (512, 3, 32, 32) and bool(torch.isfinite(v1).all()) and per_sample,
          "(shapes, finite, each copy of one image augmented differently)")

    from nacscope.data import load_dataset
    from nacscope.nets import random_init
    from nacscope.training import TrainConfig, quick_eval, train

    with tempfile.TemporaryDirectory() as run:
        t0 = time.perf_counter()
        cfg = TrainConfig(dataset="digits", arch="mlp", epochs=10, device=device, eval_every=10)
        res = train(cfg, run, progress=False)
        seconds = time.perf_counter() - t0
        gallery, queries = load_dataset("digits", "train"), load_dataset("digits", "test")
        base = random_init("mlp", cfg.bits, seed=0, in_channels=1, image_size=8).to(dev).eval()
        before = quick_eval(base, gallery, queries, dev)
        after = res.eval
        check("digits NAC training on cuda beats random init",
              finite_loss(res.final_loss) and after.get("map", 0) > before.get("map", 1),
              f"({seconds:.1f} s; code mAP {after.get('map', float('nan')):.3f} vs random init "
              f"{before.get('map', float('nan')):.3f}; {res.images_per_s:.0f} img/s)")
    return 1 if failures else 0


def finite_loss(x) -> bool:
    return x is not None and x == x and abs(x) != float("inf")


if __name__ == "__main__":
    # `python benchmarks/gpu_correctness.py cpu` runs the same checks on the CPU (to test the script itself).
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "cuda"))
