"""Images/s of the NAC training step with full per-sample augmentation: nacscope vs the authors' pipeline.

Run side by side in one process, on the same synthetic CIFAR-shaped uint8 data (no download):

* ``authors``: a faithful reproduction of the authors' input pipeline: PIL images, torchvision
  transforms (RandomResizedCrop(32), flip 0.5, ColorJitter(0.4, 0.4, 0.4, 0.1) p=0.8, grayscale 0.2,
  ToTensor, Normalize) applied twice per image in DataLoader workers, pinned memory, fp32 step.
* ``nacscope``: data resident on the device as uint8, both views made in one pass by
  :class:`nacscope.data.Augment` (batched affine_grid/grid_sample crops and flips, elementwise per-sample
  jitter), bf16 autocast + channels_last on CUDA, optional ``torch.compile``.

Both take the authors' step (NAC-NOTES §2.7, §3): the two views forwarded separately, the authors'
LARS rule (:class:`nacscope.optim.PaperLARS`), the NAC loss. nacscope is timed twice: in fp32 (the
paper presets' default, the same arithmetic as the authors') and with bf16 autocast + channels_last on
CUDA (``--bf16``, a named option that changes the step slightly). It also times the augmentation alone
against kornia's per-sample pipeline on the same batch.

Examples::

    python benchmarks/train_throughput.py                       # CPU: mlp and convnet sizes
    python benchmarks/train_throughput.py --gpu                 # GPU: resnet50 bs512, vgg16_bn bs1000
    python benchmarks/train_throughput.py --arch convnet --batch 256 --steps 10 --workers 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nacscope.data import Augment
from nacscope.nets import build_model
from nacscope.objectives import nac_loss

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


class PILPairs(torch.utils.data.Dataset):
    """The authors' style of dataset: uint8 HWC arrays -> PIL -> two independently transformed views."""

    def __init__(self, images: np.ndarray):
        import torchvision.transforms as T

        self.images = images  # (N, H, W, 3) uint8
        self.transform = T.Compose([
            T.RandomResizedCrop(images.shape[1]),
            T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            T.ToTensor(),
            T.Normalize(MEAN, STD),
        ])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from PIL import Image

        img = Image.fromarray(self.images[i])
        return self.transform(img), self.transform(img)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(model, optimizer, bf16: bool, channels_last: bool, p: float = 0.1):
    from nacscope.training import forward_views

    def step(v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
        if channels_last:
            v1, v2 = (v.contiguous(memory_format=torch.channels_last) for v in (v1, v2))
        with torch.autocast(v1.device.type, dtype=torch.bfloat16, enabled=bf16):
            a_1, a_2, l_1, l_2 = forward_views(model, v1, v2, "per-view")  # the authors' two encoder calls
        loss = nac_loss(a_1.float(), a_2.float(), l_1.float(), l_2.float(), p)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def new_model(arch: str, device: torch.device, channels_last: bool):
    from nacscope.optim import PaperLARS

    torch.manual_seed(0)
    model = build_model(arch, 128, in_channels=3, image_size=32).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, PaperLARS(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-6)


def time_authors(arch, images, batch, steps, warmup, workers, device) -> float:
    model, opt = new_model(arch, device, False)
    step = make_step(model, opt, bf16=False, channels_last=False)
    loader = torch.utils.data.DataLoader(PILPairs(images), batch_size=batch, shuffle=True, drop_last=True,
                                         num_workers=workers, pin_memory=device.type == "cuda",
                                         persistent_workers=workers > 0)
    done, t0 = 0, None
    while done < warmup + steps:
        for v1, v2 in loader:
            if done == warmup:
                _sync(device)
                t0 = time.perf_counter()
            step(v1.to(device, non_blocking=True), v2.to(device, non_blocking=True))
            done += 1
            if done == warmup + steps:
                break
    _sync(device)
    return steps * batch / (time.perf_counter() - t0)


def time_nacscope(arch, images, batch, steps, warmup, device, compile_model: bool, fast: bool) -> float:
    """``fast``: bf16 autocast + channels_last on CUDA; otherwise fp32, the authors' arithmetic."""
    fast = fast and device.type == "cuda"
    model, opt = new_model(arch, device, fast)
    step_model = torch.compile(model) if compile_model else model
    step = make_step(step_model, opt, bf16=fast, channels_last=fast)
    data = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)  # (N, 3, H, W) uint8, resident
    aug = Augment("cifar", MEAN, STD, compile=compile_model)
    g = torch.Generator(device=device).manual_seed(0)
    n = len(data)
    t0 = None
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            t0 = time.perf_counter()
        idx = torch.randint(0, n, (batch,), device=device, generator=g)
        v1, v2 = aug.two_views(data[idx], g)
        step(v1, v2)
    _sync(device)
    return steps * batch / (time.perf_counter() - t0)


def time_augment(images, batch, reps, device) -> dict[str, float]:
    """Views/s of the per-sample CIFAR recipe: nacscope's Augment vs kornia's AugmentationSequential (if installed)."""
    try:
        import kornia.augmentation as K
    except ImportError:  # the GPU machine has no kornia: time ours alone
        K = None

    x = torch.from_numpy(images[:batch]).permute(0, 3, 1, 2).contiguous().to(device)
    ours = Augment("cifar", MEAN, STD)
    g = torch.Generator(device=device).manual_seed(0)
    cases = {"nacscope": lambda: ours(x, g)}
    if K is not None:
        kornia_aug = K.AugmentationSequential(
            K.RandomResizedCrop((32, 32), scale=(0.08, 1.0)),
            K.RandomHorizontalFlip(),
            K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
            K.RandomGrayscale(p=0.2),
            K.Normalize(torch.tensor(MEAN, device=device), torch.tensor(STD, device=device)),
        ).to(device)
        cases["kornia"] = lambda: kornia_aug(x.float() / 255)
    out = {}
    for name, fn in cases.items():
        fn()
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        _sync(device)
        out[name] = reps * batch / (time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", action="store_true", help="the issue's GPU cases: resnet50 bs512 and vgg16_bn bs1000")
    ap.add_argument("--arch", action="append", help="architecture(s) to time (repeatable)")
    ap.add_argument("--batch", type=int, action="append", help="batch per architecture (repeatable, same order)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per pipeline")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers of the authors' pipeline")
    ap.add_argument("--compile", action="store_true", help="torch.compile nacscope's model and augmentation")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    device = torch.device("cuda" if args.gpu else "cpu")
    if args.gpu and not torch.cuda.is_available():
        raise SystemExit("--gpu: CUDA is not available")
    if args.threads:
        torch.set_num_threads(args.threads)
    archs = args.arch or (["resnet50", "vgg16_bn"] if args.gpu else ["mlp", "convnet"])
    batches = args.batch or ([512, 1000] if args.gpu else [256, 256])
    steps = args.steps or (30 if args.gpu else 8)
    warmup = args.warmup if args.warmup is not None else (5 if args.gpu else 2)
    workers = args.workers if args.workers is not None else (16 if args.gpu else 2)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    n = max(batches) * (steps + warmup + 1)
    images = np.random.default_rng(0).integers(0, 256, size=(min(n, 60000), 32, 32, 3), dtype=np.uint8)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}; steps {steps} (+{warmup} warm-up); authors' workers {workers}")
    fast = device.type == "cuda"
    print(f"{'arch':<10} {'batch':>6} {'authors img/s':>14} {'nacscope fp32':>14} {'ratio':>7}"
          + (f" {'nacscope bf16':>14} {'ratio':>7}" if fast else ""))
    for arch, batch in zip(archs, batches):
        a = time_authors(arch, images, batch, steps, warmup, workers, device)
        o = time_nacscope(arch, images, batch, steps, warmup, device, args.compile, fast=False)
        line = f"{arch:<10} {batch:>6} {a:>14,.0f} {o:>14,.0f} {o / a:>6.2f}x"
        if fast:
            f = time_nacscope(arch, images, batch, steps, warmup, device, args.compile, fast=True)
            line += f" {f:>14,.0f} {f / a:>6.2f}x"
        print(line, flush=True)
    aug = time_augment(images, max(batches), 10 if device.type == "cuda" else 3, device)
    line = f"augmentation alone, batch {max(batches)}: nacscope {aug['nacscope']:,.0f} views/s"
    if "kornia" in aug:
        line += f", kornia {aug['kornia']:,.0f} views/s, ratio {aug['nacscope'] / aug['kornia']:.2f}x"
    print(line + ("" if "kornia" in aug else " (kornia not installed)"))


if __name__ == "__main__":
    main()
