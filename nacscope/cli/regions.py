"""``nacscope regions``: exact region counts along segments and in planes, across checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from nacscope._files import check_output
from nacscope.cli._common import console, err_console, one_line_errors
from nacscope.cli.app import app
from nacscope.cli.dump import ArchOpt, BitsOpt, SeedOpt, load_data, input_shape, load_source, normalizer
from nacscope.errors import OptionError


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
    data = load_data(dataset, split, data_root)
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
