"""What a code set came from: the network and the input samples it was dumped from (for segment walks and planes).

Plumbing only: reads the file's provenance (``checkpoint``, ``checkpoint_sha256``, ``dataset``,
``split``, ``config.normalization``) and rebuilds what ``nacscope dump`` fed the network, so that
``nacscope.analysis.segments`` can walk between two of the file's samples in input space.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from nacscope._files import file_sha256
from nacscope.errors import CheckpointError, DataError

_RANDOM = re.compile(r"^random-init:(?P<arch>[^:]+):(?P<bits>\d+):seed=(?P<seed>-?\d+)$")


def checkpoint_path(attrs: dict[str, Any], file: Path) -> Path:
    """Where the file's checkpoint is: as recorded, or relative to the code set's folder."""
    rec = str(attrs.get("checkpoint") or "")
    if not rec:
        raise CheckpointError(f"{file.name} records no checkpoint: segment walks need the network it was dumped from")
    for cand in (Path(rec).expanduser(), file.parent / rec):
        if cand.exists():
            return cand
    raise CheckpointError(f"checkpoint {rec!r} (recorded in {file.name}) not found; run from the folder of the dump "
                          "or put the checkpoint beside the file")


def load_inputs(attrs: dict[str, Any], sample_index: np.ndarray, rows: list[int]):
    """The normalised network inputs of ``rows``, float32 (len(rows), C, H, W), and the dataset.

    Raises:
        DataError: the dataset is not available here, or a sample is missing from it.
    """
    import torch

    from nacscope.data import load_dataset

    name, split = attrs.get("dataset"), attrs.get("split") or "all"
    if not name:
        raise DataError("the file records no dataset: cannot rebuild the inputs of its samples")
    data = load_dataset(str(name), str(split), root=str(attrs.get("data_root") or "") or None)
    where = {int(v): i for i, v in enumerate(data.indices.tolist())}
    try:
        pos = [where[int(sample_index[r])] for r in rows]
    except KeyError as exc:
        raise DataError(f"sample {exc.args[0]} of the file is not in dataset {name!r} split {split!r}") from None
    x = data.images[torch.as_tensor(pos)]  # (P, C, H, W) uint8
    norm = (attrs.get("config") or {}).get("normalization") if isinstance(attrs.get("config"), dict) else None
    if norm and len(norm.get("mean", [])) == data.channels:
        mean = torch.tensor(norm["mean"], dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(norm["std"], dtype=torch.float32).view(1, -1, 1, 1)
        return (x.float() / 255.0 - mean) / std, data
    return data.normalize(x), data


def load_network(attrs: dict[str, Any], file: Path, data) -> Any:
    """The network the file was dumped from (eval mode): its checkpoint, or the same seeded random init."""
    m = _RANDOM.match(str(attrs.get("checkpoint") or ""))
    if m:
        from nacscope.nets import random_init

        return random_init(m["arch"], int(m["bits"]), int(m["seed"]), data.channels, data.image_size)
    from nacscope.nets import load_checkpoint

    path = checkpoint_path(attrs, file)
    want = str(attrs.get("checkpoint_sha256") or "")
    if want and path.is_file() and file_sha256(path) != want:
        raise CheckpointError(f"{path} is not the checkpoint {file.name} was dumped from (sha256 differs)")
    model, _meta = load_checkpoint(path)
    return model.eval()
