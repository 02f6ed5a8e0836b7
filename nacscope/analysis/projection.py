"""2-D projections of codes or features with UMAP (umap-learn), stored in the code set.

Codes are projected from their packed bits with ``metric="bit_hamming"`` (umap-learn's Hamming
distance on packed uint8 rows). ``init="random"`` because the default spectral initialisation fails
when the k-NN graph is disconnected (which duplicate or clustered codes cause), and ``unique=True``
when codes repeat (UMAP would otherwise place identical points at arbitrary distances). Projections
are seeded and stored under ``/projections/<name>`` with their parameters; a stored one with the same
parameters is reused. Quality: scikit-learn's trustworthiness (how well local neighbourhoods of the
input are kept), on at most ``TRUST_SAMPLES`` points.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from nacscope.errors import OptionError
from nacscope.progress import Progress

if TYPE_CHECKING:
    from nacscope.codes.format import CodeSet

TRUST_SAMPLES = 2000


def projection_name(layer: str | None = None, features: str | None = None) -> str:
    """``umap.<layer>`` or ``umap.features.<name>``."""
    from nacscope.analysis.cached import cache_key

    return cache_key("umap.features", features) if features is not None else cache_key("umap", str(layer))


#: The stages :func:`umap_embed` reports (``progress(done, total, stage)``).
STAGE_NEIGHBOURS, STAGE_OPTIMISE, STAGE_TRUST = "UMAP: nearest neighbours", "UMAP: optimising", "trustworthiness"


class _EpochSink:
    """A file for umap-learn's tqdm bar over the optimisation epochs (``bar_format`` ``{n}/{total}``):
    turns what tqdm writes into ``progress`` calls. The first write ends the nearest-neighbour stage
    (umap builds the k-NN graph and the fuzzy simplicial set before its first epoch)."""

    BAR_FORMAT = "{n}/{total};"

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.total = 0
        self.done = -1

    def write(self, text: str) -> int:
        for part in text.replace("\r", ";").split(";"):
            n, _, total = part.strip().partition("/")
            if n.isdigit() and total.isdigit():
                self.update(int(n), int(total))
        return len(text)

    def update(self, n: int, total: int) -> None:
        if self.done < 0:
            self.progress(1, 1, STAGE_NEIGHBOURS)
        if n != self.done:
            self.total, self.done = total, n
            self.progress(n, total, STAGE_OPTIMISE)

    def finish(self) -> None:
        """After ``fit_transform``: the last epoch (tqdm may skip its final refresh)."""
        self.update(max(self.total, self.done, 0), max(self.total, self.done, 0))

    def flush(self) -> None:
        pass


def umap_embed(x: np.ndarray, *, packed: bool, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1,
               progress: Progress | None = None) -> np.ndarray:
    """(N, 2) float32 UMAP embedding of packed bits (Hamming) or float features (Euclidean).

    ``progress`` hears the stages ``UMAP: nearest neighbours`` (0 of 1, then 1 of 1) and
    ``UMAP: optimising`` (epochs done of the epochs umap-learn runs)."""
    n = len(x)
    if n < 3:
        raise OptionError(f"UMAP needs at least 3 samples, got {n}")
    if n_neighbors < 2:
        raise OptionError(f"must be >= 2, got {n_neighbors}", option="n_neighbors")
    x = np.ascontiguousarray(x, dtype=np.uint8 if packed else np.float32)
    unique = len(np.unique(x, axis=0)) < n if packed else False
    with warnings.catch_warnings():
        # umap's notes (a random_state disables parallelism, no TensorFlow, no inverse transform for
        # bit_hamming) and numba/sklearn deprecations: not the user's business
        warnings.filterwarnings("ignore", message=r".*(random_state|n_jobs|gradient function|Tensorflow).*")
        for category in (DeprecationWarning, FutureWarning):
            warnings.simplefilter("ignore", category)
        import umap

        sink = None
        tqdm_kwds = None
        if progress is not None:
            progress(0, 1, STAGE_NEIGHBOURS)
            sink = _EpochSink(progress)
            tqdm_kwds = {"disable": False, "file": sink, "bar_format": _EpochSink.BAR_FORMAT, "mininterval": 0.25,
                         "ascii": True}
        reducer = umap.UMAP(
            n_components=2, n_neighbors=min(n_neighbors, n - 1), min_dist=min_dist,
            metric="bit_hamming" if packed else "euclidean", init="random", random_state=seed, unique=unique, n_jobs=1,
            tqdm_kwds=tqdm_kwds,
        )
        emb = np.asarray(reducer.fit_transform(x), dtype=np.float32)
    if sink is not None:
        sink.finish()
    return emb


def trustworthiness(x: np.ndarray, coords: np.ndarray, *, packed: bool, n_neighbors: int = 5, max_samples: int = TRUST_SAMPLES,
                    seed: int = 0) -> float:
    """Trustworthiness (scikit-learn) of a 2-D embedding, in [0, 1]; Hamming distance for packed bits."""
    from sklearn.manifold import trustworthiness as _tw

    n = len(x)
    rows = np.sort(np.random.default_rng(seed).choice(n, max_samples, replace=False)) if n > max_samples else np.arange(n)
    k = max(1, min(n_neighbors, (len(rows) - 1) // 2 - 1))
    if packed:
        from nacscope.analysis.hamming import hamming_distances

        d = hamming_distances(x[rows], x[rows]).astype(np.float64)
        return float(_tw(d, coords[rows], n_neighbors=k, metric="precomputed"))
    return float(_tw(np.asarray(x[rows], dtype=np.float64), coords[rows], n_neighbors=k))


def umap_projection(
    cs: "CodeSet", layer: str | None = None, *, features: str | None = None, seed: int = 0, n_neighbors: int = 15,
    min_dist: float = 0.1, use_cache: bool = True, progress: Progress | None = None, max_samples: int | None = None,
) -> tuple[np.ndarray, dict]:
    """UMAP of a layer's codes (or of stored features), stored in the file.

    Args:
        cs: an open code set.
        layer: layer whose packed bits are projected (the last layer if both this and ``features`` are None).
        features: name of stored features to project instead (``""`` for the default ones).
        max_samples: above this many samples, UMAP embeds a seeded random subsample of this size
            (:func:`nacscope.analysis.scale.subset_rows` with ``seed``); the other rows get NaN.

    Returns:
        ``(coords (N, 2) float32, info)`` with ``info = {"name", "params", "trustworthiness", "cached",
        "rows"}``: ``rows`` the (M,) embedded rows (all N without a subsample); with a subsample
        ``params["subsample"]`` is M (and part of the stored projection's key).
    """
    from nacscope.analysis.scale import subset_rows
    from nacscope.codes.cache import projection_attrs, read_projection, write_projection

    if cs.n_samples == 0:
        raise OptionError(f"{cs.path.name} has no samples to project")
    if features is not None:
        names = cs.feature_names
        if not names:
            raise OptionError(f"{cs.path.name} stores no features; project a layer instead")
        fname = features or ("h" if "h" in names else names[0])
        if fname not in names:
            raise OptionError(f"no features {fname!r}; available: {', '.join(names)}")
        source = {"features": fname}
    else:
        layer = layer or cs.layer_names[-1]
        cs.layer(layer)  # raises with the available names
        source = {"layer": layer}
    name = projection_name(source.get("layer"), source.get("features"))
    params = {"method": "umap", **source, "seed": int(seed), "n_neighbors": int(n_neighbors),
              "min_dist": float(min_dist), "init": "random"}
    n = cs.n_samples
    sub = max_samples is not None and n > int(max_samples)
    rows = subset_rows(np.arange(n), int(max_samples), seed) if sub else np.arange(n)
    if sub:  # the key of a full projection stays as it was
        params["subsample"] = int(len(rows))
    if use_cache:
        coords = read_projection(cs, name, params)
        if coords is not None:
            stored = (projection_attrs(cs, name) or {}).get("trustworthiness")
            return coords, {"name": name, "params": params, "trustworthiness": None if stored is None else float(stored),
                            "cached": True, "rows": rows}
    packed = "layer" in source
    x = cs.packed(layer) if packed else cs.features(source["features"]).astype(np.float32)
    x = x[rows] if sub else x
    emb = umap_embed(x, packed=packed, seed=seed, n_neighbors=n_neighbors, min_dist=min_dist, progress=progress)
    if progress is not None:
        progress(0, 1, STAGE_TRUST)
    tw = trustworthiness(x, emb, packed=packed)
    if progress is not None:
        progress(1, 1, STAGE_TRUST)
    coords = emb
    if sub:
        coords = np.full((n, 2), np.nan, dtype=np.float32)
        coords[rows] = emb
    if use_cache:
        write_projection(cs, name, coords, params, trustworthiness=tw)
    return coords, {"name": name, "params": params, "trustworthiness": tw, "cached": False, "rows": rows}
