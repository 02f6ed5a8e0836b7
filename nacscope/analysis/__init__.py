"""Analyses of code sets: linear regions, collisions, bit health, Hamming retrieval, UMAP, probes.

Everything ``nacscope analyze`` prints and the TUI shows is computed here. Functions take packed bits
((N, row_bytes) uint8, ``np.packbits`` big bit order) or an open :class:`~nacscope.codes.CodeSet`.
Long functions accept ``progress(done, total, message)``; raising from it cancels them.

Two meanings of "regions" are kept apart: :mod:`.regions` counts the distinct activation patterns
*the data* falls into; :mod:`.segments` and :mod:`.plane` count the *input-space* linear regions
along a segment or in a plane (they need torch).

Every name is re-exported lazily (module ``__getattr__``), so that importing one submodule, such as
:mod:`.labels` from the CLI, loads neither numpy nor torch.
"""

from __future__ import annotations

from nacscope._lazy import lazy_exports

_MODULES = {
    "nacscope.analysis.bits": ("bit_health",),
    "nacscope.analysis.collisions": ("CollisionReport", "collision_groups", "near_collisions", "neighbour_stats",
                                     "nn_hamming_distances"),
    "nacscope.analysis.engine": ("analyze_codeset", "analyze_cumulative", "analyze_layer", "analyze_retrieval",
                                 "compare_codesets"),
    "nacscope.analysis.hamming": ("hamming_distances",),
    "nacscope.analysis.probes": ("knn_code_probe", "linear_probe", "logistic_code_probe"),
    "nacscope.analysis.projection": ("trustworthiness", "umap_projection"),
    "nacscope.analysis.patterns": ("cumulative_distinct", "distinct_patterns", "region_sizes"),
    "nacscope.analysis.retrieval": ("RetrievalResult", "average_precision_per_query", "hamming_topk", "knn_accuracy",
                                    "mean_average_precision", "neighbours", "pr_curve", "precision_at_k",
                                    "precision_within_radius", "retrieval_metrics"),
    "nacscope.analysis.segments": ("SegmentRegions", "check_piecewise_linear", "count_regions_dense",
                                   "count_regions_exact", "patterns_along", "sample_pairs"),
    "nacscope.analysis.plane": ("PlaneRegions", "plane_points", "plane_regions", "plot_planes", "region_colors"),
    "nacscope.analysis.linear_eval": ("LinearEvalConfig", "LinearEvalResult", "linear_eval", "probe_checkpoint"),
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
