"""Human labels for the analysis engine's metric keys: one table shared by the TUI, ``analyze`` and ``report``.

Each key has a label (``label``) and a short form for narrow table columns (``short_label``). Keys with a
parameter in their name (``map_at_100``, ``precision_at_10``, ``precision_radius_2``) are labelled by
pattern. An unknown key falls back to its words (underscores as spaces), never to nothing.
"""

from __future__ import annotations

import re

#: key -> (label, short label)
LABELS: dict[str, tuple[str, str]] = {
    # retrieval
    "map": ("mean average precision", "mAP"),
    "tie_aware_map": ("mAP, ties averaged", "mAP (ties)"),
    "knn_accuracy": ("k-NN accuracy", "kNN acc"),
    "knn_k": ("neighbours voting (k)", "k"),
    "mean_relevant": ("relevant items per query (mean)", "relevant"),
    "n_queries": ("queries", "queries"),
    "n_gallery": ("gallery items", "gallery"),
    "rank": ("ranking", "rank"),
    "split": ("split", "split"),
    # layers
    "layer": ("layer", "layer"),
    "kind": ("kind", "kind"),
    "units": ("units (bits)", "bits"),
    "n_samples": ("samples", "samples"),
    "n_bits": ("bits", "bits"),
    "distinct_patterns": ("distinct patterns", "distinct"),
    "cumulative_distinct": ("distinct patterns, layers up to here", "cum."),
    "samples_in_collisions": ("samples sharing a pattern", "collided"),
    "largest_group": ("largest shared-pattern group", "max grp"),
    "collision_groups": ("shared-pattern groups", "groups"),
    "mixed_label_groups": ("groups with mixed labels", "mixed"),
    "dead_bits": ("bits never on", "dead"),
    "stuck_bits": ("bits always on", "stuck"),
    "bit_entropy": ("bit entropy (bits)", "entropy"),
    "mean_rate": ("mean firing rate", "rate"),
    "effective_bits": ("effective bits", "eff. bits"),
    "mean_abs_correlation": ("mean |correlation| of bits", "|corr|"),
}

_PATTERNS = (
    (re.compile(r"map_at_(\d+)$"), "mAP over the top {0}", "mAP@{0}"),
    (re.compile(r"precision_at_(\d+)$"), "precision of the top {0}", "P@{0}"),
    (re.compile(r"precision_radius_(\d+)$"), "precision within Hamming radius {0}", "P(r\u2264{0})"),
)


def _lookup(key: str) -> tuple[str, str]:
    if key in LABELS:
        return LABELS[key]
    for pattern, long, short in _PATTERNS:
        m = pattern.match(key)
        if m:
            return long.format(*m.groups()), short.format(*m.groups())
    words = key.replace("_", " ")
    return words, words


def label(key: str) -> str:
    """The human label of a metric key, e.g. ``"map"`` -> ``"mean average precision"``."""
    return _lookup(key)[0]


def short_label(key: str) -> str:
    """The short label of a metric key for narrow columns, e.g. ``"map"`` -> ``"mAP"``."""
    return _lookup(key)[1]
