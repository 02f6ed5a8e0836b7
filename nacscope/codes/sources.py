"""What a code set came from: the network and the input samples it was dumped from (for segment walks and planes).

Plumbing only: reads the file's :class:`nacscope.nets.ModelSource` (its ``model_source`` attribute, or the
legacy ``checkpoint``/``checkpoint_sha256``/``config.normalization`` attributes of older files) and rebuilds
what ``nacscope dump`` fed the network, so that ``nacscope.analysis.segments`` can walk between two of the
file's samples in input space.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from nacscope.errors import CheckpointError
from nacscope.nets.source import ModelSource, dataset_of, inputs, resolve_path

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


def verify(source: ModelSource, codeset, rows: Sequence[int], model=None, data=None) -> "nn.Module":
    """Rebuild (unless ``model`` is given) and re-capture ``rows``: refuse if their bits differ from the file.

    Args:
        source: the recorded source.  codeset: an open :class:`nacscope.codes.CodeSet`.
        rows: a few stored rows to re-capture.  data: the dataset (loaded from the provenance if None).

    Returns:
        The network, verified.

    Raises:
        CheckpointError: the rebuilt network does not reproduce the stored bits (one line).
    """
    import numpy as np
    import torch

    from nacscope.codes.capture import capture_bits, list_sites
    from nacscope.codes.format import unpack_bits

    model = source.build(codeset.path) if model is None else model
    rows = sorted(int(r) for r in rows)
    data = dataset_of(codeset.attrs) if data is None else data
    x = inputs(source.fit(data).normalizer(), data, codeset.sample_index, rows)  # (P, C, H, W)
    try:
        sites = list_sites(model.eval(), x)
    except RuntimeError as exc:
        raise CheckpointError(f"the rebuilt network cannot run on the file's inputs ({str(exc).splitlines()[0][:120]})") from None
    names = [lay.name for lay in codeset.layers if lay.kind in ("relu", "code")]
    by_name = {s.name: s for s in sites}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise CheckpointError(f"the rebuilt network has no site {missing[0]!r} of {Path(codeset.path).name}: "
                              "not the network the file was dumped from")
    with torch.no_grad():
        got, _ = capture_bits(model, x, [by_name[n] for n in names])
    for n in names:
        units = codeset.layer(n).units
        again = unpack_bits(got[n].cpu().numpy(), units)  # (P, U)
        stored = unpack_bits(codeset.packed(n, np.asarray(rows)), units)
        if again.shape != stored.shape or (again != stored).any():
            diff = int((again != stored).sum()) if again.shape == stored.shape else -1
            raise CheckpointError(
                f"the rebuilt network does not reproduce {Path(codeset.path).name}: layer {n!r} differs in "
                f"{diff if diff >= 0 else 'shape of'} bits of {len(rows)} stored rows; not the network it was dumped from")
    return model


def checkpoint_path(attrs: dict[str, Any], file: Path) -> Path:
    """Where the file's checkpoint is: as recorded, or relative to the code set's folder."""
    return resolve_path(str(attrs.get("checkpoint") or ""), file)


def load_inputs(attrs: dict[str, Any], sample_index: np.ndarray, rows: list[int]):
    """The normalised network inputs of ``rows``, float32 (len(rows), C, H, W), and the dataset.

    Raises:
        DataError: the dataset is not available here, or a sample is missing from it.
    """
    data = dataset_of(attrs)
    if attrs.get("model_source"):
        normalize = ModelSource.from_json(attrs["model_source"]).fit(data).normalizer()
    else:  # legacy files: config.normalization when it fits the data, else the dataset's own
        cfg = attrs.get("config") if isinstance(attrs.get("config"), dict) else {}
        norm = cfg.get("normalization") or {}
        fits = norm.get("mean") and len(norm["mean"]) == data.channels
        normalize = _normalizer(norm["mean"], norm["std"]) if fits else data.normalize
    return inputs(normalize, data, sample_index, rows), data


def load_network(attrs: dict[str, Any], file: Path, data=None) -> Any:
    """The network the file was dumped from (eval mode): its checkpoint, or the same seeded random init."""
    return ModelSource.from_provenance(attrs, file, data).build(file)


def rebuild(cs, rows: Sequence[int], check_rows: int = 4):
    """``(network, inputs of rows)`` for an open code set; the network is verified first: it must
    re-capture the file's bits of a few stored rows (``rows`` first).

    Raises:
        CheckpointError: the rebuilt network is not the one the file was dumped from.
    """
    attrs = cs.attrs
    data = dataset_of(attrs)
    source = ModelSource.from_provenance(attrs, cs.path, data)
    check = list(dict.fromkeys([int(r) for r in rows][:check_rows])) or [0]
    model = verify(source, cs, check, data=data)
    return model, inputs(source.fit(data).normalizer(), data, cs.sample_index, list(rows))


def _normalizer(mean, std):
    return ModelSource("random-init", "-", 1, len(mean), 1, mean=tuple(mean), std=tuple(std)).normalizer()
