"""Analyses of code sets: linear regions, collisions, bit health, Hamming retrieval, UMAP, probes.

Everything ``nacscope analyze`` prints and the TUI shows is computed here. Functions take packed bits
((N, row_bytes) uint8, ``np.packbits`` big bit order) or an open :class:`~nacscope.codes.CodeSet`.
Long functions accept ``progress(done, total, message)``; raising from it cancels them.

The input-space region analyses (:mod:`nacscope.analysis.segments`, :mod:`nacscope.analysis.plane`)
need torch; their functions are re-exported here lazily, so that importing this package stays light.
"""

from nacscope.analysis.bits import bit_health
from nacscope.analysis.collisions import (
    CollisionReport,
    collision_groups,
    near_collisions,
    neighbour_stats,
    nn_hamming_distances,
)
from nacscope.analysis.engine import (
    analyze_codeset,
    analyze_cumulative,
    analyze_layer,
    analyze_retrieval,
    compare_codesets,
)
from nacscope.analysis.hamming import hamming_distances
from nacscope.analysis.probes import knn_code_probe, linear_probe, logistic_code_probe
from nacscope.analysis.projection import trustworthiness, umap_projection
from nacscope.analysis.regions import cumulative_distinct, distinct_patterns, region_sizes
from nacscope.analysis.retrieval import (
    RetrievalResult,
    average_precision_per_query,
    hamming_topk,
    knn_accuracy,
    mean_average_precision,
    neighbours,
    pr_curve,
    precision_at_k,
    precision_within_radius,
    retrieval_metrics,
)

#: Re-exported on first access (module -> names), see ``__getattr__``.
_LAZY = {
    "nacscope.analysis.segments": (
        "SegmentRegions", "check_piecewise_linear", "count_regions_dense", "count_regions_exact", "patterns_along",
        "sample_pairs",
    ),
    "nacscope.analysis.plane": ("PlaneRegions", "plane_points", "plane_regions", "plot_planes", "region_colors"),
}
_LAZY_NAMES = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str):
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'nacscope.analysis' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    *_LAZY_NAMES,
    "CollisionReport",
    "RetrievalResult",
    "analyze_codeset",
    "analyze_cumulative",
    "analyze_layer",
    "analyze_retrieval",
    "average_precision_per_query",
    "bit_health",
    "collision_groups",
    "compare_codesets",
    "cumulative_distinct",
    "distinct_patterns",
    "hamming_distances",
    "hamming_topk",
    "knn_accuracy",
    "knn_code_probe",
    "linear_probe",
    "logistic_code_probe",
    "mean_average_precision",
    "near_collisions",
    "neighbour_stats",
    "neighbours",
    "nn_hamming_distances",
    "pr_curve",
    "precision_at_k",
    "precision_within_radius",
    "region_sizes",
    "retrieval_metrics",
    "trustworthiness",
    "umap_projection",
]
