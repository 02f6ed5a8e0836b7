"""The training loop, top to bottom: data and model, resume, DDP, epochs of steps, checkpoints, metrics.

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
import json
import math
import os
import signal
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from nacscope._files import atomic_write, check_folder_writable, dataset_path, refuse_inputs
from nacscope.errors import CheckpointError, NacscopeError, OptionError
from nacscope.optim import make_optimizer
from nacscope.train_options import RESUME_OVERRIDABLE
from nacscope.distributed import DistInfo, pick_device
from nacscope.training.config import TrainConfig, TrainingDiverged, validate
from nacscope.training.evaluate import quick_eval
from nacscope.training.step import lr_at, train_step


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


def _rng_state(g_aug: torch.Generator, g_shuffle_epoch_start: torch.Tensor, dist_info: DistInfo) -> dict:
    states = [g_aug.get_state()]
    if dist_info.world > 1:
        import torch.distributed as dist

        gathered: list = [None] * dist_info.world
        dist.all_gather_object(gathered, g_aug.get_state().cpu())
        states = gathered
    return {"aug": states, "shuffle_epoch_start": g_shuffle_epoch_start, "torch": torch.get_rng_state()}


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
            raise OptionError(f"{cfg.epochs} is fewer than the {done} epochs {run_dir} has already done", option="epochs")
        if cfg.epochs == done and not mid:
            return TrainResult(run_dir, done, ckpt_state["step"], None, 0.0, {}, already_finished=True)
    # the run folder must not be, or hold, the data it trains on (nor lie inside an image folder read as data)
    refuse_inputs(run_dir, [cfg.root], sealed=[dataset_path(cfg.dataset)])
    if not resume and (run_dir / "last.pt").exists() and not force:
        raise OptionError(f"{run_dir} already holds a run; use --resume {run_dir} to continue it or --force to start over")
    if not resume and os.path.lexists(run_dir) and not run_dir.is_dir():
        raise OptionError(f"--out {run_dir} exists and is not a folder")
    check_folder_writable(run_dir)
    validate(cfg)

    dist_info = DistInfo(cfg.device)
    threads_before = torch.get_num_threads()
    if pick_device(cfg.device, dist_info).type == "cpu":
        # Small encoders' ops are too small to split: 1 thread ran 5 digits epochs in 16 s, 2 in 40 s (2 cores).
        torch.set_num_threads(cfg.threads or (1 if cfg.arch in ("mlp", "convnet") else threads_before))
    try:
        return _train(cfg, run_dir, ckpt_state, dist_info, progress, on_log, console)
    finally:
        torch.set_num_threads(threads_before)
        dist_info.close()


def _train(cfg: TrainConfig, run_dir: Path, ckpt_state: dict | None, dist_info: DistInfo, progress: bool,
           on_log: Callable[[dict], None] | None, console) -> TrainResult:
    from nacscope.data import Augment, load_dataset
    from nacscope.data.augment import RECIPES
    from nacscope.training.batches import ResidentViews, StreamViews, is_streaming
    from nacscope.nets import build_model, model_config, save_checkpoint
    device = pick_device(cfg.device, dist_info)
    on_cuda = device.type == "cuda"
    bf16 = on_cuda if cfg.bf16 is None else cfg.bf16
    channels_last = on_cuda if cfg.channels_last is None else cfg.channels_last

    if cfg.download and dist_info.main:
        load_dataset(cfg.dataset, "train", root=cfg.root, download=True)
    dist_info.barrier()  # the other ranks read what rank 0 downloaded
    world, test_data = dist_info.world, None
    if is_streaming(cfg.dataset):  # file list only; images decoded in DataLoader workers
        source = StreamViews(cfg, dist_info.rank, world, device)
        train_data = source.meta
    else:
        train_data = load_dataset(cfg.dataset, "train", root=cfg.root)
        with contextlib.suppress(NacscopeError):
            test_data = load_dataset(cfg.dataset, "test", root=cfg.root)
    n = train_data.n if is_streaming(cfg.dataset) else len(train_data)
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
    if device.type == "cpu" and cfg.arch not in ("mlp", "convnet"):
        warnings.warn(f"{cfg.arch} on the CPU is slow (minutes per digits epoch, hours per CIFAR epoch); use a "
                      "GPU (--device cuda) or --arch mlp / convnet", stacklevel=2)
    model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cfg.sync_bn and world > 1:  # BatchNorm over the global batch (the same keys: checkpoints load anywhere)
        from nacscope.nets.global_bn import convert_sync_batchnorm

        model = convert_sync_batchnorm(model, device)
    optimizer = make_optimizer(model, cfg, device)
    moco = None
    if cfg.objective == "nac-moco":
        from nacscope.training.moco_step import MocoState

        moco = MocoState(model, cfg.moco_queue, cfg.bits, device)

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
        if moco is not None:
            moco.load_state_dict(ckpt_state["extra"]["moco"])

    ddp_model = model
    if world > 1:
        # SimCLR leaves the prediction head out of the loss: DDP must know, or it never reduces that bucket
        ddp_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if on_cuda else None,
                                                              find_unused_parameters=cfg.objective == "simclr")
    step_model = torch.compile(ddp_model) if cfg.compile else ddp_model
    if not is_streaming(cfg.dataset):
        source = ResidentViews(train_data.images, augment, device)  # uint8 (N, C, H, W), resident

    main = dist_info.main
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(run_dir / "config.json") as tmp:
            tmp.write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
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
                                rng=rng, epoch=epoch, step=step, data=data_meta,
                                extra={"moco": moco.state_dict()} if moco is not None else None)
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
            batches = source.epoch(epoch, perm, start_batch, steps_per_epoch, cfg.batch_size, dist_info.rank,
                                   local_b, g_aug)
            for b, views in zip(range(start_batch, steps_per_epoch), batches):  # views (2b, C, H, W)
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, cfg, steps_per_epoch)
                if channels_last:
                    views = views.contiguous(memory_format=torch.channels_last)
                loss = train_step(step_model, optimizer, views[:local_b], views[local_b:], cfg, gather=world > 1,
                                  generator=g_aug, bf16=bf16, moco=moco)
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
