"""The analysis of a whole code set: what ``nacscope analyze --json`` prints and the TUI shows.

Every block is cached in the file (``/analysis/<key>``) with the parameters that produced it and is
recomputed only when they change (or the file's sample count does). Keys:

* ``layer.<name>``: regions, collisions, near-collisions, nearest-neighbour distances, bit health
  (arrays ``group_of`` (N,), ``rates`` (units,), ``nn`` (n_nn,), ``nn_rows`` (n_nn,)).
* ``retrieval.<name>``: retrieval metrics (arrays ``ap``, ``ap_at_r``, ``tie_ap``, ``knn_correct``,
  ``query_rows``, ``pr_precision``, ``pr_recall``).
* ``cumulative``: distinct joint patterns of the layers up to each layer.
* ``probes.<name>``: probe accuracies.

The JSON keys are documented in ``docs/analysis.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from nacscope.analysis.bits import bit_health, bit_health_summary
from nacscope.analysis.cached import ALGORITHM_VERSION, cache_key, cached_or_compute, well_formed
from nacscope.analysis.collisions import collision_groups, neighbour_stats, nn_histogram
from nacscope.analysis.patterns import cumulative_distinct, region_stats
from nacscope.analysis.retrieval import RANKS
from nacscope.analysis import scale
from nacscope.analysis.scale import nn_row_count, subset_retrieval
from nacscope.errors import CodeSetError, OptionError
from nacscope.progress import Progress, prefixed

if TYPE_CHECKING:
    from nacscope.codes.format import CodeSet

NEAR_RADII = (1, 2)
#: Samples whose nearest-neighbour distances are computed (a seeded random subset above this).
DEFAULT_NN_ROWS = 10000
RETRIEVAL_R = 1000
RETRIEVAL_K = 100
RETRIEVAL_RADIUS = 2
KNN_K = 10
#: Keys of a ``layers.<name>`` block (what readers of a cached block rely on).
LAYER_KEYS = ("n_samples", "n_bits", "kind", "distinct_patterns", "distinct_fraction", "regions_with_multiple_samples",
              "fraction_regions_multiple", "largest_region", "size_histogram", "collision_groups",
              "samples_in_collisions", "largest_group", "mixed_label_groups", "samples_in_mixed_groups",
              "mean_group_purity", "near_collisions", "nn_rows", "nn_distance", "dead_bits", "stuck_bits",
              "bit_entropy", "mean_bit_entropy", "mean_rate", "mean_abs_correlation", "effective_bits")
#: Keys of a ``retrieval.<name>`` block that do not depend on R, k and the radius.
RETRIEVAL_KEYS = ("rank", "split", "n_queries", "n_gallery", "query_subset", "map", "map_skip_no_relevant",
                  "queries_without_relevant", "tie_aware_map", "knn_accuracy", "knn_k", "mean_relevant", "notes")
RETRIEVAL_ARRAYS = ("ap", "ap_at_r", "tie_ap", "knn_correct", "query_rows", "pr_precision", "pr_recall")


def check_layers(cs: "CodeSet", layers: Sequence[str] | None) -> list[str]:
    """The requested layers (all if None), each checked to exist; an empty file is refused."""
    if cs.n_samples == 0:
        raise CodeSetError(f"{cs.path.name} has no samples: nothing to analyse (was the dump interrupted?)")
    names = cs.layer_names
    if not layers:
        return names
    out = []
    for name in layers:
        if name not in names:
            raise CodeSetError(f"no layer {name!r} in {cs.path.name}; available: {', '.join(names)}")
        if name not in out:
            out.append(name)
    return out


# --------------------------------------------------------------------------------------------------
# per-layer blocks
# --------------------------------------------------------------------------------------------------
def analyze_layer(
    cs: "CodeSet", name: str, *, nn_rows: int = DEFAULT_NN_ROWS, use_cache: bool = True,
    progress: Progress | None = None,
) -> tuple[dict, dict[str, np.ndarray]]:
    """Regions, collisions, near-collisions, nearest-neighbour distances and bit health of one layer.

    Returns:
        ``(summary, arrays)``: the JSON block ``layers.<name>`` and arrays ``group_of`` (N,) pattern
        id per sample, ``rates`` (units,), ``nn`` Hamming distance to the nearest other sample for the
        samples ``nn_rows``.
    """
    info = cs.layer(name)
    nn_rows = int(nn_rows)
    if nn_rows < 1:
        raise OptionError(f"nn_rows must be >= 1, got {nn_rows}")
    nn_rows = nn_row_count(cs.n_samples, nn_rows)  # within MAX_PAIRS pairs on large files
    params = {"v": ALGORITHM_VERSION, "what": "layer", "layer": name, "units": info.units, "radii": list(NEAR_RADII),
              "nn_rows": nn_rows}

    def compute():
        packed = cs.packed(name)
        labels = cs.labels()
        n = len(packed)
        rep = collision_groups(packed, labels)
        regions = region_stats(rep.group_of, np.bincount(rep.group_of))
        if n > nn_rows:
            rows = np.sort(np.random.default_rng(0).choice(n, nn_rows, replace=False))
        else:
            rows = np.arange(n)
        nn, within = neighbour_stats(packed, NEAR_RADII, rows=rows, progress=prefixed(progress, name))
        scale = n / max(1, len(rows))
        near = {
            str(r): {
                "samples": int(round((within[i] > 0).sum() * scale)),
                "pairs": int(round(within[i].sum() * scale / 2)),
            }
            for i, r in enumerate(NEAR_RADII)
        }
        health = bit_health(packed, info.units, progress=prefixed(progress, name))
        valid = nn[nn >= 0]
        summary = {
            "n_samples": n,
            "n_bits": info.units,
            "kind": info.kind,
            **regions,
            **rep.summary(),
            "near_collisions": near,
            "nn_rows": int(len(rows)),
            "nn_distance": {
                "mean": float(valid.mean()) if len(valid) else None,
                "median": float(np.median(valid)) if len(valid) else None,
                "min": int(valid.min()) if len(valid) else None,
                "max": int(valid.max()) if len(valid) else None,
                "histogram": nn_histogram(valid),
            },
            **bit_health_summary(health),
        }
        arrays = {"group_of": rep.group_of, "rates": health["rates"], "nn": nn, "nn_rows": rows}
        return summary, arrays

    def check(result, arrays) -> bool:
        return well_formed(result, arrays, LAYER_KEYS, {"group_of": cs.n_samples, "rates": info.units, "nn": None,
                                                        "nn_rows": None})

    return cached_or_compute(cs, cache_key("layer", name), params, use_cache, compute, check)


def analyze_retrieval(
    cs: "CodeSet", name: str, *, rank: str = "hamming", R: int = RETRIEVAL_R, k: int = RETRIEVAL_K,
    radius: int = RETRIEVAL_RADIUS, knn_k: int = KNN_K, use_cache: bool = True, progress: Progress | None = None,
) -> tuple[dict, dict[str, np.ndarray]] | None:
    """Retrieval metrics of one layer (``retrieval.<name>`` of the JSON); None for a file without labels."""
    if rank not in RANKS:
        raise OptionError(f"must be one of {', '.join(RANKS)}, got {rank!r}", option="rank")
    if cs.labels() is None:
        return None
    mask = cs.query_mask
    split = "query" if mask is not None and mask.any() and (~mask).any() else "leave-one-out"
    params = {"v": ALGORITHM_VERSION, "what": "retrieval", "layer": name, "rank": rank, "R": R, "k": k,
              "radius": radius, "knn_k": knn_k, "split": split, "max_pairs": scale.MAX_PAIRS}

    def compute():
        sub = subset_retrieval(cs, name, R=R, ks=(k,), radius=radius, knn_k=knn_k, rank=rank,
                               progress=prefixed(progress, f"{name} retrieval"))
        assert sub is not None
        res = sub.result
        summary = res.summary()
        # Stable names for the JSON whatever the gallery size (R and k are clipped to it).
        summary = {
            "rank": summary["rank"],
            "split": split,
            "n_queries": summary["n_queries"],
            "n_gallery": sub.n_gallery,
            "query_subset": sub.subset,
            "map": summary["map"],
            "map_skip_no_relevant": summary["map_skip_no_relevant"],
            "queries_without_relevant": summary["queries_without_relevant"],
            f"map_at_{R}": summary[f"map_at_{res.R}"],
            "tie_aware_map": summary["tie_aware_map"],
            f"precision_at_{k}": summary[f"precision_at_{res.ks[0]}"],
            f"precision_radius_{radius}": summary[f"precision_radius_{radius}"],
            "knn_accuracy": summary["knn_accuracy"],
            "knn_k": res.knn_k,
            "mean_relevant": summary["mean_relevant"],
            "notes": res.notes,
        }
        arrays = {"ap": res.ap, "ap_at_r": res.ap_at_r, "tie_ap": res.tie_ap, "knn_correct": res.knn_correct,
                  "query_rows": sub.query_rows, "pr_precision": res.pr_precision, "pr_recall": res.pr_recall}
        return summary, arrays

    def check(result, arrays) -> bool:
        keys = (*RETRIEVAL_KEYS, f"map_at_{R}", f"precision_at_{k}", f"precision_radius_{radius}")
        return well_formed(result, arrays, keys, dict.fromkeys(RETRIEVAL_ARRAYS))

    return cached_or_compute(cs, cache_key("retrieval", name), params, use_cache, compute, check)


def analyze_cumulative(
    cs: "CodeSet", layers: Sequence[str], *, use_cache: bool = True, progress: Progress | None = None,
    group_of: dict[str, np.ndarray] | None = None,
) -> dict[str, dict]:
    """The ``cumulative`` block of the JSON: :func:`~nacscope.analysis.patterns.cumulative_distinct`, cached.

    Computed (and cached once) for every layer of the file, reported for ``layers``. ``group_of``
    (per-layer pattern ids, e.g. from :func:`analyze_layer`) avoids grouping those bits again.
    """
    keys = ("distinct_patterns", "distinct_fraction", "regions_with_multiple_samples", "fraction_regions_multiple",
            "largest_region")
    params = {"v": ALGORITHM_VERSION, "what": "cumulative", "layers": cs.layer_names}

    def compute():
        full = cumulative_distinct(cs, None, group_of=group_of, progress=progress)
        return {name: {k: st[k] for k in keys} for name, st in full.items()}, {}

    def check(result, arrays) -> bool:
        return isinstance(result, dict) and all(well_formed(result.get(n), {}, keys) for n in cs.layer_names)

    full = cached_or_compute(cs, "cumulative", params, use_cache, compute, check)[0]
    return {name: full[name] for name in layers}


# --------------------------------------------------------------------------------------------------
# the whole file
# --------------------------------------------------------------------------------------------------
def analyze_codeset(
    cs: "CodeSet",
    layers: Sequence[str] | None = None,
    *,
    rank: str = "hamming",
    use_cache: bool = True,
    progress: Progress | None = None,
    nn_rows: int = DEFAULT_NN_ROWS,
    retrieval: bool = True,
    probes: bool = False,
) -> dict:
    """Analyse a code set: exactly the JSON that ``nacscope analyze --json`` prints.

    Args:
        cs: an open code set.
        layers: layer names (all, in file order, if None); unknown names raise a CodeSetError that
            lists the available ones.
        rank: retrieval ranking, "hamming" (default) or "dot" (the NAC authors' {0,1} dot product).
        use_cache: read and store results in the file (``/analysis``), keyed by their parameters.
        progress: ``progress(done, total, message)``; raise from it to cancel.
        nn_rows: nearest-neighbour statistics use at most this many samples as queries.
        retrieval: compute the retrieval block (labelled files only).
        probes: also fit the code probes (logistic regression and k-NN on codes, linear on features).

    Returns:
        ``{"file", "n_samples", "labels", "split", "layers": {name: {...}}, "cumulative": {name: {...}},
        "retrieval": {name: {...}}, "probes": {...}, "notes": [...]}`` (see ``docs/analysis.md``).
    """
    names = check_layers(cs, layers)
    if rank not in RANKS:
        raise OptionError(f"must be one of {', '.join(RANKS)}, got {rank!r}", option="rank")
    notes: list[str] = [cs.progress_note()] if not cs.complete else []  # never pass a .partial off as the file
    mask = cs.query_mask
    has_split = mask is not None and bool(mask.any()) and bool((~mask).any())
    out: dict[str, Any] = {
        "file": str(cs.path),
        "n_samples": cs.n_samples,
        "labels": cs.label_kind,
        "split": ("query" if has_split else "leave-one-out") if cs.label_kind else None,
        "n_queries": int(mask.sum()) if has_split else None,
        "layers": {},
        "cumulative": {},
        "retrieval": {},
        "notes": notes,
    }
    groups: dict[str, np.ndarray] = {}
    for name in names:
        summary, arrays = analyze_layer(cs, name, nn_rows=nn_rows, use_cache=use_cache, progress=progress)
        out["layers"][name] = summary
        groups[name] = arrays["group_of"]
        if summary["nn_rows"] < summary["n_samples"]:
            notes.append(f"{name}: near-collisions and nearest-neighbour distances estimated from "
                         f"{summary['nn_rows']} random samples")
    out["cumulative"] = analyze_cumulative(cs, names, use_cache=use_cache, progress=progress, group_of=groups)
    if cs.label_kind is None:
        notes.append("no labels: retrieval skipped")
    elif cs.n_samples < 2:
        notes.append("one sample: retrieval and probes skipped")
    elif retrieval:
        for name in names:
            res = analyze_retrieval(cs, name, rank=rank, use_cache=use_cache, progress=progress)
            assert res is not None
            out["retrieval"][name] = res[0]
            if res[0].get("query_subset"):
                qs = res[0]["query_subset"]
                notes.append(f"{name}: retrieval on a seeded random subset of {qs['n_queries']} of {qs['of']} queries "
                             f"(gallery: {qs['gallery']})")
        if rank == "dot":
            notes.append("retrieval ranked by the dot product of {0,1} codes (the NAC authors' protocol)")
        else:
            notes.append("retrieval ranked by Hamming distance, ties by gallery index")
    if probes and cs.n_samples >= 2:
        from nacscope.analysis.probes import analyze_probes

        if cs.label_kind != "class":
            notes.append("probes need class labels: skipped")
        else:
            out["probes"] = {name: analyze_probes(cs, name, use_cache=use_cache, progress=progress) for name in names}
    return out


def compare_codesets(
    paths: Sequence[str], layers: Sequence[str] | None = None, *, rank: str = "hamming", use_cache: bool = True,
    progress: Progress | None = None, nn_rows: int = DEFAULT_NN_ROWS,
) -> dict:
    """Analyse several code sets on the same layers, for side-by-side comparison.

    The layers compared are ``layers`` if given (each must exist in every file), else those common
    to all files; when the files share no layer name, each file's last layer is compared.

    Returns:
        ``{"files": [path, ...], "layers": [[name per file], ...], "results": [analyze_codeset(...) per file]}``.
    """
    from nacscope.codes.format import CodeSet

    if len(paths) < 1:
        raise OptionError("compare needs at least one file")
    per_file: list[list[str]] = []
    for p in paths:  # check every file and layer before the long work starts
        with CodeSet(p) as cs:
            if layers:
                per_file.append(check_layers(cs, layers))
            else:
                check_layers(cs, None)
                per_file.append(cs.layer_names)
    if not layers:
        common = [n for n in per_file[0] if all(n in names for names in per_file[1:])]
        per_file = [common] * len(paths) if common else [[names[-1]] for names in per_file]
    results = []
    for p, names in zip(paths, per_file):  # one file open at a time (the same file may be named twice)
        with CodeSet(p) as cs:
            results.append(analyze_codeset(cs, names, rank=rank, use_cache=use_cache, nn_rows=nn_rows,
                                           progress=prefixed(progress, cs.path.name)))
    rows = [list(t) for t in zip(*per_file)]
    return {"files": [str(p) for p in paths], "layers": rows, "results": results}
