"""``nacscope train``: train a NAC or SimCLR encoder (single process, or under torchrun with DDP)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from nacscope.cli._common import console, err_console, one_line_errors
from nacscope.cli.app import app
from nacscope.errors import OptionError


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


@app.command("train")
@one_line_errors
def train_cmd(
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder (last.pt, metrics.jsonl, config.json).")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="digits, mnist5k, cifar10, cifar100, stl10, cifar10-hash, folder:PATH, or a .npz/.h5 file.")] = None,
    arch: Annotated[Optional[str], typer.Option(help="mlp, convnet, resnet18, resnet50, vgg16_bn.")] = None,
    objective: Annotated[Optional[str], typer.Option(help="nac or simclr.")] = None,
    bits: Annotated[Optional[int], typer.Option(help="Code length D.")] = None,
    p: Annotated[Optional[float], typer.Option("--p", help="NAC channel flip probability, in (0, 0.5).")] = None,
    temperature: Annotated[Optional[float], typer.Option(help="SimCLR temperature.")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Total epochs of the run.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Global batch (images; two views each).")] = None,
    optimizer: Annotated[Optional[str], typer.Option(help="lars, sgd or adamw.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate.")] = None,
    weight_decay: Annotated[Optional[float], typer.Option("--weight-decay")] = None,
    momentum: Annotated[Optional[float], typer.Option(help="LARS/SGD momentum.")] = None,
    warmup_epochs: Annotated[Optional[float], typer.Option("--warmup-epochs", help="Linear warm-up, then cosine.")] = None,
    exclude_bias_norm: Annotated[Optional[bool], typer.Option("--exclude-bias-norm/--decay-bias-norm", help="No weight decay (and no LARS adaptation) on biases and norm parameters.")] = None,
    augment: Annotated[Optional[str], typer.Option(help="auto, cifar, gray-small or none.")] = None,
    hidden: Annotated[Optional[str], typer.Option(help="mlp widths, e.g. 512,512.")] = None,
    head_dim: Annotated[Optional[int], typer.Option("--head-dim", help="Code-head hidden width (default: feature dim).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (model, shuffling, augmentation, flips).")] = None,
    root: Annotated[Optional[str], typer.Option(help="Folder with on-disk datasets (cifar/stl).")] = None,
    download: Annotated[bool, typer.Option("--download", help="Let torchvision download cifar/stl into --root.")] = False,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu, cuda, cuda:N.")] = None,
    bf16: Annotated[Optional[bool], typer.Option("--bf16/--fp32", help="bf16 autocast (default: on with CUDA).")] = None,
    channels_last: Annotated[Optional[bool], typer.Option("--channels-last/--no-channels-last", help="Default: on with CUDA.")] = None,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads (default: 1 for mlp/convnet, else torch's default).")] = None,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model.")] = False,
    eval_every: Annotated[Optional[int], typer.Option("--eval-every", help="Quick k-NN / mAP evaluation every N epochs (0: at the end only).")] = None,
    ckpt_every: Annotated[Optional[int], typer.Option("--ckpt-every", help="Also keep epoch_NNNN.pt every N epochs.")] = None,
    log_every: Annotated[Optional[int], typer.Option("--log-every", help="Log (and sync) every N steps.")] = None,
    stop_after: Annotated[Optional[int], typer.Option("--stop-after", help="Stop after N epochs of this call (continue later with --resume).")] = None,
    preset: Annotated[Optional[str], typer.Option(help="paper-cifar10-linear or paper-cifar10-hash (NAC-NOTES §3); options given override it.")] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue the run in this folder from its last.pt.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Start over in a folder that already holds a run.")] = False,
    baseline: Annotated[bool, typer.Option("--baseline/--no-baseline", help="Also evaluate a random-init encoder for comparison.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train a NAC (or SimCLR) encoder; checkpoints, metrics and a final k-NN / mAP evaluation."""
    import warnings

    from nacscope.training import apply_preset, baseline_eval, train

    if resume is not None and out is not None and Path(out).resolve() != Path(resume).resolve():
        raise OptionError("--resume RUN continues in RUN; drop --out or give the same folder")
    run_dir = resume if resume is not None else out
    if run_dir is None:
        raise OptionError("give --out RUN_DIR (or --resume RUN_DIR)")
    if resume is not None and force:
        raise OptionError("--resume and --force contradict each other; pick one")
    overrides = dict(
        dataset=dataset, arch=arch, objective=objective, bits=bits, p=p, temperature=temperature, epochs=epochs,
        batch_size=batch_size, optimizer=optimizer, lr=lr, weight_decay=weight_decay, momentum=momentum,
        warmup_epochs=warmup_epochs, exclude_bias_norm=exclude_bias_norm, augment=augment, hidden=_hidden(hidden),
        head_dim=head_dim, seed=seed, root=root, download=download or None, device=device, bf16=bf16,
        channels_last=channels_last, threads=threads, compile=compile or None, eval_every=eval_every, ckpt_every=ckpt_every,
        log_every=log_every, stop_after_epochs=stop_after,
    )
    if resume is not None:
        from nacscope.training import RESUME_OVERRIDABLE

        fixed = sorted(k for k, v in overrides.items() if v is not None and k not in RESUME_OVERRIDABLE)
        if fixed or preset:
            names = ", ".join("--" + k.replace("_", "-") for k in fixed) or "--preset"
            raise OptionError(f"{names} cannot change when resuming (the run's own settings are used); "
                              "only --epochs, --stop-after, --eval-every, --ckpt-every, --log-every, --device, --threads, --compile, --root can")
    cfg = apply_preset(preset, overrides)
    main = int(os.environ.get("RANK", "0")) == 0

    def show(message, category, filename, lineno, file=None, line=None):
        if main:
            err_console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        result = train(cfg, run_dir, resume=resume is not None, force=force, progress=not quiet, console=console)
    if not main:
        return
    if result.interrupted:
        console.print(f"interrupted: checkpoint written to [bold]{run_dir / 'last.pt'}[/] "
                      f"(epoch {result.epochs_done}, step {result.steps}); continue with --resume {run_dir}")
        raise typer.Exit(130)
    if result.stopped_early:
        console.print(f"stopped after epoch {result.epochs_done} as asked; continue with --resume {run_dir}")
        return
    console.print(f"trained {result.epochs_done} epochs ({result.steps} steps), last loss {result.final_loss:.4f}, "
                  f"{result.images_per_s:,.0f} img/s; checkpoint [bold]{run_dir / 'last.pt'}[/]")
    if result.eval:
        from rich.table import Table

        table = Table(title="held-out evaluation (test queries vs train gallery)")
        table.add_column("model")
        for col in ("k-NN acc (features)", "mAP (codes, Hamming)", "k-NN acc (codes)", "distinct codes"):
            table.add_column(col, justify="right")
        rows = [("trained", result.eval)]
        if baseline:
            from nacscope.training import TrainConfig

            import json

            saved = TrainConfig.from_dict(json.loads((Path(run_dir) / "config.json").read_text()))
            rows.append(("random init", baseline_eval(saved)))
        for name, ev in rows:
            table.add_row(name, f"{ev['knn_acc']:.4f}", f"{ev['map']:.4f}", f"{ev['code_knn_acc']:.4f}",
                          str(ev["distinct_codes"]))
        console.print(table)
