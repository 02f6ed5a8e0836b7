"""Linear regions of several models on the same inputs: exact segment walks, dense checks, a plane.

The orchestration behind ``nacscope regions``: every model gets the same segments (pairs of samples)
and the same plane anchors (three samples), each through its own input normalisation. The plane is the
exact partition (:mod:`nacscope.analysis.partition`) or, by explicit choice, grid sampling
(:mod:`nacscope.analysis.plane`), which is a lower bound and labelled so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from nacscope.choices import MAX_SEED, PLANE_METHODS  # noqa: F401 (PLANE_METHODS re-exported)
from nacscope.errors import OptionError, require
from nacscope.progress import Progress, prefixed, report

if TYPE_CHECKING:
    from pathlib import Path

    import torch
    from torch import nn

    from nacscope.data import ImageData



@dataclass
class RegionModel:
    """One model to compare: a label, the network, its input normalisation and provenance."""

    label: str
    model: nn.Module
    normalize: Callable[[torch.Tensor], torch.Tensor]
    checkpoint: str | None = None
    arch: str | None = None


def model_label(path: "Path") -> str:
    """A short name for a checkpoint: the folder for ``RUN/last.pt`` or ``ZOO/model.pt``, else the file stem."""
    if path.is_dir():
        return path.name
    return path.parent.name if path.name in ("last.pt", "model.pt") else path.stem


def region_models(checkpoints: Sequence["Path"], data: "ImageData", *, random_init: bool = False,
                  arch: str | None = None, bits: int | None = None, seed: int = 0) -> list[RegionModel]:
    """The checkpoints (``arch`` for the authors' files) and, with ``random_init``, an untrained baseline:
    the first checkpoint's architecture and config at seed ``seed`` (``arch``/``bits`` override), each
    with its input normalisation fitted to ``data``.

    Raises:
        OptionError: nothing to compare, or a random init of unknown architecture or code length.
    """
    from nacscope.codes.study import input_shape, load_source
    from nacscope.nets import ModelSource

    if not checkpoints and not random_init:
        raise OptionError("give one or more checkpoints and/or a random init")
    require(0 <= seed <= MAX_SEED, "seed", f"must be in [0, 2**31 - 1], got {seed}")
    loaded: list[tuple[str, Any, ModelSource]] = []
    for ck in checkpoints:
        model, meta = load_source(ck, arch=arch, seed=seed)
        input_shape(meta, data)
        loaded.append((model_label(ck), model, meta["source"]))
    if random_init:
        base = loaded[0][2] if loaded else None
        a, b = arch or (base.arch if base else None), bits or (base.bits if base else None)
        if a is None or b is None:
            raise OptionError("without a checkpoint needs an arch and bits", option="random_init")
        if base is not None and base.arch == ("vgg16_bn" if a == "vgg16" else a):
            source = base.untrained(seed, b)
        else:
            source = ModelSource.random_init(a, int(b), seed, data.channels, data.image_size)
        loaded.append(("random init", source.build(), source))
    return [RegionModel(label, model, src.fit(data).normalizer(), src.checkpoint or src.describe(), src.arch)
            for label, model, src in loaded]


def check_settings(*, pairs: int, dense: int, resolution: int, margin: float, max_steps: int) -> None:
    """One-line OptionError (naming the parameter) for settings :func:`compare_regions` cannot use."""
    for name, value, low in (("pairs", pairs, 0), ("dense", dense, 0), ("resolution", resolution, 0),
                             ("max_steps", max_steps, 1)):
        require(value >= low, name, f"must be >= {low}, got {value}")
    require(dense != 1, "dense", "needs at least 2 points (or 0 to skip)")
    require(resolution != 1, "resolution", "needs at least 2 points (or 0 to skip)")
    require(margin >= 0, "margin", f"must be >= 0, got {margin}")
    if pairs == 0 and resolution == 0:
        raise OptionError("nothing to do: no pairs and no plane (resolution 0)")


def _segments(m: RegionModel, images, pr, dense, layers, max_steps, progress) -> dict[str, Any]:
    import numpy as np
    import torch

    from nacscope.analysis.segments import count_regions_dense, count_regions_exact

    x0 = m.normalize(images[torch.as_tensor(pr[:, 0])])
    x1 = m.normalize(images[torch.as_tensor(pr[:, 1])])
    ex = count_regions_exact(m.model, x0, x1, layers=layers, max_steps=max_steps, progress=prefixed(progress, m.label))
    seg = {"exact": ex.regions.tolist(), "mean": float(ex.regions.mean()),
           "median": float(np.median(ex.regions)), "forward_passes": int(ex.steps.sum())}
    if dense:
        report(progress, 0, 1, f"{m.label}: dense check ({dense} points per segment)")
        dn = count_regions_dense(m.model, x0, x1, n=dense, layers=layers)
        report(progress, 1, 1, f"{m.label}: dense check ({dense} points per segment)")
        seg["dense"], seg["dense_mean"] = dn.tolist(), float(dn.mean())
    return seg


def _plane(m: RegionModel, anchors, method, resolution, margin, layers, progress):
    from nacscope.analysis.partition import exact_plane_partition
    from nacscope.analysis.plane import plane_regions

    x = m.normalize(anchors)
    if method == "exact":
        res = exact_plane_partition(m.model, x, margin=margin, layers=layers, progress=prefixed(progress, m.label))
        row = {"method": "exact", "regions": res.n_faces, "vertices": res.n_vertices, "edges": res.n_edges,
               "per_layer": dict(res.per_layer), "area": res.area_stats(), "margin": margin}
        return row, res
    res = plane_regions(m.model, x, resolution=resolution, margin=margin, layers=layers, progress=prefixed(progress, m.label))
    return {"method": "grid (lower bound)", "regions": res.n_regions, "resolution": resolution, "margin": margin}, res


def compare_regions(
    models: Sequence[RegionModel],
    images: torch.Tensor,
    *,
    pairs: int = 10,
    dense: int = 1000,
    plane_method: str = "exact",
    resolution: int = 120,
    margin: float = 0.25,
    layers: Sequence[str] | None = None,
    sample_seed: int = 0,
    max_steps: int = 200_000,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """Region counts of every model on the same segments and plane.

    Args:
        models: the models to compare.
        images: (N, C, H, W) raw samples (each model normalises them its own way).
        pairs: segments between random pairs of samples (0: none).
        dense: dense-sampling points per segment (0: skip the check).
        plane_method: one of :data:`PLANE_METHODS`.
        resolution: grid points per side (``grid``); 0 skips the plane for either method.
        margin: plane window beyond the anchors' triangle.
        layers: sites that define regions (default every ReLU).
        sample_seed: seed of the pairs and the plane anchors.
        max_steps: boundaries per segment before giving up.
        progress: ``progress(done, total, message)``, stages prefixed by the model's label.

    Returns:
        ``(summary, planes)``: a JSON-ready dict (``pairs``, ``plane_anchors``, ``models`` rows) and
        ``(label, plane result)`` per model.
    """
    import numpy as np
    import torch

    from nacscope.analysis.segments import sample_pairs

    require(plane_method in PLANE_METHODS, "plane_method", f"must be one of {', '.join(PLANE_METHODS)}, got {plane_method!r}")
    check_settings(pairs=pairs, dense=dense, resolution=resolution, margin=margin, max_steps=max_steps)
    if len(images) < 3:
        raise OptionError(f"need at least 3 samples, got {len(images)}")
    pr = sample_pairs(len(images), pairs, sample_seed) if pairs else np.zeros((0, 2), int)
    triple = np.random.default_rng(sample_seed + 1).choice(len(images), 3, replace=False)
    rows, planes = [], []
    for m in models:
        row: dict[str, Any] = {"model": m.label, "checkpoint": m.checkpoint, "arch": m.arch}
        if pairs:
            row["segments"] = _segments(m, images, pr, dense, layers, max_steps, progress)
        if resolution:
            row["plane"], res = _plane(m, images[torch.as_tensor(triple)], plane_method, resolution, margin, layers, progress)
            planes.append((m.label, res))
        rows.append(row)
    summary = {"pairs": pr.tolist(), "plane_anchors": triple.tolist(), "plane_method": plane_method,
               "layers": list(layers) if layers else ["every ReLU"], "models": rows}
    return summary, planes
