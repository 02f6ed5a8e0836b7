"""Linear evaluation of a frozen encoder from its images: the NAC paper's protocol, and a fast one.

``protocol="paper"`` (NAC-NOTES §4): the encoder is frozen; a linear classifier is trained on its raw
features ``h`` (no standardisation) with SGD, Nesterov momentum 0.9, lr 1.0, a cosine schedule to 0
over 100 epochs, batch 1000, and a random crop (zero padding of 1/8 of the side, 4 pixels at 32x32)
plus a horizontal flip of each training image, drawn anew every epoch; trained on the dataset's
``train`` split, top-1 accuracy reported on its ``test`` split (for CIFAR-10: the official 50,000 /
10,000). Weight decay is not stated by the paper and is 0 here.

``protocol="fast"``: scikit-learn's multinomial logistic regression (L-BFGS) on standardised features of
the un-augmented training images. Minutes instead of hours; **not** the paper's figure.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from nacscope.errors import OptionError
from nacscope.progress import Progress

if TYPE_CHECKING:
    from pathlib import Path

    from nacscope.data import ImageData

PROTOCOLS = ("paper", "fast")
#: How each protocol is labelled wherever its figure is shown.
PROTOCOL_LABELS = {
    "paper": "linear eval, paper protocol (SGD 100 epochs, crop+flip, raw features)",
    "fast": "linear probe, fast protocol (L-BFGS logistic regression, standardised features; not the paper's)",
}


@dataclass
class LinearEvalConfig:
    """Settings of the paper protocol (defaults: the paper's)."""

    epochs: int = 100
    batch_size: int = 1000
    lr: float = 1.0
    momentum: float = 0.9
    augment: bool = True
    seed: int = 0

    def validate(self) -> None:
        checks = [(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
                  (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
                  (math.isfinite(self.lr) and self.lr > 0, f"lr must be a finite number > 0, got {self.lr}"),
                  (0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")]
        for ok, message in checks:
            if not ok:
                raise OptionError(message)


@dataclass
class LinearEvalResult:
    protocol: str
    label: str
    top1: float
    n_train: int
    n_test: int
    feature_dim: int
    n_classes: int
    settings: dict[str, Any] = field(default_factory=dict)
    #: The trained classifier (paper protocol): ``weight`` (C, F), ``bias`` (C,), float32.
    head: dict[str, np.ndarray] | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("head")
        return d


def crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int) -> torch.Tensor:
    """Per-sample random crop of the zero-padded images and horizontal flip with probability 1/2.

    Args:
        x: uint8 or float (B, C, H, W).
        pad: zero padding on each side; crops of (H, W) are taken at offsets 0..2*pad.
    """
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))  # (B, C, H + 2p, W + 2p)
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
    rows = oy[:, None] + torch.arange(h, device=x.device)[None, :]  # (B, H)
    cols = torch.arange(w, device=x.device)[None, :].expand(b, w)
    cols = torch.where(flip[:, None], w - 1 - cols, cols) + ox[:, None]  # (B, W)
    bi = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def _features(model: torch.nn.Module, x: torch.Tensor, normalize: Callable) -> torch.Tensor:
    with torch.no_grad():
        out = model(normalize(x))
    return (out[0] if isinstance(out, tuple) else out).float()  # (B, F): h of a NACModel


def _all_features(model, data: "ImageData", normalize, device, batch: int) -> torch.Tensor:
    parts = [_features(model, data.images[s : s + batch].to(device), normalize) for s in range(0, len(data), batch)]
    return torch.cat(parts)


def linear_eval(
    model: torch.nn.Module, train: "ImageData", test: "ImageData", *, protocol: str = "paper",
    config: LinearEvalConfig | None = None, normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: str | torch.device = "cpu", progress: Progress | None = None,
) -> LinearEvalResult:
    """Top-1 test accuracy of a linear classifier on the frozen encoder's features (module docstring).

    Args:
        model: the encoder (a NACModel: its first output is ``h``); put in eval mode and never updated.
        train, test: labelled images; ``normalize`` maps their uint8 batches to the encoder's inputs
            (default: ``train.normalize``).
    """
    if protocol not in PROTOCOLS:
        raise OptionError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    if train.labels is None or test.labels is None:
        raise OptionError("linear evaluation needs class labels on the train and test splits")
    cfg = config or LinearEvalConfig()
    cfg.validate()
    device = torch.device(device)
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    normalize = normalize or train.normalize
    y_train, y_test = train.labels.long(), test.labels.long()
    n_classes = int(max(int(y_train.max()), int(y_test.max()))) + 1
    test_h = _all_features(model, test, normalize, device, cfg.batch_size)  # (T, F)
    common = dict(protocol=protocol, label=PROTOCOL_LABELS[protocol], n_train=len(train), n_test=len(test),
                  feature_dim=int(test_h.shape[1]), n_classes=n_classes)
    if protocol == "fast":
        from nacscope.analysis.probes import logistic_accuracy

        train_h = _all_features(model, train, normalize, device, cfg.batch_size)
        top1 = logistic_accuracy(train_h.cpu().numpy(), y_train.numpy(), test_h.cpu().numpy(), y_test.numpy())
        return LinearEvalResult(top1=top1, settings={"solver": "lbfgs", "standardize": True}, **common)
    head = _train_head(model, train, y_train.to(device), n_classes, int(test_h.shape[1]), cfg, normalize, device,
                       progress)
    with torch.no_grad():
        top1 = float((head(test_h).argmax(dim=1).cpu() == y_test).float().mean())
    weights = {k: v.detach().cpu().numpy() for k, v in head.state_dict().items()}
    settings = {**asdict(cfg), "optimizer": "sgd-nesterov", "schedule": "cosine", "weight_decay": 0.0,
                "features": "raw h", "crop_pad": _pad(train)}
    return LinearEvalResult(top1=top1, settings=settings, head=weights, **common)


def _pad(data: "ImageData") -> int:
    return max(1, data.image_size // 8)  # 4 at 32x32, as in the usual CIFAR crop


def _train_head(model, train: "ImageData", y: torch.Tensor, n_classes: int, dim: int, cfg: LinearEvalConfig,
                normalize, device, progress: Progress | None) -> torch.nn.Linear:
    """SGD (Nesterov) on a fresh linear layer, lr cosine-annealed per step from ``cfg.lr`` to 0."""
    torch.manual_seed(cfg.seed)
    head = torch.nn.Linear(dim, n_classes).to(device)
    opt = torch.optim.SGD(head.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    g = torch.Generator().manual_seed(cfg.seed)
    n = len(train)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    step = 0
    for epoch in range(cfg.epochs):
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, cfg.batch_size):
            idx = perm[s : s + cfg.batch_size]
            x = train.images[idx]  # uint8 (B, C, H, W)
            if cfg.augment:
                x = crop_flip(x, g, _pad(train))
            h = _features(model, x.to(device), normalize)  # (B, F)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
            loss = torch.nn.functional.cross_entropy(head(h), y[idx.to(device)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        if progress is not None:
            progress(epoch + 1, cfg.epochs, "linear eval: epochs")
    return head


def _checkpoint_normalizer(meta: dict, train: "ImageData") -> Callable[[torch.Tensor], torch.Tensor]:
    """The normalisation the encoder was trained with (recorded in its checkpoint), else the dataset's."""
    mean, std = meta.get("mean"), meta.get("std")
    if not (mean and std and len(mean) == train.channels):
        return train.normalize
    m = torch.tensor([float(v) for v in mean]).view(1, -1, 1, 1)
    s = torch.tensor([float(v) for v in std]).view(1, -1, 1, 1)
    return lambda x: (x.float() / 255.0 - m.to(x.device)) / s.to(x.device)  # (B, C, H, W)


def probe_checkpoint(
    checkpoint: str | os.PathLike, dataset: str, *, root: str | None = None, protocol: str = "paper",
    config: LinearEvalConfig | None = None, device: str = "auto", out: str | os.PathLike | None = None,
    force: bool = False, progress: Progress | None = None,
) -> tuple[LinearEvalResult, "Path"]:
    """Linear evaluation of a checkpoint's encoder on ``dataset`` (train -> test), written as JSON.

    The JSON goes to ``out``, default ``linear-eval-<protocol>-<dataset>.json`` beside the checkpoint,
    written under a temporary name and renamed when complete.

    Returns:
        ``(result, path of the JSON)``.
    """
    import json
    from pathlib import Path  # noqa: F811  (also the annotation's)

    from nacscope._files import atomic_write, check_output, dataset_path, file_sha256
    from nacscope.data import load_dataset
    from nacscope.nets import load_checkpoint
    from nacscope.nets.checkpoint import resolve_checkpoint_path

    ckpt = resolve_checkpoint_path(checkpoint)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in dataset)
    out = Path(out) if out is not None else ckpt.parent / f"linear-eval-{protocol}-{safe}.json"
    check_output(out, force=force, inputs=[ckpt, root], sealed=[dataset_path(dataset)])
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model, meta = load_checkpoint(ckpt)
    train, test = load_dataset(dataset, "train", root=root), load_dataset(dataset, "test", root=root)
    normalize = _checkpoint_normalizer(meta, train)
    result = linear_eval(model, train, test, protocol=protocol, config=config, normalize=normalize, device=device,
                         progress=progress)
    record = {**result.to_json(), "checkpoint": str(ckpt), "checkpoint_sha256": file_sha256(ckpt),
              "dataset": dataset, "device": str(device)}
    with atomic_write(out) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    return result, out
