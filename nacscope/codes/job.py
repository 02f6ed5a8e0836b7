"""A dump end to end: what to dump (:class:`DumpRequest`) and :func:`run_dump`, which does it.

``run_dump`` loads the dataset and the network, checks they fit, chooses the sites, marks the protocol's
queries, records the provenance (with the :class:`~nacscope.nets.ModelSource` that rebuilds the network),
and streams the code set, in one process or under torchrun (one shard per rank, merged by rank 0).
The ``dump`` command and the demo both call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Optional, Sequence

from nacscope._files import check_output, dataset_path
from nacscope.codes.study import input_shape, load_data, load_source, normalizer, trace_sites
from nacscope.errors import OptionError
from nacscope.progress import Progress

#: ``progress_for(rank) -> context manager yielding a Progress or None``: how the caller shows progress.
ProgressFactory = Callable[[int], ContextManager[Optional[Progress]]]


@dataclass
class DumpRequest:
    """Everything a dump needs to know; defaults are the ``dump`` command's."""

    dataset: str
    out: Path
    checkpoint: Optional[Path] = None
    data_root: Optional[Path] = None
    split: str = "test"
    layers: Optional[Sequence[str]] = None  # site name patterns, or ["all"]; None: the default sites
    features: bool = True
    thumbnails: int = 32  # max side; 0 for none
    protocol: Optional[str] = None
    queries_per_class: Optional[int] = None
    random_init: bool = False
    arch: Optional[str] = None
    bits: Optional[int] = None
    seed: int = 0
    hidden: Optional[tuple[int, ...]] = None  # widths of a random-init mlp (default: the mlp's own)
    batch_size: int = 256
    device: str = "auto"
    precision: str = "fp32"
    force: bool = False
    command: str = ""  # the command line, for provenance
    config_extra: dict[str, Any] = field(default_factory=dict)  # more provenance, under attrs["config"]

    def validate(self) -> None:
        from nacscope.codes.dump import PRECISIONS

        if self.batch_size < 1:
            raise OptionError(f"must be >= 1, got {self.batch_size}", option="batch_size")
        if self.precision not in PRECISIONS:
            raise OptionError(f"must be one of {', '.join(PRECISIONS)}, got {self.precision!r}", option="precision")
        if self.thumbnails < 0:
            raise OptionError(f"must be >= 0, got {self.thumbnails}", option="thumbnails")


def _attrs(req: DumpRequest, meta: dict, norm_attrs: dict) -> dict[str, Any]:
    """The code set's provenance attributes."""
    attrs: dict[str, Any] = {
        "command": req.command,
        "dataset": req.dataset,
        "split": req.split,
        # where the on-disk dataset was read (rebuilding inputs for segment walks reads it again)
        "data_root": str(Path(req.data_root).expanduser().resolve()) if req.data_root else "",
        "checkpoint": meta.get("path", str(req.checkpoint)),
        "checkpoint_sha256": meta.get("sha256", ""),
        "model_source": meta["source"].to_json(),
        "config": {
            "arch": meta.get("arch"), "bits": meta.get("bits"), "source_format": meta.get("format"),
            "layers": list(req.layers or ["(default)"]), "protocol": req.protocol,
            "queries_per_class": req.queries_per_class, "precision": req.precision,
            "normalization": norm_attrs, "seed": req.seed if req.random_init else None, "mode": "eval",
            **req.config_extra,
        },
    }
    if req.protocol:
        from nacscope.data.protocols import PAPER_SEED

        attrs["protocol"] = req.protocol
        attrs["protocol_seed"] = PAPER_SEED
    return attrs


def run_dump(req: DumpRequest, progress_for: ProgressFactory, warn: Callable[[str], None] = lambda _: None):
    """Dump the code set ``req`` asks for; returns its :class:`~nacscope.codes.dump.DumpStats`.

    Under torchrun (``WORLD_SIZE > 1``) every rank calls this; rank 0 returns the merged file's stats,
    the others None. ``warn`` receives warnings meant for the user (rank 0 only).
    """
    from nacscope.codes.capture import select_sites
    from nacscope.codes.dump import DumpInput, dump_codes, projected_bytes
    from nacscope.codes.render import human_bytes
    from nacscope.codes.shards import dump_distributed
    from nacscope.data.protocols import query_mask
    from nacscope.distributed import DistInfo, pick_device

    req.validate()
    check_output(req.out, force=req.force, inputs=[req.checkpoint, req.data_root], sealed=[dataset_path(req.dataset)])
    data = load_data(req.dataset, req.split, req.data_root)
    if len(data) == 0:
        raise OptionError(f"dataset {req.dataset!r} split {req.split!r} has no samples")
    model, meta = load_source(req.checkpoint, random_init=req.random_init, arch=req.arch, bits=req.bits,
                              seed=req.seed, in_channels=data.channels, image_size=data.image_size,
                              hidden=req.hidden)
    input_shape(meta, data)
    normalize, norm_attrs = normalizer(meta, data)
    sites = select_sites(trace_sites(model, (data.channels, data.image_size), normalize, data), req.layers)
    labels = None if data.labels is None else data.labels.numpy()
    test = load_data(req.dataset, "test", req.data_root).indices.numpy() if req.protocol == "held-out" else None
    mask = query_mask(req.protocol, req.queries_per_class, labels, data.indices.numpy(), req.dataset, req.split,
                      test_indices=test)
    dinput = DumpInput(data.images, normalize, data.labels, data.indices, data.class_names, mask)
    kw = dict(batch_size=req.batch_size, features=req.features, thumbnails=req.thumbnails or None,
              precision=req.precision, attrs=_attrs(req, meta, norm_attrs), force=req.force)

    dist = DistInfo(req.device)
    try:
        if req.layers and "all" in req.layers and dist.main:
            size = projected_bytes(len(data), sites, getattr(model, "feature_dim", 0) if req.features else 0)
            warn(f"--layers all: {len(sites)} sites, {sum(s.units for s in sites):,} units per sample; "
                 f"projected size {human_bytes(size)}")
        device = pick_device(req.device, dist)
        with progress_for(dist.rank) as progress:
            if dist.world > 1:
                return dump_distributed(model, dinput, req.out, sites, device=device, progress=progress, **kw)
            return dump_codes(model, dinput, req.out, sites, device=device, progress=progress, **kw)
    finally:
        dist.close()
