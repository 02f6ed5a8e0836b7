"""Analyses of code sets: linear regions, collisions, bit health, Hamming retrieval, UMAP, probes.

Everything ``nacscope analyze`` prints and the TUI shows is computed here. Functions take packed bits
((N, row_bytes) uint8, ``np.packbits`` big bit order) or an open :class:`~nacscope.codes.CodeSet`.
Long functions accept ``progress(done, total, message)``; raising from it cancels them.
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

__all__ = [
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
