"""``nacscope train``: train a NAC or SimCLR encoder (single process, or under torchrun with DDP)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from nacscope.cli._common import console, one_line_errors
from nacscope.cli.app import app
from nacscope.errors import OptionError
from nacscope.train_options import ARCHS, FORWARDS, OBJECTIVES, OPTIMIZERS, PRESETS


def _hidden(value: Optional[str]) -> Optional[list[int]]:
    if value is None:
        return None
    try:
        widths = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise OptionError(f"--hidden must be comma-separated integers such as 512,512, got {value!r}") from None
    if not widths:
        raise OptionError("--hidden needs at least one width")
    return widths




def _one_of(values, help: str) -> str:
    """Help text that lists the library's choices (checked with one-line errors by the library)."""
    return f"{' | '.join(values)}. {help}"


def _on_log(record: dict) -> None:
    if record.get("resumed"):
        console.print(f"resuming from epoch {record['epoch']}, step {record['step']}")


def _render(result, run_dir: Path, baseline: bool) -> None:
    if result.already_finished:
        console.print(f"{run_dir} has finished all {result.epochs_done} epochs ({result.steps} steps); nothing to do "
                      "(give --epochs larger to train further)")
        return
    if result.interrupted:
        where = f"during epoch {result.epochs_done + 1}" if result.mid_epoch else f"after epoch {result.epochs_done}"
        console.print(f"interrupted {where}, step {result.steps}: checkpoint written to [bold]{run_dir / 'last.pt'}[/]; "
                      f"continue with --resume {run_dir}")
        raise typer.Exit(130)
    if result.stopped_early:
        console.print(f"stopped after epoch {result.epochs_done} as asked; continue with --resume {run_dir}")
        return
    loss = f"{result.final_loss:.4f}" if result.final_loss is not None else "-"
    console.print(f"trained {result.epochs_done} epochs ({result.steps} steps), last loss {loss}, "
                  f"{result.images_per_s:,.0f} img/s; checkpoint [bold]{run_dir / 'last.pt'}[/]")
    if result.eval:
        import json

        from rich.table import Table

        from nacscope.training import TrainConfig, baseline_eval

        table = Table(title="held-out evaluation (test queries vs train gallery)")
        for col in ("model", "k-NN acc (features)", "mAP (codes, Hamming)", "k-NN acc (codes)", "distinct codes"):
            table.add_column(col, justify="left" if col == "model" else "right")
        rows = [("trained", result.eval)]
        if baseline:
            saved = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
            rows.append(("random init", baseline_eval(saved)))
        for name, ev in rows:
            cells = ["-" if ev[k] is None else f"{ev[k]:.4f}" for k in ("knn_acc", "map", "code_knn_acc")]
            table.add_row(name, *cells, str(ev["distinct_codes"]))
        console.print(table)


@app.command("train")
@one_line_errors
def train_cmd(
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder (last.pt, metrics.jsonl, config.json).")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="digits, mnist5k, cifar10, cifar100, stl10, cifar10-hash, folder:PATH, or a .npz/.h5 file. [default: digits]")] = None,
    arch: Annotated[Optional[str], typer.Option("--arch", help=_one_of(ARCHS, "Encoder. [default: mlp]"))] = None,
    objective: Annotated[Optional[str], typer.Option("--objective", help=_one_of(OBJECTIVES, "Objective (nac-moco is experimental: it collapses on digits). [default: nac]"))] = None,
    bits: Annotated[Optional[int], typer.Option(help="Code length D. [default: 32]")] = None,
    p: Annotated[Optional[float], typer.Option("--p", help="NAC channel flip probability, in (0, 0.5). [default: 0.1]")] = None,
    temperature: Annotated[Optional[float], typer.Option(help="SimCLR temperature. [default: 0.5]")] = None,
    crop: Annotated[Optional[int], typer.Option("--crop", help="Streaming sets (folder:PATH, imagenet): RandomResizedCrop size. [default: 224]")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Streaming sets: DataLoader workers decoding images. [default: 4]")] = None,
    moco_queue: Annotated[Optional[int], typer.Option("--moco-queue", help="nac-moco: K relaxed codes queued as negatives. [default: 4096]")] = None,
    moco_momentum: Annotated[Optional[float], typer.Option("--moco-momentum", help="nac-moco: key-encoder momentum m. [default: 0.99]")] = None,
    moco_l2: Annotated[Optional[float], typer.Option("--moco-l2", help="nac-moco: λ of the penalty λ‖z‖² on relaxed codes. [default: 0]")] = None,
    moco_kappa: Annotated[Optional[str], typer.Option("--moco-kappa", help="nac-moco: divide (the authors' MoCo code) or multiply the dot products by κ. [default: divide]")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Total epochs of the run. [default: 30]")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Global batch (images; two views each). [default: 128]")] = None,
    optimizer: Annotated[Optional[str], typer.Option("--optimizer", help=_one_of(OPTIMIZERS, "lars-paper: the authors' LARS (trust ratio and decay on every parameter; zero-norm parameters, e.g. zero-initialised biases, never move); lars: timm's, biases/norms excluded. [default: adamw; presets: lars-paper]"))] = None,
    forward: Annotated[Optional[str], typer.Option("--forward", help=_one_of(FORWARDS, "per-view: two encoder calls, BatchNorm per view (the authors' step); joint: one call on both views (faster, BatchNorm mixes views). [default: joint; presets: per-view]"))] = None,
    sync_bn: Annotated[Optional[bool], typer.Option("--sync-bn/--no-sync-bn", help="Under torchrun: BatchNorm over the global batch of all ranks (with --forward per-view: the statistics of the authors' single-process step). [default: off, BatchNorm per rank]")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (warm-up from 0, then cosine). [default: 0.002]")] = None,
    weight_decay: Annotated[Optional[float], typer.Option("--weight-decay", help="[default: 1e-06]")] = None,
    momentum: Annotated[Optional[float], typer.Option(help="LARS/SGD momentum. [default: 0.9]")] = None,
    warmup_epochs: Annotated[Optional[float], typer.Option("--warmup-epochs", help="Linear warm-up from lr 0, then cosine. [default: 2]")] = None,
    exclude_bias_norm: Annotated[Optional[bool], typer.Option("--exclude-bias-norm/--decay-bias-norm", help="lars/sgd/adamw: no weight decay (and no LARS adaptation) on biases and norm parameters. [default: exclude]")] = None,
    augment: Annotated[Optional[str], typer.Option(help="auto, cifar, gray-small or none. [default: auto]")] = None,
    hidden: Annotated[Optional[str], typer.Option(help="mlp widths, e.g. 512,512. [default: 512,512]")] = None,
    head_dim: Annotated[Optional[int], typer.Option("--head-dim", help="Code-head hidden width. [default: the feature dim]")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (model, shuffling, augmentation, flips). [default: 0]")] = None,
    root: Annotated[Optional[str], typer.Option(help="Folder with on-disk datasets (cifar/stl).")] = None,
    download: Annotated[Optional[bool], typer.Option("--download", help="Let torchvision download cifar/stl into --root.")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu, cuda, cuda:N. [default: auto]")] = None,
    bf16: Annotated[Optional[bool], typer.Option("--bf16/--fp32", help="bf16 autocast. [default: on with CUDA; presets: fp32, as the authors]")] = None,
    channels_last: Annotated[Optional[bool], typer.Option("--channels-last/--no-channels-last", help="[default: on with CUDA]")] = None,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads. [default: 1 for mlp/convnet, else torch's]")] = None,
    compile: Annotated[Optional[bool], typer.Option("--compile", help="torch.compile the model.")] = None,
    eval_every: Annotated[Optional[int], typer.Option("--eval-every", help="Quick k-NN / mAP evaluation every N epochs (0: at the end only). [default: 0]")] = None,
    ckpt_every: Annotated[Optional[int], typer.Option("--ckpt-every", help="Also keep epoch_NNNN.pt every N epochs. [default: 0]")] = None,
    log_every: Annotated[Optional[int], typer.Option("--log-every", help="Log (and sync) every N steps. [default: 10]")] = None,
    stop_after: Annotated[Optional[int], typer.Option("--stop-after", help="Stop after N epochs of this call (continue later with --resume).")] = None,
    preset: Annotated[Optional[str], typer.Option("--preset", help=_one_of(tuple(PRESETS), "The paper's settings and the authors' step (per-view forwards, lars-paper, fp32); options given override it. paper-imagenet (nac-moco, ResNet-50, --root IMAGENET): optimiser, lr, epochs, batch, K, m and λ are GUESSES from MoCo v2, not stated by the paper."))] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue the run in this folder with its own saved settings.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Start over in a folder that already holds a run.")] = False,
    baseline: Annotated[bool, typer.Option("--baseline/--no-baseline", help="Also evaluate a random-init encoder for comparison.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train a NAC (or SimCLR) encoder; checkpoints, metrics and a final k-NN / mAP evaluation."""

    from nacscope.training import plan_run, train

    options = dict(
        dataset=dataset, arch=arch, objective=objective, bits=bits, p=p, temperature=temperature, epochs=epochs,
        batch_size=batch_size, optimizer=optimizer, forward=forward, sync_bn=sync_bn, lr=lr, weight_decay=weight_decay, momentum=momentum,
        warmup_epochs=warmup_epochs, exclude_bias_norm=exclude_bias_norm, augment=augment, hidden=_hidden(hidden),
        head_dim=head_dim, seed=seed, root=root, download=download, device=device, bf16=bf16, channels_last=channels_last,
        threads=threads, compile=compile, eval_every=eval_every, ckpt_every=ckpt_every, log_every=log_every,
        stop_after_epochs=stop_after, moco_queue=moco_queue, moco_momentum=moco_momentum, moco_l2=moco_l2,
        moco_kappa=moco_kappa, crop=crop, workers=workers,
    )
    cfg, run_dir, explicit = plan_run(out, resume, force, preset, options)
    main = int(os.environ.get("RANK", "0")) == 0
    result = train(cfg, run_dir, resume=resume is not None, force=force, explicit=explicit, progress=not quiet,
                   console=console, on_log=_on_log if main else None)
    if main:
        _render(result, run_dir, baseline)
