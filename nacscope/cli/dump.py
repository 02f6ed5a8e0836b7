"""Commands ``layers`` and ``dump``: the ReLU sites of a network, and code-set dumps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from nacscope.cli._common import Precision, Split, command_line, console, err_console, one_line_errors
from nacscope.cli._progress import progress_bar
from nacscope.cli.app import app

# Options shared by the commands.
ArchOpt = Annotated[Optional[str], typer.Option("--arch", help="Architecture (required with --random-init; checked against a checkpoint).")]
BitsOpt = Annotated[Optional[int], typer.Option("--bits", help="Code length D for --random-init.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of --random-init weights.")]
RandOpt = Annotated[bool, typer.Option("--random-init", help="Study an untrained, seeded model instead of a checkpoint.")]


# ------------------------------------------------------------------------------------------------
# layers


@app.command("layers")
@one_line_errors
def layers_cmd(
    checkpoint: Annotated[Optional[Path], typer.Argument(help="A nacscope or authors' checkpoint (.pt) or run folder.")] = None,
    random_init: RandOpt = False,
    arch: ArchOpt = None,
    bits: BitsOpt = None,
    seed: SeedOpt = 0,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Dataset whose image shape to trace with.")] = None,
    data_root: Annotated[Optional[Path], typer.Option("--data-root", help="Folder of on-disk datasets.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List every ReLU site (one per call of a ReLU) in forward order, with shape and unit count."""
    from rich.table import Table

    from nacscope.codes.capture import default_sites
    from nacscope.codes.study import input_shape, load_data, load_source, normalizer, trace_sites

    data = load_data(dataset, "test", data_root) if dataset else None
    shape = (data.channels, data.image_size) if data is not None else (None, None)
    model, meta = load_source(checkpoint, random_init=random_init, arch=arch, bits=bits, seed=seed,
                              in_channels=shape[0] or 3, image_size=shape[1] or 32)
    shape = input_shape(meta, data)
    norm = normalizer(meta, data)[0] if data is not None else None
    sites = trace_sites(model, shape, norm, data)
    default = {s.name for s in default_sites(sites)}
    if as_json:
        typer.echo(json.dumps([
            {"name": s.name, "kind": s.kind, "shape": list(s.shape), "units": s.units, "owner": s.owner,
             "call": s.call, "functional": s.functional, "default": s.name in default}
            for s in sites
        ], indent=1))
        return
    t = Table(title=f"{len(sites)} sites of {meta.get('arch')} ({meta.get('path')}), input {shape[0]}x{shape[1]}x{shape[1]}")
    for col in ("#", "site", "kind", "shape", "units", "default"):
        t.add_column(col, justify="right" if col in ("#", "units") else "left")
    for i, s in enumerate(sites):
        t.add_row(str(i), s.name, s.kind + (" (F)" if s.functional else ""), "x".join(map(str, s.shape)),
                  f"{s.units:,}", "*" if s.name in default else "")
    console.print(t)
    console.print(f"total units: {sum(s.units for s in sites):,}; * = dumped by default")


# ------------------------------------------------------------------------------------------------
# dump


@app.command("dump")
@one_line_errors
def dump_cmd(
    checkpoint: Annotated[Optional[Path], typer.Argument(help="A nacscope or authors' checkpoint (.pt) or run folder.")] = None,
    dataset: Annotated[str, typer.Option("--dataset", help="digits, mnist5k, cifar10, cifar100, stl10, folder:PATH, or .npz/.h5.")] = ...,  # type: ignore[assignment]
    out: Annotated[Path, typer.Option("--out", "-o", help="The code set to write (.h5).")] = ...,  # type: ignore[assignment]
    data_root: Annotated[Optional[Path], typer.Option("--data-root", help="Folder of on-disk datasets.")] = None,
    split: Annotated[Split, typer.Option("--split", help="Split of the dataset (all: train then test).")] = "test",  # type: ignore[assignment]
    layers: Annotated[Optional[list[str]], typer.Option("--layers", help="Site name patterns ('encoder.*'), or 'all'; repeat for more. Default: code, head ReLU, encoder's last ReLU.")] = None,
    features: Annotated[bool, typer.Option("--features/--no-features", help="Store encoder features h (float16).")] = True,
    thumbnails: Annotated[int, typer.Option("--thumbnails", help="Max side of stored thumbnails; 0 for none.")] = 32,
    protocol: Annotated[Optional[str], typer.Option("--protocol", help="Query/gallery split: paper-cifar10 or paper-flickr25k (the NAC authors' protocols, NAC-NOTES §4), or held-out (with --split all: the test split queries the train split).")] = None,
    queries_per_class: Annotated[Optional[int], typer.Option("--queries-per-class", help="Mark K queries per class.")] = None,
    random_init: RandOpt = False,
    arch: ArchOpt = None,
    bits: BitsOpt = None,
    seed: SeedOpt = 0,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Samples per forward pass.")] = 256,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    precision: Annotated[Precision, typer.Option("--precision", help="fp32 (exact) or bf16 (opt-in: flips near-zero signs).")] = "fp32",  # type: ignore[assignment]
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUT if it exists.")] = False,
) -> None:
    """Dump the activation patterns of ReLU sites (and the code layer) into a code set, streamed."""
    from nacscope.codes.job import DumpRequest, run_dump
    from nacscope.codes.render import human_bytes

    req = DumpRequest(dataset, out, checkpoint=checkpoint, data_root=data_root, split=split, layers=layers,
                      features=features, thumbnails=thumbnails, protocol=protocol,
                      queries_per_class=queries_per_class, random_init=random_init, arch=arch, bits=bits, seed=seed,
                      batch_size=batch_size, device=device, precision=precision, force=force,
                      command=command_line())

    def bar(rank: int):  # rank 0 draws; no log lines, so errors stay one line
        return progress_bar(rank == 0 and err_console.is_terminal, unit="samples")

    stats = run_dump(req, bar, warn=lambda m: err_console.print(f"[yellow]warning:[/] {m}", highlight=False))
    if stats is None:  # a rank other than 0 under torchrun
        return
    console.print(
        f"wrote [bold]{stats.path}[/]: {stats.n_samples:,} samples, {len(stats.layers)} layers "
        f"({', '.join(stats.layers[:6])}{', ...' if len(stats.layers) > 6 else ''}), "
        f"{human_bytes(stats.bytes_on_disk)}, {stats.samples_per_s:,.0f} samples/s", highlight=False)
