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

    data = _load_data(dataset, "test", data_root) if dataset else None
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


def _load_data(name: str, split: str, root: Optional[Path]) -> "ImageData":
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
    protocol: Annotated[Optional[str], typer.Option("--protocol", help="Query/gallery split: paper-cifar10.")] = None,
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
    from nacscope.codes.protocols import query_mask
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
    data = _load_data(dataset, split, data_root)
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
        from nacscope.codes.protocols import PAPER_SEED

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


# ------------------------------------------------------------------------------------------------
# regions


def _model_label(path: Path) -> str:
    """A short name for a checkpoint: the run folder for ``RUN/last.pt``, else the file stem."""
    if path.is_dir():
        return path.name
    return path.parent.name if path.name == "last.pt" else path.stem


@app.command("regions")
@one_line_errors
def regions_cmd(
    checkpoints: Annotated[Optional[list[Path]], typer.Argument(help="Checkpoints to compare (nacscope or authors' format).")] = None,
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset the anchor samples come from.")] = ...,  # type: ignore[assignment]
    data_root: Annotated[Optional[Path], typer.Option("--data-root", help="Folder of on-disk datasets.")] = None,
    split: Annotated[str, typer.Option("--split", help="train, test or all.")] = "test",
    random_init: Annotated[bool, typer.Option("--random-init", help="Add an untrained baseline (the first checkpoint's architecture, or --arch/--bits).")] = False,
    arch: ArchOpt = None,
    bits: BitsOpt = None,
    seed: SeedOpt = 0,
    pairs: Annotated[int, typer.Option("--pairs", help="Segments between random pairs of samples (same pairs for every model).")] = 10,
    dense: Annotated[int, typer.Option("--dense", help="Points of the dense-sampling cross-check per segment (0: skip).")] = 1000,
    resolution: Annotated[int, typer.Option("--resolution", help="Plane grid points per side (0: skip the plane).")] = 120,
    margin: Annotated[float, typer.Option("--margin", help="Plane window beyond the anchors' triangle.")] = 0.25,
    layers: Annotated[Optional[list[str]], typer.Option("--layers", help="Sites that define regions (patterns; 'all' adds the code layer). Default: every ReLU.")] = None,
    sample_seed: Annotated[int, typer.Option("--sample-seed", help="Seed of the choice of pairs and plane anchors.")] = 0,
    max_steps: Annotated[int, typer.Option("--max-steps", help="Give up a segment after this many boundaries.")] = 200_000,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Draw the plane partitions side by side into this PNG.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the --plot file.")] = False,
) -> None:
    """Linear regions in input space: along segments (exact walk + dense check) and in a plane; compare models."""
    import warnings

    import numpy as np
    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.table import Table

    from nacscope.analysis.plane import plane_regions, plot_planes
    from nacscope.analysis.segments import count_regions_dense, count_regions_exact, sample_pairs

    checkpoints = list(checkpoints or [])
    if not checkpoints and not random_init:
        raise OptionError("give one or more CHECKPOINTs and/or --random-init")
    for name, value, low in (("--pairs", pairs, 0), ("--dense", dense, 0), ("--resolution", resolution, 0), ("--max-steps", max_steps, 1)):
        if value < low:
            raise OptionError(f"{name} must be >= {low}, got {value}")
    if dense == 1 or resolution == 1:
        raise OptionError("--dense and --resolution need at least 2 points (or 0 to skip)")
    if margin < 0:
        raise OptionError(f"--margin must be >= 0, got {margin}")
    if plot is not None:
        check_output(plot, force=force)
    if pairs == 0 and resolution == 0:
        raise OptionError("nothing to do: --pairs 0 and --resolution 0")
    data = _load_data(dataset, split, data_root)
    if len(data) < 3:
        raise OptionError(f"dataset {dataset!r} split {split!r} has {len(data)} samples; need at least 3")
    models: list[tuple[str, Any, dict]] = []
    for ck in checkpoints:
        model, meta = load_source(ck, random_init=False, arch=arch, bits=None, seed=seed, in_channels=None, image_size=None)
        input_shape(meta, data)
        models.append((_model_label(ck), model, meta))
    if random_init:
        from nacscope.nets import random_init as make_random

        cfg = dict(models[0][2].get("model_config") or {}) if models else {}
        a, b = arch or cfg.get("arch"), bits or cfg.get("bits")
        if a is None or b is None:
            raise OptionError("--random-init without a checkpoint needs --arch and --bits")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in (cfg.get("encoder_kw") or {}).items()}
        for key in ("head_dim", "pred_dim"):
            if cfg.get(key):
                kw[key] = cfg[key]
        model = make_random(a, int(b), seed, data.channels, data.image_size, **kw)
        models.append(("random init", model, {"arch": a, "bits": b, "path": f"random-init:{a}:{b}:seed={seed}",
                                              "model_config": {"in_channels": data.channels}}))
    pr = sample_pairs(len(data), pairs, sample_seed) if pairs else np.zeros((0, 2), int)
    rng = np.random.default_rng(sample_seed + 1)
    triple = rng.choice(len(data), 3, replace=False)
    results: list[dict[str, Any]] = []
    planes = []
    with warnings.catch_warnings(), Progress("[progress.description]{task.description}", BarColumn(),
                                             MofNCompleteColumn(), TimeElapsedColumn(), console=err_console,
                                             transient=True) as bar:
        warnings.simplefilter("ignore")
        task = bar.add_task("regions", total=len(models) * (int(pairs > 0) * (1 + int(dense > 0)) + int(resolution > 0)))
        for label, model, meta in models:
            normalize, _ = normalizer(meta, data)
            row: dict[str, Any] = {"model": label, "checkpoint": meta.get("path"), "arch": meta.get("arch")}
            if pairs:
                x0 = normalize(data.images[torch.as_tensor(pr[:, 0])])
                x1 = normalize(data.images[torch.as_tensor(pr[:, 1])])
                bar.update(task, description=f"{label}: exact walk over {pairs} segments")
                ex = count_regions_exact(model, x0, x1, layers=layers, max_steps=max_steps)
                bar.advance(task)
                row["segments"] = {"exact": ex.regions.tolist(), "mean": float(ex.regions.mean()),
                                   "median": float(np.median(ex.regions)), "forward_passes": int(ex.steps.sum())}
                if dense:
                    bar.update(task, description=f"{label}: dense check ({dense} points per segment)")
                    dn = count_regions_dense(model, x0, x1, n=dense, layers=layers)
                    bar.advance(task)
                    row["segments"]["dense"] = dn.tolist()
                    row["segments"]["dense_mean"] = float(dn.mean())
            if resolution:
                bar.update(task, description=f"{label}: plane {resolution}x{resolution}")
                anchors = normalize(data.images[torch.as_tensor(triple)])
                pl = plane_regions(model, anchors, resolution=resolution, margin=margin, layers=layers)
                bar.advance(task)
                row["plane"] = {"regions": pl.n_regions, "resolution": resolution, "margin": margin}
                planes.append((label, pl))
            results.append(row)
    out = {"dataset": dataset, "split": split, "pairs": pr.tolist(), "plane_anchors": triple.tolist(),
           "layers": layers or ["every ReLU"], "models": results}
    if plot is not None and planes:
        labels = [f"#{int(i)}" for i in triple]
        plot_planes(planes, plot, anchor_labels=labels)
        out["plot"] = str(plot)
    if as_json:
        typer.echo(json.dumps(out, indent=1))
        return
    t = Table(title=f"linear regions in input space ({dataset}/{split}; sites: {', '.join(layers) if layers else 'every ReLU'})")
    t.add_column("model")
    if pairs:
        t.add_column(f"segment regions, exact\nmean (median) of {pairs}", justify="right")
        if dense:
            t.add_column(f"dense {dense} pts\nmean (lower bound)", justify="right")
    if resolution:
        t.add_column(f"plane regions\n{resolution}x{resolution} grid", justify="right")
    for r in results:
        cells = [r["model"]]
        if pairs:
            s = r["segments"]
            cells.append(f"{s['mean']:,.1f} ({s['median']:,.0f})")
            if dense:
                cells.append(f"{s['dense_mean']:,.1f}")
        if resolution:
            cells.append(f"{r['plane']['regions']:,}")
        t.add_row(*cells)
    console.print(t)
    if len(results) > 1:
        base = results[-1]
        for r in results[:-1]:
            parts = []
            if pairs and base["segments"]["mean"] > 0:
                parts.append(f"segments x{r['segments']['mean'] / base['segments']['mean']:.2f}")
            if resolution and base["plane"]["regions"] > 0:
                parts.append(f"plane x{r['plane']['regions'] / base['plane']['regions']:.2f}")
            console.print(f"{r['model']} vs {base['model']}: {', '.join(parts)}", highlight=False)
    if plot is not None and planes:
        console.print(f"wrote [bold]{plot}[/]")
