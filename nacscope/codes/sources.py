"""What a code set came from: the network and the input samples it was dumped from (for segment walks and planes).

Plumbing only: reads the file's :class:`nacscope.nets.ModelSource` (its ``model_source`` attribute, or the
legacy ``checkpoint``/``checkpoint_sha256``/``config.normalization`` attributes of older files) and rebuilds
what ``nacscope dump`` fed the network, so that ``nacscope.analysis.segments`` can walk between two of the
file's samples in input space.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nacscope.nets.source import ModelSource, dataset_of, inputs, resolve_path, verify


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
