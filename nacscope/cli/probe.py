"""``nacscope probe``: linear evaluation of a checkpoint's frozen encoder (the paper's protocol, or a fast one)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from nacscope.cli._common import console, one_line_errors
from nacscope.cli._progress import progress_bar
from nacscope.cli.app import app



@app.command("probe")
@one_line_errors
def probe_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint file or run folder (nacscope or authors' format).")],
    dataset: Annotated[str, typer.Option(help="Dataset with train and test splits (e.g. cifar10).")] = "cifar10",
    root: Annotated[Optional[str], typer.Option(help="Folder of on-disk datasets (cifar/stl).")] = None,
    protocol: Annotated[str, typer.Option(help="paper or fast. paper: SGD Nesterov 0.9, lr 1.0, cosine, batch 1000, crop+flip, raw features (the NAC paper's); fast: L-BFGS logistic regression on standardised features (not the paper's figure).")] = "paper",
    epochs: Annotated[int, typer.Option(help="paper protocol: epochs.")] = 100,
    batch_size: Annotated[int, typer.Option("--batch-size", help="paper protocol: batch size.")] = 1000,
    lr: Annotated[float, typer.Option(help="paper protocol: peak learning rate (> 0).")] = 1.0,
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help="paper protocol: random crop + flip of the training images.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the classifier's init, shuffling and augmentation.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N.")] = "auto",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Result JSON. [default: linear-eval-PROTOCOL-DATASET.json beside the checkpoint]")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing result.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train a linear classifier on the frozen encoder's features (train split) and report top-1 on the test split."""
    from nacscope.analysis.linear_eval import LinearEvalConfig, probe_checkpoint

    cfg = LinearEvalConfig(epochs=epochs, batch_size=batch_size, lr=lr, augment=augment, seed=seed)
    with progress_bar(not quiet, unit="epochs") as progress:
        result, path = probe_checkpoint(checkpoint, dataset, root=root, protocol=protocol, config=cfg, device=device,
                                        out=out, force=force, progress=progress)
    console.print(f"{result.label}\ntop-1 on {dataset} test ({result.n_test:,} images, trained on "
                  f"{result.n_train:,}): [bold]{result.top1:.4f}[/]\nwrote {path}", highlight=False)
