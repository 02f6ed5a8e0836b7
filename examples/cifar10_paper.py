"""The NAC paper's CIFAR-10 protocols on one GPU: hashing at 16/32/64 bits, and linear classification.

**Needs** a CUDA GPU and CIFAR-10 in torchvision's on-disk format (``DATA/cifar-10-batches-py``;
fetch it once with ``nacscope train ... --download`` or torchvision). Nothing here runs on the CPU in
reasonable time; ``--dry-run`` only checks that every command parses (CI runs that).

The exact commands, in order (``DATA`` = ``--data-root``, ``OUT`` = ``--out``)::

    # hashing (NAC-NOTES §3-4): VGG-16-BN, p = 0.4, LARS lr 3.0, 100 warm-up epochs, 2000 epochs, batch 1000
    nacscope train --preset paper-cifar10-hash --bits B --root DATA --out OUT/runs/hash-B     # B = 16, 32, 64
    nacscope dump OUT/runs/hash-B --dataset cifar10 --data-root DATA --split all --protocol paper-cifar10 \\
        --layers code --features -o OUT/hash-B.h5
    nacscope analyze OUT/hash-B.h5 --layer code --rank dot --json > OUT/hash-B.dot.json      # the authors' ranking
    nacscope analyze OUT/hash-B.h5 --layer code --json > OUT/hash-B.hamming.json            # Hamming ranking

    # linear classification: ResNet-50 (CIFAR stem), D = 128, p = 0.1, 10 warm-up epochs, 1000 epochs
    nacscope train --preset paper-cifar10-linear --root DATA --out OUT/runs/linear
    nacscope probe OUT/runs/linear --dataset cifar10 --root DATA --protocol paper -o OUT/linear.json

**Where results land**: checkpoints and ``metrics.jsonl`` in ``OUT/runs/*``, code sets ``OUT/*.h5``
(browse them with ``nacscope inspect``), and the numbers in ``OUT/*.json``: ``retrieval.code.map`` is
the mAP over the whole 50,000-image gallery for the 10,000 queries (1,000 per class, the authors'
split with a fixed seed); ``top1`` in ``OUT/linear.json`` the linear-evaluation accuracy under the
paper's protocol (frozen encoder, raw features, SGD Nesterov, lr 1.0, cosine, 100 epochs, batch 1000,
crop + flip; the official 50,000 training images train it, the official 10,000 test images test it).

**Expected runtime on one GPU** (estimates from the step throughput measured on one H200 in
``NAC-NOTES.md`` §6, not a run of this script): the linear-classification run sees 1000 x 50,000 =
50 M images; at the authors' pipeline's 2,148 img/s that is 6.5 h, at the 4,352 img/s of a bf16 +
channels_last step with data on the GPU about 3.2 h. Each hashing run trains on the protocol's
5,000 images and sees 2000 x 5,000 = 10 M images; at 5,107 img/s (the authors' loader-bound
pipeline) 33 min, at 15,000-18,000 img/s 9-11 min,
so the three bit lengths take 0.5-1.7 h. Dumps (60,000 images) take about a minute each, analyses a few
minutes (mAP over 10,000 x 50,000).

Caveats, stated so that numbers are compared fairly: the hashing preset trains on the protocol's
5,000-image subset of the gallery (``--dataset cifar10-hash``), drawn from the same seeded draw that
``--protocol paper-cifar10`` uses for its queries (so no training image is a query), but the authors'
own draw was never published. The linear evaluation is ``nacscope probe --protocol paper``, not the
fast probe of ``nacscope analyze --probes`` (which fits stored features of the hashing split, whose
queries are mostly official training images). ``--rank dot`` reproduces the authors' ranking (dot product of {0,1} codes).

Run::

    python examples/cifar10_paper.py --data-root DATA --out OUT [--bits 16 32 64] [--skip-linear] [--dry-run]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path


def commands(data: Path, out: Path, bits: list[int], linear: bool) -> list[tuple[list[str], Path | None]]:
    """Every step as ``(nacscope argv, file to save its stdout in or None)``."""
    steps: list[tuple[list[str], Path | None]] = []
    for b in bits:
        run, h5 = out / "runs" / f"hash-{b}", out / f"hash-{b}.h5"
        steps += [
            (["train", "--preset", "paper-cifar10-hash", "--bits", str(b), "--root", str(data), "--out", str(run)], None),
            (["dump", str(run), "--dataset", "cifar10", "--data-root", str(data), "--split", "all", "--protocol",
              "paper-cifar10", "--layers", "code", "--features", "-o", str(h5)], None),
            (["analyze", str(h5), "--layer", "code", "--rank", "dot", "--json"], out / f"hash-{b}.dot.json"),
            (["analyze", str(h5), "--layer", "code", "--json"], out / f"hash-{b}.hamming.json"),
        ]
    if linear:
        run = out / "runs" / "linear"
        steps += [
            (["train", "--preset", "paper-cifar10-linear", "--root", str(data), "--out", str(run)], None),
            (["probe", str(run), "--dataset", "cifar10", "--root", str(data), "--protocol", "paper", "-o",
              str(out / "linear.json")], None),
        ]
    return steps


def check_parses(argv: list[str]) -> None:
    """Parse ``nacscope argv`` with the real command-line definitions, without running the command."""
    import typer

    from nacscope.cli import app

    group = typer.main.get_command(app)
    ctx = group.context_class(group, info_name="nacscope")
    cmd = group.get_command(ctx, argv[0])
    if cmd is None:
        raise ValueError(f"nacscope {argv[0]}: no such command")
    try:
        cmd.make_context(argv[0], list(argv[1:]), parent=ctx)
    except Exception as exc:  # click's UsageError family (typer may vendor its own click)
        raise ValueError(f"nacscope {' '.join(argv)}: {exc}") from None


def main(argv: list[str] | None = None) -> list[list[str]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", type=Path, required=True, help="folder holding cifar-10-batches-py")
    ap.add_argument("--out", type=Path, default=Path("cifar10-paper"))
    ap.add_argument("--bits", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--skip-linear", action="store_true")
    ap.add_argument("--dry-run", action="store_true", help="only check that every command parses")
    args = ap.parse_args(argv)
    steps = commands(args.data_root, args.out, args.bits, not args.skip_linear)
    if args.dry_run:
        from nacscope.training import apply_preset, validate

        for cmd, _ in steps:
            check_parses(cmd)
            if cmd[0] == "train":  # the preset exists and, with the options given, is a valid configuration
                preset = cmd[cmd.index("--preset") + 1]
                bits = int(cmd[cmd.index("--bits") + 1]) if "--bits" in cmd else None
                validate(apply_preset(preset, {"bits": bits}))
            print("ok  nacscope " + " ".join(cmd))
        print(f"{len(steps)} commands parse")
        return [c for c, _ in steps]
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("these protocols need a CUDA GPU (use --dry-run to check the commands here)")
    from nacscope.cli import app

    args.out.mkdir(parents=True, exist_ok=True)
    for cmd, save in steps:
        print("$ nacscope " + " ".join(cmd) + (f" > {save}" if save else ""), flush=True)
        with open(save, "w") if save else contextlib.nullcontext() as fh:
            with contextlib.redirect_stdout(fh) if fh else contextlib.nullcontext():
                code = app(cmd, standalone_mode=False)
        if code:
            sys.exit(code)
    print(f"results in {args.out}: hash-*.json (retrieval.code.map), linear.json (top1)")
    return [c for c, _ in steps]


if __name__ == "__main__":
    main()
