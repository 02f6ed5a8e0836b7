"""Commands ``layers``, ``dump`` and ``regions``: ReLU sites, code-set dumps, input-space regions."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from nacscope._files import check_output
from nacscope.cli._common import command_line, console, err_console, one_line_errors
from nacscope.cli.app import app
from nacscope.errors import OptionError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from nacscope.data import ImageData


# ------------------------------------------------------------------------------------------------
# shared helpers (imports of torch & co. stay inside the functions)


def _device(name: str, rank: int | None = None):
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", rank or 0)
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise OptionError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise OptionError("--device cuda asked for, but no CUDA GPU is available; use --device cpu")
    return dev


def load_source(
    checkpoint: Optional[Path],
    *,
    random_init: bool,
    arch: Optional[str],
    bits: Optional[int],
    seed: int,
    in_channels: int | None,
    image_size: int | None,
) -> tuple["nn.Module", dict]:
    """The model to study: a checkpoint (nacscope or authors' format) or a seeded random init."""
    from nacscope.nets import ARCHS, load_checkpoint, random_init as make_random

    if random_init:
        if checkpoint is not None:
            raise OptionError("give a CHECKPOINT or --random-init, not both")
        if arch is None or bits is None:
            raise OptionError("--random-init needs --arch and --bits")
        if arch not in ARCHS and arch != "vgg16":
            raise OptionError(f"unknown --arch {arch!r}; choose one of {', '.join(ARCHS)}")
        if bits < 1:
            raise OptionError(f"--bits must be >= 1, got {bits}")
        if in_channels is None or image_size is None:
            raise OptionError("--random-init needs the input shape: give --dataset")
        model = make_random(arch, bits, seed, in_channels, image_size)
        meta = {"format": "random-init", "arch": arch, "bits": bits, "seed": seed, "sha256": "",
                "path": f"random-init:{arch}:{bits}:seed={seed}", "mean": None, "std": None,
                "model_config": {"arch": arch, "bits": bits, "in_channels": in_channels, "image_size": image_size}}
        return model, meta
    if checkpoint is None:
        raise OptionError("give a CHECKPOINT, or --random-init --arch A --bits D for an untrained baseline")
    if bits is not None:
        raise OptionError("--bits is for --random-init; a checkpoint records its own code length")
    return load_checkpoint(checkpoint, arch=arch)


def input_shape(meta: dict, data: "ImageData | None") -> tuple[int, int]:
    """(channels, size) the model expects; checked against the data when both are known."""
    cfg = meta.get("model_config") or {}
    c, s = cfg.get("in_channels"), cfg.get("image_size")
    if data is not None:
        if c is not None and int(c) != data.channels:
            raise OptionError(
                f"the model expects {c}-channel images, dataset {data.name!r} has {data.channels}; "
                "use a checkpoint trained on this kind of data"
            )
        if meta.get("arch") == "mlp" and s is not None and int(s) != data.image_size:
            raise OptionError(
                f"the mlp model expects {s}x{s} images, dataset {data.name!r} has {data.image_size}x{data.image_size}"
            )
        return data.channels, data.image_size
    return int(c or 3), int(s or 32)


def normalizer(meta: dict, data: "ImageData"):
    """The checkpoint's normalisation when it records one that fits the data, else the dataset's."""
    import torch

    mean, std = meta.get("mean"), meta.get("std")
    if mean and std and len(mean) == data.channels:
        m = tuple(float(v) for v in mean)
        s = tuple(float(v) for v in std)
    else:
        m, s = tuple(data.mean), tuple(data.std)

    def normalize(x: torch.Tensor) -> torch.Tensor:
        mt = torch.tensor(m, device=x.device).view(1, -1, 1, 1)
        st = torch.tensor(s, device=x.device).view(1, -1, 1, 1)
        return (x.float() / 255.0 - mt) / st  # (B, C, H, W)

    return normalize, {"mean": list(m), "std": list(s)}


def _trace(model, shape: tuple[int, int], normalize=None, data=None):
    """Sites of ``model`` on a probe batch; shape errors become one line."""
    import torch

    from nacscope.codes.capture import list_sites

    c, s = shape
    x = data.images[:2] if data is not None and len(data) >= 2 else torch.zeros(2, c, s, s, dtype=torch.uint8)
    x = normalize(x) if normalize is not None else x.float()
    try:
        return list_sites(model.eval(), x)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:160]
        raise OptionError(f"the model cannot run on {c}x{s}x{s} inputs ({first})") from None


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

    data = load_data(dataset, "test", data_root) if dataset else None
    shape = (data.channels, data.image_size) if data is not None else (None, None)
    model, meta = load_source(checkpoint, random_init=random_init, arch=arch, bits=bits, seed=seed,
                              in_channels=shape[0] or 3, image_size=shape[1] or 32)
    shape = input_shape(meta, data)
    norm = normalizer(meta, data)[0] if data is not None else None
    sites = _trace(model, shape, norm, data)
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


def load_data(name: str, split: str, root: Optional[Path]) -> "ImageData":
    from nacscope.data import load_dataset

    if split not in ("train", "test", "all"):
        raise OptionError(f"--split must be train, test or all, got {split!r}")
    return load_dataset(name, split, root=root)


# ------------------------------------------------------------------------------------------------
# dump


@app.command("dump")
@one_line_errors
def dump_cmd(
    checkpoint: Annotated[Optional[Path], typer.Argument(help="A nacscope or authors' checkpoint (.pt) or run folder.")] = None,
    dataset: Annotated[str, typer.Option("--dataset", help="digits, mnist5k, cifar10, cifar100, stl10, folder:PATH, or .npz/.h5.")] = ...,  # type: ignore[assignment]
    out: Annotated[Path, typer.Option("--out", "-o", help="The code set to write (.h5).")] = ...,  # type: ignore[assignment]
    data_root: Annotated[Optional[Path], typer.Option("--data-root", help="Folder of on-disk datasets.")] = None,
    split: Annotated[str, typer.Option("--split", help="train, test or all.")] = "test",
    layers: Annotated[Optional[list[str]], typer.Option("--layers", help="Site name patterns ('encoder.*'), or 'all'; repeat for more. Default: code, head ReLU, encoder's last ReLU.")] = None,
    features: Annotated[bool, typer.Option("--features/--no-features", help="Store encoder features h (float16).")] = True,
    thumbnails: Annotated[int, typer.Option("--thumbnails", help="Max side of stored thumbnails; 0 for none.")] = 32,
    protocol: Annotated[Optional[str], typer.Option("--protocol", help="Query/gallery split: paper-cifar10 or paper-flickr25k (the NAC authors' protocols, NAC-NOTES §4).")] = None,
    queries_per_class: Annotated[Optional[int], typer.Option("--queries-per-class", help="Mark K queries per class.")] = None,
    random_init: RandOpt = False,
    arch: ArchOpt = None,
    bits: BitsOpt = None,
    seed: SeedOpt = 0,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Samples per forward pass.")] = 256,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    precision: Annotated[str, typer.Option("--precision", help="fp32 (exact, default) or bf16 (opt-in: flips near-zero signs).")] = "fp32",
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUT if it exists.")] = False,
) -> None:
    """Dump the activation patterns of ReLU sites (and the code layer) into a code set, streamed."""
    from nacscope.codes.capture import select_sites
    from nacscope.codes.dump import PRECISIONS, DumpInput, dump_codes, dump_distributed, projected_bytes
    from nacscope.data.protocols import query_mask
    from nacscope.codes.render import human_bytes

    if batch_size < 1:
        raise OptionError(f"--batch-size must be >= 1, got {batch_size}")
    if precision not in PRECISIONS:
        raise OptionError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if thumbnails < 0:
        raise OptionError(f"--thumbnails must be >= 0, got {thumbnails}")
    check_output(out, force=force)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    data = load_data(dataset, split, data_root)
    if len(data) == 0:
        raise OptionError(f"dataset {dataset!r} split {split!r} has no samples")
    model, meta = load_source(checkpoint, random_init=random_init, arch=arch, bits=bits, seed=seed,
                              in_channels=data.channels, image_size=data.image_size)
    input_shape(meta, data)
    normalize, norm_attrs = normalizer(meta, data)
    sites = select_sites(_trace(model, (data.channels, data.image_size), normalize, data), layers)
    labels = None if data.labels is None else data.labels.numpy()
    mask = query_mask(protocol, queries_per_class, labels, data.indices.numpy(), dataset, split)
    feat_dim = getattr(model, "feature_dim", 0) if features else 0
    size = projected_bytes(len(data), sites, feat_dim)
    if layers and "all" in layers and rank == 0:
        err_console.print(
            f"[yellow]warning:[/] --layers all: {len(sites)} sites, {sum(s.units for s in sites):,} units per sample; "
            f"projected size {human_bytes(size)}", highlight=False)
    attrs: dict[str, Any] = {
        "command": command_line(),
        "dataset": dataset,
        "split": split,
        # where the on-disk dataset was read (rebuilding inputs for segment walks reads it again)
        "data_root": str(data_root.expanduser().resolve()) if data_root else "",
        "checkpoint": meta.get("path", str(checkpoint)),
        "checkpoint_sha256": meta.get("sha256", ""),
        "config": {
            "arch": meta.get("arch"), "bits": meta.get("bits"), "source_format": meta.get("format"),
            "layers": layers or ["(default)"], "protocol": protocol, "queries_per_class": queries_per_class,
            "precision": precision, "normalization": norm_attrs, "seed": seed if random_init else None,
            "mode": "eval",
        },
    }
    if protocol:
        from nacscope.data.protocols import PAPER_SEED

        attrs["protocol"] = protocol
        attrs["protocol_seed"] = PAPER_SEED
    dinput = DumpInput(data.images, normalize, data.labels, data.indices, data.class_names, mask)
    kw = dict(batch_size=batch_size, features=features, thumbnails=thumbnails or None, precision=precision,
              attrs=attrs, force=force)
    if world > 1:
        import torch.distributed as dist

        dev = _device(device, int(os.environ.get("LOCAL_RANK", "0")))
        if dev.type == "cuda":
            import torch

            torch.cuda.set_device(dev)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        try:
            with _progress(rank == 0, len(data) // world) as prog:
                stats = dump_distributed(model, dinput, out, sites, device=dev, progress=prog, **kw)
        finally:
            dist.destroy_process_group()
        if rank != 0 or stats is None:
            return
    else:
        dev = _device(device)
        with _progress(True, len(data)) as prog:
            stats = dump_codes(model, dinput, out, sites, device=dev, progress=prog, **kw)
    console.print(
        f"wrote [bold]{stats.path}[/]: {stats.n_samples:,} samples, {len(stats.layers)} layers "
        f"({', '.join(stats.layers[:6])}{', ...' if len(stats.layers) > 6 else ''}), "
        f"{human_bytes(stats.bytes_on_disk)}, {stats.samples_per_s:,.0f} samples/s", highlight=False)


class _progress:
    """A rich progress bar with samples/s and MB written; yields the callback ``dump_codes`` wants."""

    def __init__(self, show: bool, total: int):
        self.show, self.total = show, total

    def __enter__(self):
        import time

        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        if not self.show:
            return None
        self.bar = Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[mb]}"), TimeRemainingColumn(),
            console=err_console, transient=True,
        )
        self.bar.__enter__()
        self.task = self.bar.add_task("dumping", total=self.total, rate="", mb="")
        t0 = time.perf_counter()

        def update(done: int, total: int, nbytes: int) -> None:
            rate = done / max(time.perf_counter() - t0, 1e-9)
            self.bar.update(self.task, completed=done, total=total, rate=f"{rate:,.0f} samples/s",
                            mb=f"{nbytes / 1e6:,.1f} MB written")

        return update

    def __exit__(self, *exc):
        if self.show:
            self.bar.__exit__(*exc)
        return False
