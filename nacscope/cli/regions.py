"""``nacscope regions``: exact region counts along segments and in planes, across checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from nacscope._files import check_output, dataset_path
from nacscope.cli._common import PlaneMethod, Split, console, one_line_errors
from nacscope.cli.app import app
from nacscope.cli.dump import ArchOpt, BitsOpt, SeedOpt
from nacscope.errors import OptionError, quiet_library_warnings


@app.command("regions")
@one_line_errors
def regions_cmd(
    checkpoints: Annotated[Optional[list[Path]], typer.Argument(help="Checkpoints to compare (nacscope or authors' format).")] = None,
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset the anchor samples come from.")] = ...,  # type: ignore[assignment]
    data_root: Annotated[Optional[Path], typer.Option("--data-root", help="Folder of on-disk datasets.")] = None,
    split: Annotated[Split, typer.Option("--split", help="Split of the dataset (all: train then test).")] = "test",  # type: ignore[assignment]
    random_init: Annotated[bool, typer.Option("--random-init", help="Add an untrained baseline (the first checkpoint's architecture, or --arch/--bits).")] = False,
    arch: ArchOpt = None,
    bits: BitsOpt = None,
    seed: SeedOpt = 0,
    pairs: Annotated[int, typer.Option("--pairs", help="Segments between random pairs of samples (same pairs for every model).")] = 10,
    dense: Annotated[int, typer.Option("--dense", help="Points of the dense-sampling cross-check per segment (0: skip).")] = 1000,
    plane_method: Annotated[PlaneMethod, typer.Option("--plane-method", help="Plane partition: exact (convex polygons) or grid (sampling: a lower bound).")] = "exact",  # type: ignore[assignment]
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
    from nacscope.analysis.regions_compare import check_settings, compare_regions, region_models
    from nacscope.cli._progress import progress_bar
    from nacscope.codes.study import load_data

    if not checkpoints and not random_init:
        raise OptionError("give one or more CHECKPOINTs and/or --random-init")
    check_settings(pairs=pairs, dense=dense, resolution=resolution, margin=margin, max_steps=max_steps)
    if plot is not None:
        check_output(plot, force=force, inputs=[*(checkpoints or []), data_root], sealed=[dataset_path(dataset)])
    data = load_data(dataset, split, data_root)
    models = region_models(checkpoints or [], data, random_init=random_init, arch=arch, bits=bits, seed=seed)
    with quiet_library_warnings(), progress_bar(not as_json, unit="faces" if plane_method == "exact" else "") as progress:
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
