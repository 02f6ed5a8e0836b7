"""``nacscope regions``: exact region counts along segments and in planes, across checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from nacscope._files import check_output, dataset_path
from nacscope.cli._common import console, one_line_errors
from nacscope.cli.app import app
from nacscope.cli.dump import ArchOpt, BitsOpt, SeedOpt
from nacscope.errors import OptionError


def _model_label(path: Path) -> str:
    """A short name for a checkpoint: the folder for ``RUN/last.pt`` or ``ZOO/model.pt``, else the file stem."""
    if path.is_dir():
        return path.name
    return path.parent.name if path.name in ("last.pt", "model.pt") else path.stem


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
    plane_method: Annotated[str, typer.Option("--plane-method", help="Plane partition: exact (convex polygons) or grid (sampling: a lower bound).", show_default=True)] = "exact",
    resolution: Annotated[int, typer.Option("--resolution", help="Grid points per side of --plane-method grid (0: skip the plane, either method).")] = 120,
    margin: Annotated[float, typer.Option("--margin", help="Plane window beyond the anchors' triangle.")] = 0.25,
    layers: Annotated[Optional[list[str]], typer.Option("--layers", help="Sites that define regions (patterns; 'all' adds the code layer). Default: every ReLU.")] = None,
    sample_seed: Annotated[int, typer.Option("--sample-seed", help="Seed of the choice of pairs and plane anchors.")] = 0,
    max_steps: Annotated[int, typer.Option("--max-steps", help="Give up a segment after this many boundaries.")] = 200_000,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Draw the plane partitions side by side into this PNG.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the --plot file.")] = False,
) -> None:
    """Linear regions in input space: along segments (exact walk + dense check) and in a plane (exact polygons, or a grid: a lower bound); compare models."""
    import warnings

    from nacscope.analysis.regions_compare import compare_regions
    from nacscope.cli._progress import progress_bar
    from nacscope.codes.study import load_data

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
        check_output(plot, force=force, inputs=[*checkpoints, data_root], sealed=[dataset_path(dataset)])
    if pairs == 0 and resolution == 0:
        raise OptionError("nothing to do: --pairs 0 and --resolution 0")
    data = load_data(dataset, split, data_root)
    if len(data) < 3:
        raise OptionError(f"dataset {dataset!r} split {split!r} has {len(data)} samples; need at least 3")
    models = _load_models(checkpoints, random_init, data, arch, bits, seed)
    with warnings.catch_warnings(), progress_bar(not as_json, unit="faces" if plane_method == "exact" else "") as progress:
        for category in (DeprecationWarning, FutureWarning):  # library notes, not the user's business
            warnings.simplefilter("ignore", category)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch(\.|$)")
        out, planes = compare_regions(models, data.images, pairs=pairs, dense=dense, plane_method=plane_method,
                                      resolution=resolution, margin=margin, layers=layers, sample_seed=sample_seed,
                                      max_steps=max_steps, progress=progress)
    out = {"dataset": dataset, "split": split, **out}
    if plot is not None and planes:
        from nacscope.analysis.partition_plot import plot_partitions

        plot_partitions(planes, plot, anchor_labels=[f"#{int(i)}" for i in out["plane_anchors"]])
        out["plot"] = str(plot)
    if as_json:
        typer.echo(json.dumps(out, indent=1))
        return
    _print_table(out, dataset, split, layers, pairs, dense, resolution, plane_method)
    if plot is not None and planes:
        console.print(f"wrote [bold]{plot}[/]")


def _load_models(checkpoints, random_init, data, arch, bits, seed) -> list:
    """The checkpoints and the optional random-init baseline, each with its input normalisation."""
    from nacscope.analysis.regions_compare import RegionModel
    from nacscope.codes.study import input_shape, load_source, normalizer

    loaded: list[tuple[str, Any, dict]] = []
    for ck in checkpoints:
        model, meta = load_source(ck, random_init=False, arch=arch, bits=None, seed=seed, in_channels=None, image_size=None)
        input_shape(meta, data)
        loaded.append((_model_label(ck), model, meta))
    if random_init:
        from nacscope.nets import random_init as make_random

        cfg = dict(loaded[0][2].get("model_config") or {}) if loaded else {}
        a, b = arch or cfg.get("arch"), bits or cfg.get("bits")
        if a is None or b is None:
            raise OptionError("--random-init without a checkpoint needs --arch and --bits")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in (cfg.get("encoder_kw") or {}).items()}
        for key in ("head_dim", "pred_dim"):
            if cfg.get(key):
                kw[key] = cfg[key]
        model = make_random(a, int(b), seed, data.channels, data.image_size, **kw)
        loaded.append(("random init", model, {"arch": a, "bits": b, "path": f"random-init:{a}:{b}:seed={seed}",
                                              "model_config": {"in_channels": data.channels}}))
    return [RegionModel(label, model, normalizer(meta, data)[0], meta.get("path"), meta.get("arch"))
            for label, model, meta in loaded]


def _print_table(out, dataset, split, layers, pairs, dense, resolution, plane_method) -> None:
    from rich.table import Table

    results = out["models"]
    t = Table(title=f"linear regions in input space ({dataset}/{split}; sites: {', '.join(layers) if layers else 'every ReLU'})")
    t.add_column("model")
    if pairs:
        t.add_column(f"segment regions, exact\nmean (median) of {pairs}", justify="right")
        if dense:
            t.add_column(f"dense {dense} pts\nmean (lower bound)", justify="right")
    if resolution:
        t.add_column("plane regions\nexact" if plane_method == "exact" else f"plane regions, lower bound\n{resolution}x{resolution} grid", justify="right")
        if plane_method == "exact":
            t.add_column("per layer (faces after each site)")
    for r in results:
        cells = [r["model"]]
        if pairs:
            s = r["segments"]
            cells.append(f"{s['mean']:,.1f} ({s['median']:,.0f})")
            if dense:
                cells.append(f"{s['dense_mean']:,.1f}")
        if resolution:
            cells.append(f"{r['plane']['regions']:,}")
            if plane_method == "exact":
                cells.append(", ".join(f"{k}: {v:,}" for k, v in r["plane"]["per_layer"].items()))
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
