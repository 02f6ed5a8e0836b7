"""NAC / SimCLR training: a configuration dataclass, presets, and one straight-line loop.

The loop keeps the whole dataset (uint8) on the training device, draws per-sample augmentations there
(:class:`nacscope.data.Augment`), runs the step under bf16 autocast / channels_last on CUDA, and syncs
with the host only at log points. Checkpoints (``RUN_DIR/last.pt``, plus ``epoch_NNNN.pt`` every
``ckpt_every`` epochs) hold everything needed to continue bit-for-bit: model, optimiser, schedule
position, the random generators (including the state at the start of the current epoch, so that a run
stopped mid-epoch resumes on the same permutation), epoch and step.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in DDP, each rank takes its slice of every
global batch, negatives are gathered from all ranks with gradients, and rank 0 alone logs and writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from nacscope.errors import CheckpointError, NacscopeError, OptionError
from nacscope.optim import make_optimizer, param_groups  # noqa: F401  (re-exported)
from nacscope.train_options import (  # noqa: F401  (re-exported)
    BN_MODES, FORWARDS, OBJECTIVES, OPTIMIZERS, PRESETS, RESUME_OVERRIDABLE,
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
        (cfg.arch in ARCHS or cfg.arch == "vgg16", f"--arch must be one of {', '.join(ARCHS)}, got {cfg.arch!r}"),
        (cfg.objective in OBJECTIVES, f"--objective must be nac or simclr, got {cfg.objective!r}"),
        (cfg.optimizer in OPTIMIZERS, f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {cfg.optimizer!r}"),
        (cfg.forward in FORWARDS, f"--forward must be one of {', '.join(FORWARDS)}, got {cfg.forward!r}"),
        (cfg.momentum >= 0 and math.isfinite(cfg.momentum), f"--momentum must be >= 0, got {cfg.momentum}"),
        (cfg.bits >= 1, f"--bits must be >= 1, got {cfg.bits}"),
        (0.0 < cfg.p < 0.5, f"--p (flip probability) must be in (0, 0.5), got {cfg.p}"),
        (cfg.temperature > 0, f"--temperature must be > 0, got {cfg.temperature}"),
        (cfg.epochs >= 1, f"--epochs must be >= 1, got {cfg.epochs}"),
        (cfg.batch_size >= 2, f"--batch-size must be >= 2, got {cfg.batch_size}"),
        (cfg.lr > 0 and math.isfinite(cfg.lr), f"--lr must be a positive number, got {cfg.lr}"),
        (cfg.weight_decay >= 0, f"--weight-decay must be >= 0, got {cfg.weight_decay}"),
        (0 <= cfg.warmup_epochs < math.inf, f"--warmup-epochs must be a finite number >= 0, got {cfg.warmup_epochs}"),
        (cfg.augment == "auto" or cfg.augment in RECIPES, f"--augment must be auto or one of {', '.join(RECIPES)}, got {cfg.augment!r}"),
        (cfg.device in ("auto", "cpu") or cfg.device.startswith("cuda"), f"--device must be auto, cpu or cuda[:N], got {cfg.device!r}"),
        (cfg.eval_every >= 0 and cfg.ckpt_every >= 0 and cfg.log_every >= 1, "--eval-every/--ckpt-every must be >= 0, --log-every >= 1"),
        (cfg.stop_after_epochs is None or cfg.stop_after_epochs >= 1, "--stop-after must be >= 1"),
        (cfg.threads is None or cfg.threads >= 1, f"--threads must be >= 1, got {cfg.threads}"),
        (all(h >= 1 for h in cfg.hidden) and len(cfg.hidden) >= 1, f"--hidden widths must be >= 1, got {cfg.hidden}"),
    ]
    for ok, message in checks:
        if not ok:
            raise OptionError(message)
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise OptionError(f"--device {cfg.device}: CUDA is not available on this machine; use --device cpu")


def lr_at(step: int, cfg: TrainConfig, steps_per_epoch: int) -> float:
    """Linear warm-up from lr 0 at step 0 over ``warmup_epochs`` (as the authors'), then cosine decay to 0."""
    total = cfg.epochs * steps_per_epoch
    warm = int(round(cfg.warmup_epochs * steps_per_epoch))
    if step < warm:
        return cfg.lr * step / warm
    progress = (step - warm) / max(1, total - warm)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _fp32(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


def forward_views(model: torch.nn.Module, x_1: torch.Tensor, x_2: torch.Tensor, mode: str) -> tuple[torch.Tensor, ...]:
    """``(a_1, a_2, logits_1, logits_2)``, each (B, D), of the two views ``x_1``, ``x_2`` (B, C, H, W).

    ``per-view``: two model calls (BatchNorm normalises each view's batch on its own, the authors' step);
    ``joint``: one call on the 2B views concatenated (BatchNorm over both views mixed).
    """
    if mode == "joint":
        b = x_1.shape[0]
        _, a, logits = model(torch.cat([x_1, x_2]))  # (2B, D) each
        return a[:b], a[b:], logits[:b], logits[b:]
    _, a_1, logits_1 = model(x_1)
    _, a_2, logits_2 = model(x_2)
    return a_1, a_2, logits_1, logits_2


def train_step(model, optimizer, x_1: torch.Tensor, x_2: torch.Tensor, cfg: TrainConfig, *, gather: bool = False,
               generator: torch.Generator | None = None, bf16: bool = False) -> torch.Tensor:
    """One optimiser step on a batch of view pairs (B, C, H, W) each; returns the detached loss.

    The caller sets the learning rate. The NAC flips are drawn from ``generator``.
    """
    from nacscope.objectives import nac_loss, simclr_loss

    with torch.autocast(x_1.device.type, dtype=torch.bfloat16, enabled=bf16):
        a_1, a_2, logits_1, logits_2 = (_fp32(t) for t in forward_views(model, x_1, x_2, cfg.forward))
    if cfg.objective == "nac":
        loss = nac_loss(a_1, a_2, logits_1, logits_2, cfg.p, gather=gather, generator=generator)
    else:
        loss = simclr_loss(a_1, a_2, cfg.temperature, gather=gather)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


# --------------------------------------------------------------------------------------------- evaluation


@torch.no_grad()
def embed(model: torch.nn.Module, data, device: torch.device, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Features h (N, F) float32 and codes (N, D) bool of ``data`` (normalised, no augmentation)."""
    was_training = model.training
    model.eval()
    feats, codes = [], []
    for i in range(0, len(data), batch_size):
        x = data.normalize(data.images[i : i + batch_size].to(device))
        out = model(x)
        feats.append(out.h.float().cpu())
        codes.append((out.a > 0).cpu())
    model.train(was_training)
    return torch.cat(feats).numpy(), torch.cat(codes).numpy()


def _code_retrieval(q_codes: np.ndarray, g_codes: np.ndarray, q_labels: np.ndarray, g_labels: np.ndarray) -> dict:
    """Hamming-ranking mAP over the whole gallery (tie-aware) and Hamming k-NN accuracy of the codes."""
    from nacscope.analysis.retrieval import knn_accuracy, mean_average_precision

    q = np.packbits(q_codes, axis=1, bitorder="big")
    g = np.packbits(g_codes, axis=1, bitorder="big")
    return {
        "map": mean_average_precision(q, g, q_labels, g_labels, tie_aware=True),
        "code_knn_acc": knn_accuracy(q, g, q_labels, g_labels, k=20),
    }


def _knn_accuracy(q_feats: np.ndarray, g_feats: np.ndarray, q_labels: np.ndarray, g_labels: np.ndarray, k: int = 20) -> float:
    """Majority vote of the k nearest gallery features by cosine similarity (scikit-learn)."""
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=min(k, len(g_feats)), metric="cosine", algorithm="brute")
    clf.fit(g_feats, g_labels)
    return float((clf.predict(q_feats) == q_labels).mean())


def quick_eval(model, gallery, queries, device, max_gallery: int = 10000, max_queries: int = 2000) -> dict:
    """Quick evaluation of ``queries`` against ``gallery``.

    Keys: ``knn_acc`` (features, cosine, k=20), ``map`` (codes, Hamming ranking of the whole gallery,
    tie-aware), ``code_knn_acc`` (codes, Hamming, k=20), ``distinct_codes`` (among the queries).

    Large sets are capped to the first ``max_gallery`` / ``max_queries`` samples of a fixed permutation.
    """
    if gallery.labels is None or queries.labels is None:
        return {}
    perm_g = torch.randperm(len(gallery), generator=torch.Generator().manual_seed(0))[:max_gallery]
    perm_q = torch.randperm(len(queries), generator=torch.Generator().manual_seed(1))[:max_queries]
    gallery, queries = gallery.subset(perm_g), queries.subset(perm_q)
    g_feats, g_codes = embed(model, gallery, device)
    q_feats, q_codes = embed(model, queries, device)
    g_lab, q_lab = gallery.labels.numpy(), queries.labels.numpy()
    out = {"knn_acc": _knn_accuracy(q_feats, g_feats, q_lab, g_lab)}
    out.update(_code_retrieval(q_codes, g_codes, q_lab, g_lab))
    out["distinct_codes"] = int(len(np.unique(np.packbits(q_codes, axis=1), axis=0)))
    return out


# ------------------------------------------------------------------------------------------------ helpers


class _Dist:
    """Rank / world of this process; initialises the process group under torchrun."""

    def __init__(self, device_pref: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.owns_group = False
        import torch.distributed as dist

        if self.world > 1 and not dist.is_initialized():
            use_cuda = torch.cuda.is_available() and device_pref != "cpu"
            if use_cuda:
                torch.cuda.set_device(self.local_rank)
            dist.init_process_group("nccl" if use_cuda else "gloo")
            self.owns_group = True
        if dist.is_available() and dist.is_initialized():
            self.world, self.rank = dist.get_world_size(), dist.get_rank()

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()


def pick_device(pref: str, dist_info: _Dist) -> torch.device:
    if pref == "cpu" or (pref == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if pref == "auto":
        return torch.device("cuda", dist_info.local_rank if dist_info.world > 1 else torch.cuda.current_device())
    return torch.device(pref)


class _Interrupt:
    """First Ctrl-C: finish the step, checkpoint, stop. Second: stop at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self):
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class _Metrics:
    """metrics.jsonl in the run folder (and TensorBoard when installed)."""

    def __init__(self, run_dir: Path, enabled: bool, append: bool, upto_step: int = 0):
        self.enabled = enabled
        self.file = None
        self.tb = None
        if enabled:
            path = run_dir / "metrics.jsonl"
            if append and path.exists():  # drop what a killed run wrote after its checkpoint: it is redone now
                _truncate_metrics(path, upto_step)
            self.file = open(path, "a" if append else "w")
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tb"))
            except Exception:  # tensorboard not installed
                self.tb = None

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("step", "epoch"):
                    self.tb.add_scalar(k, v, record.get("step", 0))

    def close(self) -> None:
        if self.file:
            self.file.close()
        if self.tb is not None:
            self.tb.close()


def _truncate_metrics(path: Path, upto_step: int) -> None:
    """Keep the records of ``metrics.jsonl`` with ``step <= upto_step`` (and drop a torn last line), atomically."""
    from nacscope._files import atomic_write

    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("step", 0) <= upto_step:
            kept.append(line)
    with atomic_write(path) as tmp:
        Path(tmp).write_text("".join(line + "\n" for line in kept))


@dataclass
class TrainResult:
    """What a run produced."""

    run_dir: Path
    epochs_done: int
    steps: int
    final_loss: float | None
    images_per_s: float
    eval: dict
    interrupted: bool = False
    stopped_early: bool = False
    mid_epoch: bool = False  # stopped inside epoch ``epochs_done + 1``
    already_finished: bool = False  # --resume of a run that had nothing left to do; nothing was changed


def _rng_state(g_aug: torch.Generator, g_shuffle_epoch_start: torch.Tensor, dist_info: _Dist) -> dict:
    states = [g_aug.get_state()]
    if dist_info.world > 1:
        import torch.distributed as dist

        gathered: list = [None] * dist_info.world
        dist.all_gather_object(gathered, g_aug.get_state().cpu())
        states = gathered
    return {"aug": states, "shuffle_epoch_start": g_shuffle_epoch_start, "torch": torch.get_rng_state()}


# -------------------------------------------------------------------------------------------------- train


def train(
    cfg: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    explicit: set[str] | None = None,
    progress: bool = True,
    on_log: Callable[[dict], None] | None = None,
    console=None,
) -> TrainResult:
    """Train a NAC or SimCLR encoder; write checkpoints and metrics under ``out``.

    Args:
        cfg: the configuration. With ``resume`` the run's own saved config is used, except the fields of
            :data:`RESUME_OVERRIDABLE` named in ``explicit`` (all of them when ``explicit`` is None), taken from ``cfg``.
        out: run folder.
        resume: continue the run in ``out`` from ``out/last.pt``.
        force: start over in a folder that already holds a run.
        explicit: the config fields the user gave explicitly (the CLI's options); see ``cfg``.
        progress: show a rich progress bar (rank 0 only).
        on_log: called with every metrics record.
        console: a rich Console for the progress bar.
    """
    from nacscope.nets.checkpoint import read_checkpoint

    run_dir = Path(out)
    ckpt_state = None
    if resume:
        if not (run_dir / "last.pt").is_file():
            raise CheckpointError(f"nothing to resume: {run_dir / 'last.pt'} does not exist")
        if not (run_dir / "config.json").is_file():
            raise OptionError(f"cannot resume {run_dir}: config.json is missing (not a complete nacscope run folder)")
        ckpt_state = read_checkpoint(run_dir / "last.pt")
        if ckpt_state.get("format") != "nacscope-checkpoint":
            raise CheckpointError(f"{run_dir / 'last.pt'} is not a nacscope training checkpoint")
        saved = TrainConfig.from_dict(ckpt_state["config"])
        for name in RESUME_OVERRIDABLE if explicit is None else set(RESUME_OVERRIDABLE) & set(explicit):
            setattr(saved, name, getattr(cfg, name))
        if explicit is not None and "stop_after_epochs" not in explicit:
            saved.stop_after_epochs = None  # a limit of one call, not a setting of the run
        cfg = saved
        done, mid = ckpt_state["epoch"], ckpt_state["scheduler"].get("batch_in_epoch", 0) > 0
        if cfg.epochs < done + mid:
            raise OptionError(f"--epochs {cfg.epochs} is fewer than the {done} epochs {run_dir} has already done")
        if cfg.epochs == done and not mid:
            return TrainResult(run_dir, done, ckpt_state["step"], None, 0.0, {}, already_finished=True)
    elif (run_dir / "last.pt").exists() and not force:
        raise OptionError(f"{run_dir} already holds a run; use --resume {run_dir} to continue it or --force to start over")
    elif run_dir.exists() and not run_dir.is_dir():
        raise OptionError(f"--out {run_dir} exists and is not a folder")
    validate(cfg)

    dist_info = _Dist(cfg.device)
    threads_before = torch.get_num_threads()
    if pick_device(cfg.device, dist_info).type == "cpu":
        # The small encoders' ops are too small to split across threads: on a busy 2-core machine one
        # thread ran 5 digits epochs in 16 s against 40 s with two (OpenMP threads spin while waiting).
        torch.set_num_threads(cfg.threads or (1 if cfg.arch in ("mlp", "convnet") else threads_before))
    try:
        return _train(cfg, run_dir, ckpt_state, dist_info, progress, on_log, console)
    finally:
        torch.set_num_threads(threads_before)
        dist_info.close()


def _train(cfg: TrainConfig, run_dir: Path, ckpt_state: dict | None, dist_info: _Dist, progress: bool,
           on_log: Callable[[dict], None] | None, console) -> TrainResult:
    from nacscope.data import Augment, load_dataset
    from nacscope.data.augment import RECIPES
    from nacscope.nets import build_model, model_config, save_checkpoint
    device = pick_device(cfg.device, dist_info)
    on_cuda = device.type == "cuda"
    bf16 = on_cuda if cfg.bf16 is None else cfg.bf16
    channels_last = on_cuda if cfg.channels_last is None else cfg.channels_last

    if cfg.download and dist_info.main:
        load_dataset(cfg.dataset, "train", root=cfg.root, download=True)
    dist_info.barrier()  # the other ranks read what rank 0 downloaded
    train_data = load_dataset(cfg.dataset, "train", root=cfg.root)
    try:
        test_data = load_dataset(cfg.dataset, "test", root=cfg.root)
    except NacscopeError:
        test_data = None
    n, world = len(train_data), dist_info.world
    if cfg.batch_size % world:
        raise OptionError(f"--batch-size {cfg.batch_size} must be divisible by the number of processes ({world})")
    if cfg.batch_size > n:
        raise OptionError(f"--batch-size {cfg.batch_size} is larger than the training set ({n} images)")
    local_b = cfg.batch_size // world
    steps_per_epoch = n // cfg.batch_size  # drop_last
    recipe = cfg.augment if cfg.augment != "auto" else ("cifar" if train_data.channels == 3 else "gray-small")
    augment = Augment(RECIPES[recipe], train_data.mean, train_data.std, compile=cfg.compile)

    torch.manual_seed(cfg.seed)
    encoder_kw = {"hidden": tuple(cfg.hidden)} if cfg.arch == "mlp" else {}
    try:
        model = build_model(cfg.arch, cfg.bits, in_channels=train_data.channels, image_size=train_data.image_size,
                            head_dim=cfg.head_dim, **encoder_kw)
        with torch.no_grad():  # shape check, in eval mode so that BatchNorm statistics stay untouched
            model.eval()(torch.zeros(2, train_data.channels, train_data.image_size, train_data.image_size))
        model.train()
    except (RuntimeError, ValueError) as exc:
        raise OptionError(f"--arch {cfg.arch} cannot take {train_data.image_size}x{train_data.image_size} images "
                          f"({str(exc).splitlines()[0][:100]}); use mlp or convnet for small images") from None
    mcfg = model_config(model, train_data.channels, train_data.image_size, encoder_kw)
    model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg, device)

    g_shuffle = torch.Generator().manual_seed(cfg.seed)
    g_aug = torch.Generator(device=device).manual_seed(cfg.seed * 1000003 + dist_info.rank)
    epoch, step, start_batch = 0, 0, 0
    if ckpt_state is not None:
        model.load_state_dict(ckpt_state["model"])
        optimizer.load_state_dict(ckpt_state["optimizer"])
        epoch, step = ckpt_state["epoch"], ckpt_state["step"]
        start_batch = ckpt_state["scheduler"].get("batch_in_epoch", 0)
        rng = ckpt_state["rng"]
        g_shuffle.set_state(rng["shuffle_epoch_start"])
        aug_states = rng["aug"]
        if len(aug_states) == world:
            g_aug.set_state(aug_states[dist_info.rank].to(g_aug.get_state().device))
        torch.set_rng_state(rng["torch"])

    ddp_model = model
    if world > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if on_cuda else None)
    step_model = torch.compile(ddp_model) if cfg.compile else ddp_model
    images = train_data.images.to(device)  # uint8 (N, C, H, W), resident

    main = dist_info.main
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    metrics = _Metrics(run_dir, main, append=ckpt_state is not None, upto_step=step)
    if ckpt_state is not None and main and on_log:
        on_log({"resumed": True, "epoch": epoch + 1, "step": step})  # epoch numbered as in metrics.jsonl
    data_meta = {"name": cfg.dataset, "mean": list(train_data.mean), "std": list(train_data.std), "recipe": recipe}

    def checkpoint(path_names: list[str], epoch_start_shuffle: torch.Tensor, batch_in_epoch: int) -> None:
        rng = _rng_state(g_aug, epoch_start_shuffle, dist_info)
        if main:
            for name in path_names:
                save_checkpoint(run_dir / name, model, model_cfg=mcfg, config=cfg.to_dict(), optimizer=optimizer,
                                scheduler={"kind": "warmup-cosine", "step": step, "batch_in_epoch": batch_in_epoch,
                                           "steps_per_epoch": steps_per_epoch},
                                rng=rng, epoch=epoch, step=step, data=data_meta)
        dist_info.barrier()

    if ckpt_state is None:
        checkpoint(["last.pt"], g_shuffle.get_state(), 0)  # a good checkpoint exists from the start

    last_loss, img_per_s, eval_result = None, 0.0, {}
    interrupted = stopped = mid_epoch = False
    epochs_this_call = 0
    bar = None
    if progress and main:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(bar_width=16), MofNCompleteColumn(),
                       TextColumn("loss {task.fields[loss]}  lr {task.fields[lr]}  {task.fields[rate]} img/s"),
                       TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False)
    total_steps = cfg.epochs * steps_per_epoch
    model.train()
    with _Interrupt() as stop_flag, (bar or contextlib.nullcontext()):
        task = bar.add_task(f"{cfg.objective} {cfg.arch}", total=total_steps, completed=step,
                            loss="-", lr="-", rate="-") if bar else None
        t_log, steps_at_log = time.perf_counter(), step
        loss_acc = torch.zeros((), device=device)
        while epoch < cfg.epochs and not interrupted:
            epoch_start_shuffle = g_shuffle.get_state()
            perm = torch.randperm(n, generator=g_shuffle).to(device)  # one copy per epoch, none per step
            for b in range(start_batch, steps_per_epoch):
                batch = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                local = batch[dist_info.rank * local_b : (dist_info.rank + 1) * local_b]
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, cfg, steps_per_epoch)
                views = augment(torch.cat([images[local], images[local]]), g_aug)  # (2b, C, H, W)
                if channels_last:
                    views = views.contiguous(memory_format=torch.channels_last)
                loss = train_step(step_model, optimizer, views[:local_b], views[local_b:], cfg, gather=world > 1,
                                  generator=g_aug, bf16=bf16)
                step += 1
                loss_acc += loss.detach()
                at_log = step % cfg.log_every == 0 or b == steps_per_epoch - 1
                if at_log or not on_cuda:
                    value = float(loss_acc) / max(1, step - steps_at_log) if at_log else float(loss.detach())
                    if not math.isfinite(value):
                        metrics.close()
                        raise TrainingDiverged(
                            f"loss became {value} at epoch {epoch + 1}, step {step}; stopped. The last good checkpoint "
                            f"{run_dir / 'last.pt'} is kept. Lower --lr or raise --warmup-epochs")
                if at_log:
                    now = time.perf_counter()
                    img_per_s = (step - steps_at_log) * cfg.batch_size / max(now - t_log, 1e-9)
                    last_loss = value
                    record = {"epoch": epoch + 1, "step": step, "loss": value, "lr": lr_at(step - 1, cfg, steps_per_epoch),
                              "images_per_s": round(img_per_s, 1), "time": time.time()}
                    metrics.write(record)
                    if on_log:
                        on_log(record)
                    if bar:
                        bar.update(task, completed=step, loss=f"{value:.4f}", lr=f"{record['lr']:.2e}", rate=f"{img_per_s:,.0f}")
                    t_log, steps_at_log = now, step
                    loss_acc.zero_()
                if stop_flag.requested:
                    interrupted = True
                    break
            if interrupted and b + 1 < steps_per_epoch:  # stopped mid-epoch: resume at the next batch
                checkpoint(["last.pt"], epoch_start_shuffle, b + 1)
                mid_epoch = True
                break
            start_batch = 0
            epoch += 1
            epochs_this_call += 1
            final = epoch >= cfg.epochs
            if main and test_data is not None and (final or (cfg.eval_every and epoch % cfg.eval_every == 0)):
                eval_result = quick_eval(model, train_data, test_data, device)
                record = {"epoch": epoch, "step": step, "eval": eval_result} | ({"final": True} if final else {})
                metrics.write(record)  # before the checkpoint: a resume from it never repeats or loses this record
                if on_log:
                    on_log(record)
            # the kept checkpoint first: a kill before last.pt is rewritten redoes this epoch and writes it again
            names = ([f"epoch_{epoch:04d}.pt"] if cfg.ckpt_every and epoch % cfg.ckpt_every == 0 else []) + ["last.pt"]
            checkpoint(names, g_shuffle.get_state(), 0)
            if interrupted:
                break
            if cfg.stop_after_epochs and epochs_this_call >= cfg.stop_after_epochs and epoch < cfg.epochs:
                stopped = True
                break
    metrics.close()
    return TrainResult(run_dir, epoch, step, last_loss, img_per_s, eval_result, interrupted, stopped, mid_epoch)


def baseline_eval(cfg: TrainConfig, seed: int | None = None) -> dict:
    """The same quick evaluation for a randomly initialised model of the same architecture."""
    from nacscope.data import load_dataset
    from nacscope.nets import random_init

    train_data = load_dataset(cfg.dataset, "train", root=cfg.root)
    test_data = load_dataset(cfg.dataset, "test", root=cfg.root)
    kw = {"hidden": tuple(cfg.hidden)} if cfg.arch == "mlp" else {}
    model = random_init(cfg.arch, cfg.bits, cfg.seed if seed is None else seed, train_data.channels,
                        train_data.image_size, head_dim=cfg.head_dim, **kw)
    device = torch.device("cuda" if torch.cuda.is_available() and cfg.device != "cpu" else "cpu")
    return quick_eval(model.to(device), train_data, test_data, device)
