"""Human labels for the analysis engine's result keys: one table for ``analyze``, ``report`` and the TUI.

Every key of ``nacscope analyze --json`` that a face shows has a :class:`Label`: a full label (table
headers with room, detail panels, reports) and a short one (narrow columns). Keys with a number in
them (``map_at_1000``, ``precision_at_100``, ``precision_radius_2``) are labelled by pattern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Label:
    """How one result key is shown."""

    full: str
    short: str
    help: str = ""


LABELS: dict[str, Label] = {
    # layers.<name>
    "n_samples": Label("samples", "samples"),
    "n_bits": Label("bits", "bits", "units of the layer (one bit each)"),
    "units": Label("units", "units"),
    "kind": Label("kind", "kind"),
    "distinct_patterns": Label("distinct patterns", "distinct", "activation patterns (codes) that occur"),
    "cumulative_distinct": Label("distinct, layers up to here", "joint",
                                 "distinct patterns of all layers up to this one (the network's region)"),
    "regions_with_multiple_samples": Label("patterns with >1 sample", ">1 smp"),
    "fraction_regions_multiple": Label("fraction of patterns with >1 sample", "frac >1"),
    "collision_groups": Label("collision groups", "groups", "sets of >= 2 samples sharing one code"),
    "samples_in_collisions": Label("samples in collisions", "in grp"),
    "largest_group": Label("largest group", "largest"),
    "mixed_label_groups": Label("mixed-label groups", "mixed", "collision groups whose members carry different labels"),
    "samples_in_mixed_groups": Label("samples in mixed-label groups", "in mixed"),
    "mean_group_purity": Label("mean group purity", "purity"),
    "near_collisions": Label("near-collisions", "near"),
    "nn_distance": Label("nearest-neighbour distance", "NN", "Hamming distance to the nearest other sample"),
    "nn_rows": Label("samples used for nearest neighbours", "NN rows"),
    "dead_bits": Label("dead bits", "dead", "bits never on"),
    "stuck_bits": Label("stuck bits", "stuck", "bits always on"),
    "bit_entropy": Label("bit entropy (bits)", "entropy", "sum of the bits' binary entropies"),
    "mean_bit_entropy": Label("mean bit entropy", "H/bit"),
    "mean_rate": Label("mean activation rate", "mean rate"),
    "effective_bits": Label("effective bits", "eff. bits", "decorrelated bits (participation ratio)"),
    "mean_abs_correlation": Label("mean |correlation| of bits", "mean |corr|"),
    # retrieval.<name>
    "rank": Label("ranking", "rank"),
    "split": Label("split", "split"),
    "n_queries": Label("queries", "queries"),
    "n_gallery": Label("gallery size", "gallery"),
    "map": Label("mAP", "mAP", "mean average precision over the whole gallery"),
    "map_skip_no_relevant": Label("mAP, queries with a relevant item", "mAP*",
                                  "mAP over the queries that have at least one relevant item (the NAC authors' averaging)"),
    "queries_without_relevant": Label("queries without a relevant item", "no rel."),
    "tie_aware_map": Label("tie-aware mAP", "tie-aware mAP", "mAP averaged over the orders of tied distances"),
    "knn_accuracy": Label("k-NN accuracy", "k-NN acc"),
    "knn_k": Label("k of k-NN", "k"),
    "mean_relevant": Label("relevant items per query (mean)", "relevant"),
    # probes.<name>
    "logistic_codes": Label("logistic on codes", "logistic"),
    "knn_codes": Label("k-NN on codes", "k-NN"),
    "linear_features": Label("linear on features", "linear"),
}

_PATTERNS: tuple[tuple[re.Pattern, str, str], ...] = (
    (re.compile(r"map_at_(\d+)$"), "mAP@{0}", "mAP@{0}"),
    (re.compile(r"precision_at_(\d+)$"), "precision@{0}", "P@{0}"),
    (re.compile(r"precision_radius_(\d+)$"), "precision within radius {0}", "P(r<={0})"),
)


def label_of(key: str) -> Label:
    """The :class:`Label` of a result key (a readable fallback for a key not in the table)."""
    if key in LABELS:
        return LABELS[key]
    for pattern, full, short in _PATTERNS:
        m = pattern.match(key)
        if m:
            return Label(full.format(*m.groups()), short.format(*m.groups()))
    text = key.replace("_", " ")
    return Label(text, text)


def label(key: str) -> str:
    """The full human label of a result key, e.g. ``"tie_aware_map"`` -> ``"tie-aware mAP"``."""
    return label_of(key).full


def short_label(key: str) -> str:
    """The short label of a result key, for narrow columns, e.g. ``"samples_in_collisions"`` -> ``"in grp"``."""
    return label_of(key).short
