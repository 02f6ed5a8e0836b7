"""``nacscope analyze``, ``compare`` and ``report``: thin faces over :mod:`nacscope.analysis`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from nacscope.analysis.labels import label, short_label
from nacscope.cli._common import PlaneMethod, Rank, console, err_console, one_line_errors
from nacscope.cli.app import app
from nacscope.errors import OptionError

_RANK_HELP = "Retrieval ranking: hamming (distance, ties by gallery index) or dot (the NAC authors' {0,1} dot product)."
_LAYER_HELP = "Layer to analyse (repeat for several; default: all)."
_NN_HELP = "Nearest-neighbour statistics use at most this many samples as queries."


def _check_nn_rows(nn_rows: int) -> int:
    if nn_rows < 1:
        raise OptionError(f"--nn-rows must be >= 1, got {nn_rows}")
    return nn_rows


def _progress(enabled: bool = True, *, plain: bool = False):
    """The CLI's progress factory, in a terminal only (analyses print their tables on stdout); with
    ``plain`` also without one, as one line per stage on stderr (``report``: its output is files)."""
    from nacscope.cli._progress import progress_bar

    return progress_bar(enabled and (plain or err_console.is_terminal))


def _fmt(v, nd: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _cols(keys: tuple[tuple[str | None, int], ...]) -> list[tuple[str, str | None, int]]:
    """(short label, result key, decimals): headers from the one label table."""
    return [(short_label(k or "nn_distance"), k, nd) for k, nd in keys]


REGION_COLUMNS = _cols((("n_bits", 0), ("distinct_patterns", 0), ("collision_groups", 0), ("samples_in_collisions", 0),
                        ("largest_group", 0), ("mixed_label_groups", 0), (None, 1)))
REGION_CAPTION = ("distinct: activation patterns; groups: samples sharing one code (in grp: samples in them, "
                  "mixed: groups mixing labels); NN: mean Hamming distance to the nearest other sample; "
                  "joint: distinct patterns of all layers up to this one")
BIT_COLUMNS = _cols((("dead_bits", 0), ("stuck_bits", 0), ("mean_rate", 3), ("bit_entropy", 1), ("effective_bits", 1),
                     ("mean_abs_correlation", 3)))
LAYER_COLUMNS = REGION_COLUMNS + BIT_COLUMNS
RETRIEVAL_COLUMNS = [(short_label(k), k) for k in ("map", "map_at_1000", "tie_aware_map", "precision_at_100",
                                                      "precision_radius_2", "knn_accuracy")]


def _layer_value(layer: dict, key: str | None):
    return layer["nn_distance"]["mean"] if key is None else layer[key]


def _render(result: dict) -> None:
    from rich.table import Table

    console.print(f"[bold]{result['file']}[/]: {result['n_samples']} samples, labels: {result['labels'] or 'none'}"
                  + (f", split: {result['split']}" if result["split"] else ""))
    t = Table(title="Regions and collisions", caption=REGION_CAPTION)
    t.add_column("layer")
    for title, _, _ in REGION_COLUMNS:
        t.add_column(title, justify="right")
    t.add_column(short_label("cumulative_distinct"), justify="right")
    for name, L in result["layers"].items():
        t.add_row(name, *[_fmt(_layer_value(L, k), nd) for _, k, nd in REGION_COLUMNS],
                  _fmt(result["cumulative"][name]["distinct_patterns"]))
    console.print(t)
    b = Table(title="Bit health")
    b.add_column("layer")
    for title, _, _ in BIT_COLUMNS:
        b.add_column(title, justify="right")
    for name, L in result["layers"].items():
        b.add_row(name, *[_fmt(_layer_value(L, k), nd) for _, k, nd in BIT_COLUMNS])
    console.print(b)
    if result["retrieval"]:
        r = Table(title="Retrieval")
        r.add_column("layer")
        for title, _ in RETRIEVAL_COLUMNS:
            r.add_column(title, justify="right")
        for name, R in result["retrieval"].items():
            r.add_row(name, *[_fmt(R.get(k), 4) for _, k in RETRIEVAL_COLUMNS])
        console.print(r)
    if result.get("probes"):
        p = Table(title="Probes (test accuracy; fast protocol on the file's split, not the paper's linear "
                        "evaluation: see nacscope probe)")
        for col in ("layer", *(label(k) for k in ("logistic_codes", "knn_codes", "linear_features"))):
            p.add_column(col, justify="right" if col != "layer" else "left")
        for name, P in result["probes"].items():
            p.add_row(name, _fmt(P["logistic_codes"], 4), _fmt(P["knn_codes"], 4), _fmt(P["linear_features"], 4))
        console.print(p)
    for note in result["notes"]:
        console.print(f"[dim]note: {note}[/]", highlight=False)


@app.command()
@one_line_errors
def analyze(
    file: Annotated[Path, typer.Argument(help="A code set (.h5).")],
    layer: Annotated[Optional[list[str]], typer.Option("--layer", "-l", help=_LAYER_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON on stdout (keys: docs/analysis.md).")] = False,
    rank: Annotated[Rank, typer.Option("--rank", help=_RANK_HELP)] = "hamming",  # type: ignore[assignment]
    probes: Annotated[bool, typer.Option("--probes", help="Also fit probes (logistic and k-NN on codes, linear on stored features; the fast protocol, not the paper's linear evaluation, which is nacscope probe).")] = False,
    nn_rows: Annotated[int, typer.Option("--nn-rows", help=_NN_HELP)] = 10000,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Recompute everything and do not store results in the file.")] = False,
) -> None:
    """Regions, collisions, bit health and retrieval metrics of a code set (cached in the file)."""
    from nacscope.analysis import analyze_codeset
    from nacscope.codes.format import CodeSet

    _check_nn_rows(nn_rows)
    with CodeSet(file) as cs, _progress() as progress:
        result = analyze_codeset(cs, layer, rank=rank, use_cache=not no_cache, progress=progress, nn_rows=nn_rows,
                                 probes=probes)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        _render(result)


@app.command()
@one_line_errors
def compare(
    files: Annotated[list[Path], typer.Argument(help="Code sets to compare, e.g. NAC, SimCLR, random init.")],
    layer: Annotated[Optional[list[str]], typer.Option("--layer", "-l", help="Layer to compare (default: layers common to all files).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON on stdout.")] = False,
    rank: Annotated[Rank, typer.Option("--rank", help=_RANK_HELP)] = "hamming",  # type: ignore[assignment]
    nn_rows: Annotated[int, typer.Option("--nn-rows", help=_NN_HELP)] = 10000,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Recompute and do not store results in the files.")] = False,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Also draw distinct patterns and mAP per file into this PNG.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --plot file.")] = False,
) -> None:
    """The same metrics for several code sets side by side (distinct patterns, collisions, retrieval)."""
    from nacscope.analysis import compare_codesets

    _check_nn_rows(nn_rows)
    if plot is not None:
        from nacscope.analysis.report import check_png_output
        from nacscope.codes.inputs import codeset_files

        check_png_output(plot, force=force, inputs=codeset_files(files))
    with _progress() as progress:
        res = compare_codesets([str(f) for f in files], layer, rank=rank, use_cache=not no_cache, progress=progress,
                               nn_rows=nn_rows)
    if plot is not None:
        from nacscope.analysis.report import write_compare_plot

        write_compare_plot(res, plot, force=force)
        err_console.print(f"wrote {plot}", highlight=False)
    if as_json:
        sys.stdout.write(json.dumps(res, indent=2) + "\n")
        return
    _print_compare(res)


def _print_compare(res: dict) -> None:
    """One table per layer: the metrics of every file side by side, then the files' notes."""
    from rich.table import Table

    names = [Path(f).name for f in res["files"]]
    for per_file in res["layers"]:
        title = per_file[0] if len(set(per_file)) == 1 else " / ".join(per_file)
        t = Table(title=f"layer {title}")
        t.add_column("metric")
        for n in names:
            t.add_column(n, justify="right")
        results = res["results"]
        layers = [r["layers"][ln] for r, ln in zip(results, per_file)]
        cums = [r["cumulative"][ln] for r, ln in zip(results, per_file)]
        t.add_row("samples", *[_fmt(L["n_samples"]) for L in layers])
        for title_, key, nd in LAYER_COLUMNS:
            t.add_row(title_, *[_fmt(_layer_value(L, key), nd) for L in layers])
        t.add_row("cumulative distinct", *[_fmt(c["distinct_patterns"]) for c in cums])
        t.add_row("frac. regions > 1 sample", *[_fmt(L["fraction_regions_multiple"], 4) for L in layers])
        if all(ln in r["retrieval"] for r, ln in zip(results, per_file)):
            for title_, key in RETRIEVAL_COLUMNS:
                t.add_row(title_, *[_fmt(r["retrieval"][ln].get(key), 4) for r, ln in zip(results, per_file)])
        console.print(t)
    for r, n in zip(res["results"], names):
        for note in r["notes"]:
            console.print(f"[dim]{n}: {note}[/]", highlight=False)


@app.command()
@one_line_errors
def report(
    file: Annotated[Path, typer.Argument(help="A code set (.h5).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write figures and summary.md into.")],
    layer: Annotated[Optional[list[str]], typer.Option("--layer", "-l", help=_LAYER_HELP)] = None,
    umap_layer: Annotated[Optional[str], typer.Option("--umap-layer", help="Layer drawn in the UMAP figure (default: the last).")] = None,
    no_umap: Annotated[bool, typer.Option("--no-umap", help="Skip the UMAP figure.")] = False,
    plane_rows: Annotated[Optional[str], typer.Option("--plane-rows", help="Three sample rows 'A,B,C' spanning the input plane (default: the first samples of three classes).")] = None,
    plane_method: Annotated[PlaneMethod, typer.Option("--plane-method", help="Plane partition: exact (convex polygons) or grid (sampling: a lower bound).")] = "exact",  # type: ignore[assignment]
    plane_resolution: Annotated[int, typer.Option("--plane-resolution", help="Grid points per side of the plane (--plane-method grid).")] = 100,
    no_plane: Annotated[bool, typer.Option("--no-plane", help="Skip the plane partition (it runs the network).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace the report in an existing folder (only the files a report wrote, listed in its .nacscope-report.json; nothing else is touched).")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Recompute and do not store results in the file.")] = False,
) -> None:
    """PNG figures (regions, collisions, bit rates, PR curve, UMAP, plane partition) and a Markdown summary."""
    from nacscope.analysis.report import write_report
    from nacscope.codes.format import CodeSet

    rows = None
    if plane_rows is not None:
        try:
            rows = [int(r) for r in plane_rows.split(",")]
        except ValueError:
            raise OptionError(f"--plane-rows must be three integers like 0,5,9, got {plane_rows!r}") from None
    if plane_resolution < 2:
        raise OptionError(f"--plane-resolution must be >= 2, got {plane_resolution}")
    with CodeSet(file) as cs, _progress(plain=True) as progress:
        written = write_report(cs, out, layer, umap_layer=umap_layer, umap=not no_umap, plane=not no_plane,
                               plane_rows=rows, plane_resolution=plane_resolution, plane_method=plane_method, force=force,
                               use_cache=not no_cache, progress=progress)
    console.print(f"wrote {len(written)} files to {out}: " + ", ".join(p.name for p in written), highlight=False)
