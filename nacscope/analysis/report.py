"""A report of a code set: PNG figures (matplotlib, Agg) and a short Markdown summary.

Figures: ``regions.png`` (distinct patterns per layer and cumulative), ``collisions.png`` (how many
samples share a region), ``bit_rates.png`` (sorted per-bit activation rates), ``nn_distance.png``
(nearest-neighbour Hamming distances), ``pr_curve.png`` (labelled files), ``umap.png`` (UMAP of one
layer, coloured by label), ``plane.png`` (the input plane through three samples cut into linear
regions, when the file's network and dataset are available). Everything drawn comes from :func:`nacscope.analysis.analyze_codeset` and
the cache, so the report, the JSON and the TUI agree.

A new directory is written under a temporary name and renamed when complete. Into an existing one
(only with ``force``, and only after the new report is complete) just the report's own files are moved:
the manifest ``.nacscope-report.json`` lists them, and nothing else in the folder is replaced or removed
(:mod:`nacscope.analysis.report_folder`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from nacscope.analysis.labels import label
from nacscope._files import check_output, save_png, subplots
from nacscope.errors import OptionError
from nacscope.progress import Progress

if TYPE_CHECKING:
    from nacscope.codes.format import CodeSet


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    return save_png(fig, path, dpi=110, bbox_inches="tight").name


def fig_regions(result: dict, path: Path) -> str:
    names = list(result["layers"])
    per = [result["layers"][n]["distinct_patterns"] for n in names]
    cum = [result["cumulative"][n]["distinct_patterns"] for n in names]
    x = np.arange(len(names))
    fig, ax = subplots(figsize=(max(5, 0.9 * len(names) + 2), 3.6))
    ax.bar(x - 0.2, per, 0.4, label="layer alone")
    ax.bar(x + 0.2, cum, 0.4, label="layers up to here (network region)")
    ax.axhline(result["n_samples"], color="k", lw=0.8, ls="--", label=f"samples ({result['n_samples']})")
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("distinct activation patterns")
    ax.set_title("Linear regions holding the data")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=3, frameon=False)
    return _save(fig, path)


def fig_collisions(result: dict, path: Path) -> str:
    fig, ax = subplots(figsize=(6, 3.6))
    for name, layer in result["layers"].items():
        hist = {int(k): v for k, v in layer["size_histogram"].items()}
        sizes = np.array(sorted(hist))
        ax.plot(sizes, [hist[s] for s in sizes], marker="o", ms=3, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("samples sharing one activation pattern")
    ax.set_ylabel("regions")
    ax.set_title("Region sizes (collisions are sizes >= 2)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def fig_bit_rates(rates: dict[str, np.ndarray], path: Path) -> str:
    fig, ax = subplots(figsize=(6, 3.6))
    for name, r in rates.items():
        r = np.sort(np.asarray(r))[::-1]
        ax.plot(np.linspace(0, 1, len(r)), r, label=f"{name} ({len(r)} bits)")
    ax.set_xlabel("bits, sorted by rate (fraction)")
    ax.set_ylabel("activation rate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Per-bit activation rate (0: dead, 1: stuck)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def fig_nn(result: dict, path: Path) -> str:
    fig, ax = subplots(figsize=(6, 3.6))
    for name, layer in result["layers"].items():
        hist = {int(k): v for k, v in layer["nn_distance"]["histogram"].items()}
        if hist:
            d = np.arange(max(hist) + 1)
            ax.step(d, [hist.get(int(i), 0) for i in d], where="mid", label=name)
    ax.set_xlabel("Hamming distance to the nearest other sample")
    ax.set_ylabel("samples")
    ax.set_title("Nearest-neighbour distances")
    ax.legend(fontsize=8)
    return _save(fig, path)


def fig_pr(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> str:
    fig, ax = subplots(figsize=(5, 4))
    for name, (p, r) in curves.items():
        ax.plot(r, p, marker=".", ms=3, label=name)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall by Hamming radius")
    ax.legend(fontsize=8)
    return _save(fig, path)


def fig_umap(coords: np.ndarray, labels: np.ndarray | None, title: str, path: Path) -> str:
    fig, ax = subplots(figsize=(5, 5))
    c = None
    if labels is not None:
        c = labels if labels.ndim == 1 else labels.argmax(axis=1)
    sc = ax.scatter(coords[:, 0], coords[:, 1], c=c, s=3, cmap="tab10" if c is not None else None, linewidths=0)
    if c is not None and len(np.unique(c)) <= 20:
        ax.legend(*sc.legend_elements(), fontsize=7, loc="best", markerscale=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def fig_compare(res: dict, path: Path) -> str:
    """Distinct patterns (per layer and joint) and mAP of several code sets side by side."""
    files = [Path(f).name for f in res["files"]]
    rows = res["layers"]
    labels = [r[0] if len(set(r)) == 1 else "/".join(r) for r in rows]
    has_map = all(all(ln in r["retrieval"] for r, ln in zip(res["results"], row)) for row in rows)
    fig, axes = subplots(1, 3 if has_map else 2, figsize=(5 * (3 if has_map else 2), 3.8))
    x = np.arange(len(rows))
    w = 0.8 / len(files)
    panels = [("distinct patterns (layer alone)", lambda r, ln: r["layers"][ln]["distinct_patterns"]),
              ("joint patterns up to the layer (network regions)", lambda r, ln: r["cumulative"][ln]["distinct_patterns"])]
    if has_map:
        panels.append(("mAP (Hamming ranking)", lambda r, ln: r["retrieval"][ln]["map"]))
    for ax, (title, get) in zip(axes, panels):
        for i, (name, result) in enumerate(zip(files, res["results"])):
            ax.bar(x + (i - (len(files) - 1) / 2) * w, [get(result, row[i]) for row in rows], w, label=name)
        ax.set_xticks(x, labels, rotation=30, ha="right")
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def check_png_output(out: str | os.PathLike, *, force: bool = False, inputs: Sequence[str | os.PathLike] = ()) -> Path:
    """Refuse a bad output path for a PNG before any work: wrong suffix, an input (see
    :func:`nacscope._files.check_output`), existing file, missing folder."""
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise OptionError(f"the plot is a PNG file: name it *.png, not {out.name}")
    return check_output(out, force=force, inputs=inputs)


def write_compare_plot(res: dict, out: str | os.PathLike, *, force: bool = False) -> Path:
    """Draw :func:`fig_compare` into ``out`` (PNG), written under a temporary name and renamed."""
    from nacscope.codes.inputs import codeset_files

    out = check_png_output(out, force=force, inputs=codeset_files(res["files"]))
    fig_compare(res, out)  # saved by save_png: under a partial name, then renamed
    return out


def default_plane_rows(labels: np.ndarray | None, n: int) -> list[int]:
    """Three anchor rows: the first samples of three different classes (rows 0, 1, 2 without labels)."""
    if labels is None or labels.ndim != 1:
        return [0, 1, 2]
    rows: list[int] = []
    for r, y in enumerate(labels):
        if all(labels[q] != y for q in rows):
            rows.append(r)
            if len(rows) == 3:
                return rows
    return [0, 1, 2]


def check_plane_rows(rows: Sequence[int], n: int) -> list[int]:
    """Three distinct rows of the file, or a one-line error."""
    rows = [int(r) for r in rows]
    if len(rows) != 3 or len(set(rows)) != 3:
        raise OptionError(f"a plane needs three different sample rows, got {rows}")
    bad = [r for r in rows if not 0 <= r < n]
    if bad:
        raise OptionError(f"plane rows {bad} out of range: the file has {n} samples (rows 0..{n - 1})")
    return rows


def fig_plane(cs: "CodeSet", rows: Sequence[int], path: Path, *, method: str = "exact", resolution: int = 100,
              progress: Progress | None = None) -> tuple[str, int]:
    """Partition of the input plane through three samples of the file, drawn into ``path``.

    ``method="exact"`` (default) cuts the plane into the convex polygons of
    :func:`nacscope.analysis.partition.exact_plane_partition` (edges drawn, faces coloured by pattern
    hash, anchors marked); ``"grid"`` samples ``resolution`` x ``resolution`` points (a lower bound,
    labelled so). The network and the inputs are rebuilt from the file's provenance (checkpoint or
    seeded random init, dataset and split), as the TUI does; raises CheckpointError / DataError when
    they are not available here.

    Returns:
        (file name, number of regions: exact faces, or distinct grid patterns).
    """
    from nacscope.analysis.partition_plot import plot_partitions
    from nacscope.codes.sources import rebuild

    attrs = cs.attrs
    model, x = rebuild(cs, list(rows))  # verified: re-captures the file's bits of stored rows
    if method == "exact":
        from nacscope.analysis.partition import exact_plane_partition

        res = exact_plane_partition(model, x, progress=progress)
        n = res.n_faces
    else:
        from nacscope.analysis.plane import plane_regions

        res = plane_regions(model, x, resolution=resolution)
        n = int(res.n_regions)
    labels = cs.labels()
    names = cs.class_names
    tags = []
    for r in rows:
        tag = f"row {r}"
        if labels is not None and labels.ndim == 1:
            y = int(labels[r])
            tag += f" ({names[y] if names and 0 <= y < len(names) else y})"
        tags.append(tag)
    plot_partitions([(f"{Path(str(attrs.get('checkpoint') or cs.path.name)).name}: every ReLU site", res)], path,
                    anchor_labels=tags)
    return path.name, n


_LAYER_KEYS = ("n_bits", "distinct_patterns", "cumulative_distinct", "collision_groups", "samples_in_collisions",
               "largest_group", "mixed_label_groups", "dead_bits", "stuck_bits", "bit_entropy", "effective_bits")


def _markdown(result: dict, figures: list[str], umap_info: dict | None, plane_info: str | None = None) -> str:
    lines = [f"# nacscope report: {Path(result['file']).name}", "",
             f"{result['n_samples']} samples; labels: {result['labels'] or 'none'}; "
             f"retrieval split: {result['split'] or 'n/a'}.", "",
             "| layer | " + " | ".join(label(k) for k in _LAYER_KEYS) + " |",
             "|---|" + "---|" * len(_LAYER_KEYS)]

    def f(v, nd=2):
        return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))

    for name, L in result["layers"].items():
        lines.append(f"| {name} | {L['n_bits']} | {L['distinct_patterns']} | {result['cumulative'][name]['distinct_patterns']} | "
                     f"{L['collision_groups']} | {L['samples_in_collisions']} | {L['largest_group']} | "
                     f"{f(L['mixed_label_groups'])} | {L['dead_bits']} | {L['stuck_bits']} | {f(L['bit_entropy'], 1)} | "
                     f"{f(L['effective_bits'], 1)} |")
    if result["retrieval"]:
        keys = ("map", "map_at_1000", "tie_aware_map", "precision_at_100", "precision_radius_2", "knn_accuracy")
        lines += ["", "| layer | " + " | ".join(label(k) for k in keys) + " |", "|---|" + "---|" * len(keys)]
        for name, R in result["retrieval"].items():
            lines.append(f"| {name} | {f(R['map'], 4)} | {f(R['map_at_1000'], 4)} | {f(R['tie_aware_map'], 4)} | "
                         f"{f(R['precision_at_100'], 4)} | {f(R['precision_radius_2'], 4)} | {f(R['knn_accuracy'], 4)} |")
    if umap_info is not None:
        lines += ["", f"UMAP ({umap_info['name']}, seed {umap_info['params']['seed']}, "
                      f"n_neighbors {umap_info['params']['n_neighbors']}): trustworthiness "
                      f"{f(umap_info['trustworthiness'], 3)}."]
    if plane_info:
        lines += ["", plane_info]
    if result["notes"]:
        lines += ["", "Notes:", *[f"- {n}" for n in result["notes"]]]
    lines += ["", "Figures:", *[f"- ![{x}]({x})" for x in figures], ""]
    return "\n".join(lines)


def write_report(
    cs: "CodeSet", out_dir: str | os.PathLike, layers: Sequence[str] | None = None, *, umap_layer: str | None = None,
    umap: bool = True, plane: bool = True, plane_rows: Sequence[int] | None = None, plane_resolution: int = 100,
    plane_method: str = "exact",
    force: bool = False, use_cache: bool = True, progress: Progress | None = None,
) -> list[Path]:
    """Write figures and ``summary.md`` for a code set into ``out_dir``; returns the files written.

    The plane figure (``plane.png``) needs the network and dataset the file was dumped from: with
    ``plane_rows`` given, their absence is an error; by default (anchors: the first samples of three
    classes) the figure is skipped with a line in ``summary.md`` saying why.
    """
    from nacscope.analysis.engine import analyze_codeset, analyze_layer, analyze_retrieval, check_layers
    from nacscope.analysis.report_folder import ReportFolder
    from nacscope.codes.inputs import codeset_files

    folder = ReportFolder(out_dir, force=force, inputs=codeset_files(cs.path))
    names = check_layers(cs, layers)
    if umap_layer is not None:
        check_layers(cs, [umap_layer])
    if plane_resolution < 2:
        raise OptionError(f"must be >= 2, got {plane_resolution}", option="plane_resolution")
    if plane_method not in ("exact", "grid"):
        raise OptionError(f"must be exact or grid, got {plane_method!r}", option="plane_method")
    explicit_plane = plane_rows is not None
    if plane:
        plane_rows = check_plane_rows(plane_rows, cs.n_samples) if explicit_plane else (
            default_plane_rows(cs.labels(), cs.n_samples) if cs.n_samples >= 3 else None)
        missing = [k for k in ("checkpoint", "dataset") if not cs.attrs.get(k)]
        if missing and explicit_plane:  # refuse before the long work, not after it
            raise OptionError(f"{cs.path.name} records no {' and no '.join(missing)}: the plane partition needs the "
                              "network and inputs it was dumped from (use --no-plane)")
    result = analyze_codeset(cs, names, use_cache=use_cache, progress=progress)
    tmp = folder.stage()
    try:
        figures = [fig_regions(result, tmp / "regions.png"), fig_collisions(result, tmp / "collisions.png")]
        rates = {n: analyze_layer(cs, n, use_cache=use_cache)[1]["rates"] for n in names}
        figures.append(fig_bit_rates(rates, tmp / "bit_rates.png"))
        figures.append(fig_nn(result, tmp / "nn_distance.png"))
        if result["retrieval"]:
            curves = {}
            for n in names:
                arrays = analyze_retrieval(cs, n, use_cache=use_cache)[1]  # type: ignore[index]
                curves[n] = (arrays["pr_precision"], arrays["pr_recall"])
            figures.append(fig_pr(curves, tmp / "pr_curve.png"))
        umap_info = None
        if umap and cs.n_samples >= 3:
            from nacscope.analysis.projection import umap_projection

            layer = umap_layer or names[-1]
            coords, umap_info = umap_projection(cs, layer, use_cache=use_cache, progress=progress)
            tw = umap_info["trustworthiness"]
            title = f"UMAP of layer {layer} (Hamming distance of codes)" + (f", trustworthiness {tw:.3f}" if tw is not None else "")
            figures.append(fig_umap(coords, cs.labels(), title, tmp / "umap.png"))
        plane_info = None
        if plane and plane_rows is not None:
            from nacscope.errors import NacscopeError

            try:
                name, n_regions = fig_plane(cs, plane_rows, tmp / "plane.png", method=plane_method,
                                            resolution=plane_resolution, progress=progress)
                figures.append(name)
                how = ("exact (convex polygons)" if plane_method == "exact" else
                       f"a lower bound: distinct patterns on a {plane_resolution} x {plane_resolution} grid")
                plane_info = (f"Plane through rows {', '.join(map(str, plane_rows))}: {n_regions} linear regions, "
                              f"{how} (every ReLU site).")
            except NacscopeError as exc:
                if explicit_plane:
                    raise
                plane_info = f"Plane partition skipped: {exc}"
        (tmp / "summary.md").write_text(_markdown(result, figures, umap_info, plane_info))
        return folder.commit([*figures, "summary.md"])
    except BaseException:
        folder.discard()
        raise
