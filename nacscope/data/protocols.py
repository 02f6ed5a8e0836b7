"""Query/gallery splits for nearest-neighbour retrieval, stored as ``/samples/is_query``.

``paper-cifar10`` (NAC-NOTES §4): pool CIFAR-10's 60,000 train+test images, draw 1,000 queries per
class (10,000), the other 50,000 are the gallery. The authors drew theirs at random without
publishing the draw, so their exact query set cannot be reproduced; ours is fixed by
:data:`PAPER_SEED` and documented here, so every nacscope dump of CIFAR-10 gets the same split.

``held-out`` (the demo's): dump ``--split all``; the dataset's own test split are the queries, its
training split the gallery, so retrieval scores samples the encoder never trained on.

``queries_per_class(labels, K, seed)``: the same recipe for any labelled dataset.
"""

from __future__ import annotations

import numpy as np

from nacscope.errors import OptionError

__all__ = ["PAPER_SEED", "PAPER_QUERIES_PER_CLASS", "PAPER_POOL", "PROTOCOLS", "queries_per_class", "paper_hash_split",
           "paper_cifar10", "paper_flickr25k", "query_mask", "FLICKR_QUERIES", "FLICKR_TRAIN"]

#: Seed of the ``paper-cifar10`` query draw (fixed forever: changing it changes every result).
PAPER_SEED = 2021
PAPER_QUERIES_PER_CLASS = 1000
PAPER_POOL = 60_000
PROTOCOLS = ("paper-cifar10", "paper-flickr25k", "held-out")
#: MIRFLICKR-25K (NAC-NOTES §4): random queries, and training images drawn from the rest (the gallery).
FLICKR_QUERIES = 2000
FLICKR_TRAIN = 5000


def queries_per_class(labels: np.ndarray, k: int, seed: int = PAPER_SEED, indices: np.ndarray | None = None) -> np.ndarray:
    """Mark ``k`` random samples of every class as queries.

    The draw depends only on ``seed`` and on the samples' source ``indices`` (default: their
    positions), not on the order they come in: for each class, the class's source indices are
    sorted and permuted by a generator seeded with ``(seed, class)``.

    Args:
        labels: (N,) integer class labels.
        k: queries per class; every class needs more than ``k`` samples (the rest is the gallery).
        seed: the draw's seed.
        indices: (N,) source indices of the samples.

    Returns:
        (N,) bool, True for queries.

    Raises:
        OptionError: ``k < 1``, multi-label labels, or a class with no more than ``k`` samples.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise OptionError("--queries-per-class needs single-label data (one integer label per sample)")
    if k < 1:
        raise OptionError(f"must be >= 1, got {k}", option="queries_per_class")
    mask = np.zeros(len(labels), dtype=bool)
    for c, members in _class_orders(labels, seed, indices):
        if len(members) <= k:
            raise OptionError(
                f"class {c} has {len(members)} samples, not more than --queries-per-class {k}; lower it"
            )
        mask[members[:k]] = True
    return mask


def _class_orders(labels: np.ndarray, seed: int, indices: np.ndarray | None):
    """Yield ``(class, rows of that class in the draw's random order)``, independent of row order.

    For each class, the class's rows are sorted by source index and permuted by a generator seeded
    with ``(seed, class)``. Queries are the first rows of each order; the hashing protocol's
    training set the next ones, so both come from one draw.
    """
    idx = np.arange(len(labels)) if indices is None else np.asarray(indices)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        members = members[np.argsort(idx[members], kind="stable")]  # order-independent
        rng = np.random.default_rng([int(seed), int(c)])
        yield c, members[rng.permutation(len(members))]


def paper_hash_split(
    labels: np.ndarray,
    indices: np.ndarray | None = None,
    per_class_query: int = PAPER_QUERIES_PER_CLASS,
    per_class_train: int = 500,
    seed: int = PAPER_SEED,
) -> dict[str, np.ndarray]:
    """The authors' CIFAR-10 hashing protocol (NAC-NOTES §4) as sorted row numbers.

    ``query``: the same rows ``paper-cifar10`` marks as queries (``per_class_query`` per class);
    ``gallery``: every other row; ``train``: ``per_class_train`` per class of the gallery, the
    unlabelled training set. Training with ``--dataset cifar10-hash`` and dumping with
    ``--protocol paper-cifar10`` therefore never put a training image among the queries.
    """
    labels = np.asarray(labels)
    parts: dict[str, list[np.ndarray]] = {"query": [], "gallery": [], "train": []}
    for _, order in _class_orders(labels, seed, indices):
        parts["query"].append(order[:per_class_query])
        parts["gallery"].append(order[per_class_query:])
        parts["train"].append(order[per_class_query : per_class_query + per_class_train])
    return {k: np.sort(np.concatenate(v)) for k, v in parts.items()}


def paper_cifar10(labels: np.ndarray, indices: np.ndarray, dataset: str, split: str) -> np.ndarray:
    """The ``paper-cifar10`` split; refuses anything but the pooled 60,000 CIFAR-10 images."""
    if dataset != "cifar10" or split != "all":
        raise OptionError("--protocol paper-cifar10 needs --dataset cifar10 --split all (the pooled 60,000 images)")
    if len(labels) != PAPER_POOL:
        raise OptionError(
            f"--protocol paper-cifar10 needs all {PAPER_POOL} CIFAR-10 images, found {len(labels)}; "
            "use --queries-per-class K for a subset"
        )
    return queries_per_class(labels, PAPER_QUERIES_PER_CLASS, PAPER_SEED, indices)


def paper_flickr25k(n: int, seed: int = PAPER_SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(queries, gallery, training) row numbers of the ``n`` labelled MIRFLICKR-25K images, one seeded draw.

    2,000 queries at random, the rest the gallery, 5,000 of the gallery the training set (fewer when
    ``n`` is small: a tenth of the images are queries and half the gallery trains). Sorted rows.
    """
    n_q = min(FLICKR_QUERIES, max(1, n // 10))
    perm = np.random.default_rng(seed).permutation(n)
    n_t = min(FLICKR_TRAIN, max(1, (n - n_q) // 2))
    return np.sort(perm[:n_q]), np.sort(perm[n_q:]), np.sort(perm[n_q : n_q + n_t])


def query_mask(
    protocol: str | None,
    queries: int | None,
    labels: np.ndarray | None,
    indices: np.ndarray,
    dataset: str,
    split: str,
    seed: int = PAPER_SEED,
    test_indices: np.ndarray | None = None,
) -> np.ndarray | None:
    """The query mask asked for by ``--protocol`` / ``--queries-per-class``, or None for no split.

    ``test_indices``: the source indices of the dataset's test split (for ``held-out``)."""
    if protocol is not None and queries is not None:
        raise OptionError("give --protocol or --queries-per-class, not both")
    if protocol is None and queries is None:
        return None
    if labels is None:
        raise OptionError(f"dataset {dataset!r} has no labels: a query/gallery split needs them")
    if protocol is not None:
        if protocol not in PROTOCOLS:
            raise OptionError(f"unknown --protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        if protocol == "paper-flickr25k":
            if dataset != "flickr25k" or split != "all":
                raise OptionError("--protocol paper-flickr25k needs --dataset flickr25k --split all")
            mask = np.zeros(len(labels), dtype=bool)
            mask[paper_flickr25k(len(labels))[0]] = True
            return mask
        if protocol == "held-out":
            if split != "all" or test_indices is None:
                raise OptionError("--protocol held-out needs --split all (queries: the test split, gallery: the rest)")
            return np.isin(indices, test_indices)
        return paper_cifar10(labels, indices, dataset, split)
    return queries_per_class(labels, int(queries), seed, indices)  # type: ignore[arg-type]
