"""The training configuration: :class:`TrainConfig`, the paper presets, validation, and planning a run."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nacscope.choices import MAX_BITS, MAX_SEED, MAX_THREADS
from nacscope.errors import NacscopeError, OptionError, require
from nacscope.train_options import (
    FORWARDS, MOCO_KAPPA, OBJECTIVES, OPTIMIZERS, PRESETS, RESUME_OVERRIDABLE,
)


class TrainingDiverged(NacscopeError):
    """The loss became NaN or infinite."""


@dataclass
class TrainConfig:
    """Everything a training run depends on (saved in every checkpoint).

    Attributes mirror the ``nacscope train`` options; ``augment="auto"`` picks ``cifar`` for colour and
    ``gray-small`` for one-channel images; ``bf16``/``channels_last`` ``None`` mean "on when on CUDA".
    """

    dataset: str = "digits"
    root: str | None = None
    download: bool = False
    arch: str = "mlp"
    objective: str = "nac"
    bits: int = 32
    p: float = 0.1
    temperature: float = 0.5
    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 1e-6
    momentum: float = 0.9
    warmup_epochs: float = 2.0
    exclude_bias_norm: bool = True
    forward: str = "joint"
    sync_bn: bool = False
    augment: str = "auto"
    hidden: list[int] = field(default_factory=lambda: [512, 512])
    head_dim: int | None = None
    seed: int = 0
    device: str = "auto"
    bf16: bool | None = None
    channels_last: bool | None = None
    compile: bool = False
    eval_every: int = 0
    ckpt_every: int = 0
    log_every: int = 10
    stop_after_epochs: int | None = None
    threads: int | None = None
    preset: str | None = None
    moco_queue: int = 4096
    moco_momentum: float = 0.99
    moco_l2: float = 0.0
    moco_kappa: str = "divide"
    crop: int = 224
    workers: int = 4

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def plan_run(out: str | Path | None, resume: str | Path | None, force: bool, preset: str | None,
             options: dict[str, Any]) -> tuple[TrainConfig, Path, set[str]]:
    """What ``nacscope train`` was asked: ``(config, run folder, names of the options given explicitly)``.

    ``options`` holds the command-line values, None where not given. On ``--resume`` only the fields of
    :data:`RESUME_OVERRIDABLE` may be given; the run's own settings are used for everything else.
    """
    if resume is not None and out is not None and Path(out).resolve() != Path(resume).resolve():
        raise OptionError("--resume RUN continues in RUN; drop --out or give the same folder")
    run_dir = resume if resume is not None else out
    if run_dir is None:
        raise OptionError("give --out RUN_DIR (or --resume RUN_DIR)")
    if resume is not None and force:
        raise OptionError("--resume and --force contradict each other; pick one")
    explicit = {k for k, v in options.items() if v is not None}
    if resume is not None:
        fixed = sorted(explicit - set(RESUME_OVERRIDABLE))
        if fixed or preset:
            names = ", ".join("--" + k.replace("_", "-") for k in fixed) or "--preset"
            allowed = ", ".join("--" + k.replace("_", "-").replace("stop-after-epochs", "stop-after") for k in RESUME_OVERRIDABLE)
            raise OptionError(f"{names} cannot change when resuming (the run's own settings are used); only {allowed} can")
    return apply_preset(preset, options), Path(run_dir), explicit


def apply_preset(name: str | None, overrides: dict[str, Any]) -> TrainConfig:
    """A config from defaults, then the preset, then ``overrides`` (entries that are None are ignored)."""
    values: dict[str, Any] = {}
    if name:
        if name not in PRESETS:
            raise OptionError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        values.update(PRESETS[name])
        values["preset"] = name
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(values)


def validate(cfg: TrainConfig) -> None:
    """One-line OptionError for any bad value."""
    from nacscope.data.augment import RECIPES
    from nacscope.nets.encoders import ARCHS

    checks = [
        (cfg.arch in ARCHS or cfg.arch == "vgg16", "arch", f"must be one of {', '.join(ARCHS)}, got {cfg.arch!r}"),
        (cfg.objective in OBJECTIVES, "objective", f"must be one of {', '.join(OBJECTIVES)}, got {cfg.objective!r}"),
        (cfg.objective != "nac-moco" or cfg.moco_queue >= 2 * cfg.batch_size, "moco_queue",
         f"must be >= 2 x the batch size ({2 * cfg.batch_size}), got {cfg.moco_queue}"),
        (0.0 <= cfg.moco_momentum <= 1.0, "moco_momentum", f"must be in [0, 1], got {cfg.moco_momentum}"),
        (cfg.moco_l2 >= 0 and math.isfinite(cfg.moco_l2), "moco_l2", f"must be >= 0, got {cfg.moco_l2}"),
        (cfg.crop >= 8, "crop", f"must be >= 8, got {cfg.crop}"),
        (cfg.workers >= 0, "workers", f"must be >= 0, got {cfg.workers}"),
        (cfg.moco_kappa in MOCO_KAPPA, "moco_kappa", f"must be one of {', '.join(MOCO_KAPPA)}, got {cfg.moco_kappa!r}"),
        (cfg.optimizer in OPTIMIZERS, "optimizer", f"must be one of {', '.join(OPTIMIZERS)}, got {cfg.optimizer!r}"),
        (cfg.forward in FORWARDS, "forward", f"must be one of {', '.join(FORWARDS)}, got {cfg.forward!r}"),
        (cfg.momentum >= 0 and math.isfinite(cfg.momentum), "momentum", f"must be >= 0, got {cfg.momentum}"),
        (1 <= cfg.bits <= MAX_BITS, "bits", f"must be in [1, {MAX_BITS}], got {cfg.bits}"),
        (0 <= cfg.seed <= MAX_SEED, "seed", f"must be in [0, 2**31 - 1], got {cfg.seed}"),
        (cfg.head_dim is None or cfg.head_dim >= 1, "head_dim", f"must be >= 1, got {cfg.head_dim}"),
        (0.0 < cfg.p < 0.5, "p", f"must be in (0, 0.5), got {cfg.p}"),
        (cfg.temperature > 0, "temperature", f"must be > 0, got {cfg.temperature}"),
        (cfg.epochs >= 1, "epochs", f"must be >= 1, got {cfg.epochs}"),
        (cfg.batch_size >= 2, "batch_size", f"must be >= 2, got {cfg.batch_size}"),
        (cfg.lr > 0 and math.isfinite(cfg.lr), "lr", f"must be a positive number, got {cfg.lr}"),
        (cfg.weight_decay >= 0, "weight_decay", f"must be >= 0, got {cfg.weight_decay}"),
        (0 <= cfg.warmup_epochs < math.inf, "warmup_epochs", f"must be a finite number >= 0, got {cfg.warmup_epochs}"),
        (cfg.augment == "auto" or cfg.augment in RECIPES, "augment", f"must be auto or one of {', '.join(RECIPES)}, got {cfg.augment!r}"),
        (cfg.device in ("auto", "cpu") or cfg.device.startswith("cuda"), "device", f"must be auto, cpu or cuda[:N], got {cfg.device!r}"),
        (cfg.eval_every >= 0, "eval_every", f"must be >= 0, got {cfg.eval_every}"),
        (cfg.ckpt_every >= 0, "ckpt_every", f"must be >= 0, got {cfg.ckpt_every}"),
        (cfg.log_every >= 1, "log_every", f"must be >= 1, got {cfg.log_every}"),
        (cfg.stop_after_epochs is None or cfg.stop_after_epochs >= 1, "stop_after_epochs", f"must be >= 1, got {cfg.stop_after_epochs}"),
        (cfg.threads is None or 1 <= cfg.threads <= MAX_THREADS, "threads", f"must be in [1, {MAX_THREADS}], got {cfg.threads}"),
        (all(h >= 1 for h in cfg.hidden) and len(cfg.hidden) >= 1, "hidden", f"widths must be >= 1, got {cfg.hidden}"),
    ]
    for ok, option, message in checks:
        require(ok, option, message)
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise OptionError(f"--device {cfg.device}: CUDA is not available on this machine; use --device cpu")
