"""The choices of ``nacscope train``, importable without torch (the CLI builds ``--help`` from them)."""

from __future__ import annotations

from typing import Any

ARCHS = ("mlp", "convnet", "resnet18", "resnet50", "vgg16_bn")
#: ``nac-moco``: NAC-NOTES §2.6, momentum key encoder + queue of relaxed codes (:mod:`nacscope.training.moco_step`).
OBJECTIVES = ("nac", "simclr", "nac-moco")
MOCO_KAPPA = ("divide", "multiply")
#: ``lars-paper``: the authors' LARS rule (every parameter; zero-norm parameters never move, see
#: :mod:`nacscope.optim`). ``lars``: timm's LARS, biases/norms excluded. ``sgd``, ``adamw``: torch's.
OPTIMIZERS = ("lars-paper", "lars", "sgd", "adamw")
#: ``per-view``: two encoder calls, BatchNorm sees one view's batch per call (the authors' step);
#: ``joint``: one call on all 2B views (faster; BatchNorm over both views mixed: not the same step).
FORWARDS = ("per-view", "joint")

# The authors' step: views forwarded separately, their LARS rule, fp32 (no autocast).
AUTHORS_STEP: dict[str, Any] = dict(forward="per-view", optimizer="lars-paper", bf16=False)
# The paper's table of settings. The hashing preset trains on the authors' protocol split (``cifar10-hash``:
# 5,000 training images, 500 per class of the gallery; the quick evaluation then ranks that set for the queries).
PRESETS: dict[str, dict[str, Any]] = {
    "paper-cifar10-linear": dict(
        dataset="cifar10", arch="resnet50", objective="nac", bits=128, p=0.1, lr=3.0, momentum=0.9,
        warmup_epochs=10, epochs=1000, batch_size=1000, weight_decay=1e-6, augment="cifar", **AUTHORS_STEP,
    ),
    "paper-cifar10-hash": dict(
        dataset="cifar10-hash", arch="vgg16_bn", objective="nac", bits=64, p=0.4, lr=3.0, momentum=0.9,
        warmup_epochs=100, epochs=2000, batch_size=1000, weight_decay=1e-6, augment="cifar", **AUTHORS_STEP,
    ),
    # ImageNet-1K linear evaluation with MoCo-NAC (NAC-NOTES §2.6). Stated by the notes: ResNet-50, the MoCo
    # variant, per-view forwards, fp32, κ divided ("divide", the authors' MoCo code). GUESSES (the notes give no
    # ImageNet table), taken from MoCo v2's recipe: bits 128 and p 0.1 (the CIFAR linear preset's), SGD lr 0.03 at
    # batch 256, momentum 0.9, weight decay 1e-4, 200 epochs, no warm-up, K 65536, m 0.999, λ 0.0 (no value known).
    "paper-imagenet": dict(
        dataset="imagenet", arch="resnet50", objective="nac-moco", bits=128, p=0.1, optimizer="sgd", lr=0.03,
        momentum=0.9, weight_decay=1e-4, warmup_epochs=0, epochs=200, batch_size=256,
        moco_queue=65536, moco_momentum=0.999, moco_l2=0.0, moco_kappa="divide", forward="per-view", bf16=False,
    ),
}
#: Presets whose values are partly guesses (``--help`` and the docs say so).
GUESSED_PRESETS = ("paper-imagenet",)
#: Fields that ``--resume`` may take from the command line; all others come from the run's own config.
RESUME_OVERRIDABLE = ("epochs", "stop_after_epochs", "eval_every", "ckpt_every", "log_every", "device", "compile",
                      "threads", "root", "download", "workers")
