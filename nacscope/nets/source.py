"""Where a network came from: one record that rebuilds it and its input pipeline exactly.

A :class:`ModelSource` says which network a code set was dumped from (a nacscope checkpoint, an
authors'-format checkpoint, or a seeded random init with its full model config) and how its inputs were
normalised. ``nacscope dump`` stores it as JSON in the code set's ``model_source`` attribute; segment
walks, planes and the TUI rebuild the network from it, and :func:`verify` re-captures stored rows to
prove the rebuild is the network that wrote the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from nacscope.errors import CheckpointError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

KINDS = ("checkpoint", "random-init", "authors")
_LEGACY_RANDOM = re.compile(r"^random-init:(?P<arch>[^:]+):(?P<bits>\d+):seed=(?P<seed>-?\d+)$")


@dataclass(frozen=True)
class ModelSource:
    """How to rebuild a network and what its inputs were.

    Attributes:
        kind: ``checkpoint`` (nacscope's), ``authors`` (the authors' ``last.pt``) or ``random-init``.
        arch: encoder name.  bits: code length D.  seed: weights' seed (random-init only).
        in_channels, image_size: input shape (C, H=W).
        config: the rest of what :func:`nacscope.nets.build_model` needs: ``head_dim``, ``pred_dim``,
            ``encoder_kw`` (``hidden`` for mlp, ``widths`` for convnet).
        checkpoint, sha256: the checkpoint file as recorded and its digest (empty for random-init).
        mean, std: the per-channel normalisation (on the [0, 1] scale) the inputs were fed with.
    """

    kind: str
    arch: str
    bits: int
    in_channels: int
    image_size: int
    config: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    checkpoint: str = ""
    sha256: str = ""
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise CheckpointError(f"unknown model source kind {self.kind!r}; one of {', '.join(KINDS)}")

    # -- constructors ---------------------------------------------------------------------------
    def untrained(self, seed: int, bits: int | None = None) -> "ModelSource":
        """The same architecture and config at a seeded random init (a baseline; normalisation: the data's)."""
        return replace(self, kind="random-init", seed=int(seed), bits=int(bits or self.bits), checkpoint="",
                       sha256="", mean=(), std=())

    @classmethod
    def random_init(cls, arch: str, bits: int, seed: int, in_channels: int, image_size: int, *,
                    head_dim: int | None = None, pred_dim: int | None = None, **encoder_kw) -> "ModelSource":
        """A seeded random init; ``encoder_kw`` as for :func:`nacscope.nets.build_encoder` (``hidden=(256, 256)``)."""
        arch = "vgg16_bn" if arch == "vgg16" else arch
        cfg = {"head_dim": head_dim, "pred_dim": pred_dim, "encoder_kw": _plain(encoder_kw)}
        return cls("random-init", arch, int(bits), int(in_channels), int(image_size), cfg, seed=int(seed))

    @classmethod
    def from_checkpoint(cls, path: str | Path, arch: str | None = None) -> "ModelSource":
        """The source of a checkpoint file or run folder (reads it once)."""
        return load(path, arch=arch)[0]

    @classmethod
    def from_meta(cls, meta: dict) -> "ModelSource":
        """From :func:`nacscope.nets.load_checkpoint`'s metadata."""
        cfg = dict(meta.get("model_config") or {})
        kind = "authors" if meta.get("format") == "authors" else "checkpoint"
        rest = {"head_dim": cfg.get("head_dim"), "pred_dim": cfg.get("pred_dim"),
                "encoder_kw": _plain(cfg.get("encoder_kw") or {})}
        return cls(kind, str(cfg["arch"]), int(cfg["bits"]), int(cfg["in_channels"]), int(cfg["image_size"]), rest,
                   checkpoint=str(meta.get("path", "")), sha256=str(meta.get("sha256", "")),
                   mean=tuple(meta.get("mean") or ()), std=tuple(meta.get("std") or ()))

    # -- JSON -----------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: "str | dict") -> "ModelSource":
        """From :meth:`to_json`'s text (or the dict a code set's decoded attributes hold)."""
        try:
            d = dict(text) if isinstance(text, dict) else json.loads(text)
            d["mean"], d["std"] = tuple(d.get("mean") or ()), tuple(d.get("std") or ())
            return cls(**d)
        except (ValueError, TypeError, KeyError) as exc:
            raise CheckpointError(f"unreadable model_source record ({exc})") from None

    @classmethod
    def from_provenance(cls, attrs: dict[str, Any], file: str | Path | None = None, data=None) -> "ModelSource":
        """The source recorded in a code set's root attributes; files without ``model_source`` fall back to
        the legacy ``checkpoint`` string, ``checkpoint_sha256`` and ``config.normalization``.

        Args:
            attrs: the code set's root attributes.  file: the code set (checkpoints are looked for beside it).
            data: the dataset (legacy random-init files only: their input shape was not recorded).
        """
        if attrs.get("model_source"):
            return cls.from_json(attrs["model_source"])
        rec = str(attrs.get("checkpoint") or "")
        cfg = attrs.get("config") if isinstance(attrs.get("config"), dict) else {}
        norm = cfg.get("normalization") or {}
        m = _LEGACY_RANDOM.match(rec)
        if m:
            if data is None:
                data = dataset_of(attrs)
            kw = {}
            hidden = (cfg.get("settings") or {}).get("hidden") if cfg.get("demo_model") == "random" else None
            if hidden:  # the demo recorded its settings: the random MLP's widths
                kw["hidden"] = tuple(hidden)
            src = cls.random_init(m["arch"], int(m["bits"]), int(m["seed"]), data.channels, data.image_size, **kw)
        else:
            if not rec:
                raise CheckpointError(f"{Path(file).name if file else 'the file'} records no checkpoint: "
                                      "segment walks need the network it was dumped from")
            src = load(resolve_path(rec, file))[0]
            want = str(attrs.get("checkpoint_sha256") or "")
            if want and want != src.sha256:
                raise CheckpointError(f"{src.checkpoint} is not the checkpoint {Path(file or '').name} was dumped from "
                                      "(sha256 differs)")
            src = replace(src, checkpoint=rec)
        if norm.get("mean") and norm.get("std"):
            src = replace(src, mean=tuple(norm["mean"]), std=tuple(norm["std"]))
        return src

    # -- use ------------------------------------------------------------------------------------
    def fit(self, data) -> "ModelSource":
        """This source with the dataset's normalisation where it records none that fits the data."""
        if self.mean and self.std and len(self.mean) == data.channels:
            return self
        return replace(self, mean=tuple(float(v) for v in data.mean), std=tuple(float(v) for v in data.std))

    def build(self, base: str | Path | None = None) -> "nn.Module":
        """The network in eval mode. A checkpoint is looked for as recorded, then relative to ``base``
        (the code set's folder or file), and must have the recorded sha256."""
        if self.kind == "random-init":
            from nacscope.nets.model import random_init

            return random_init(self.arch, self.bits, int(self.seed or 0), self.in_channels, self.image_size,
                               **self._build_kw())
        got, net, meta = load(resolve_path(self.checkpoint, base))
        if self.sha256 and got.sha256 != self.sha256:
            raise CheckpointError(f"{meta['path']} is not the recorded checkpoint (sha256 differs)")
        if (got.arch, got.bits, got.in_channels, got.config) != (self.arch, self.bits, self.in_channels, self.config):
            raise CheckpointError(f"{meta['path']} holds a {got.arch} {got.bits}-bit model with another config "
                                  "than recorded")
        return net

    def normalizer(self):
        """uint8 (B, C, H, W) -> float32 inputs exactly as the dump fed them."""
        import torch

        if not (self.mean and self.std):
            raise CheckpointError("the model source records no normalisation; call fit(data) first")
        mean, std = tuple(self.mean), tuple(self.std)

        def normalize(x: "torch.Tensor") -> "torch.Tensor":
            m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
            s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
            return (x.float() / 255.0 - m) / s  # (B, C, H, W)

        return normalize

    def describe(self) -> str:
        """A short label (``random-init:mlp:16:seed=3``, or the checkpoint path): the legacy ``checkpoint`` attribute."""
        if self.kind == "random-init":
            return f"random-init:{self.arch}:{self.bits}:seed={self.seed}"
        return self.checkpoint

    def _build_kw(self) -> dict[str, Any]:
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in (self.config.get("encoder_kw") or {}).items()}
        return {"head_dim": self.config.get("head_dim"), "pred_dim": self.config.get("pred_dim"), **kw}


def load(path: str | Path, arch: str | None = None) -> tuple[ModelSource, "nn.Module", dict]:
    """Load a checkpoint once: ``(its source, the model in eval mode, load_checkpoint's metadata)``."""
    from nacscope.nets.checkpoint import load_checkpoint

    model, meta = load_checkpoint(path, arch=arch)
    return ModelSource.from_meta(meta), model, meta


def resolve_path(recorded: str, base: str | Path | None) -> Path:
    """A recorded checkpoint path as given, or relative to ``base`` (a code set file or its folder)."""
    if not recorded:
        raise CheckpointError("the model source records no checkpoint path")
    cands = [Path(recorded).expanduser()]
    if base is not None:
        b = Path(base)
        folder = b if b.is_dir() else b.parent
        cands += [folder / recorded, folder / Path(recorded).name]
    for cand in cands:
        if cand.exists():
            return cand
    where = Path(base).name if base is not None else "the code set"
    raise CheckpointError(f"checkpoint {recorded!r} (recorded in {where}) not found; run from the folder of the dump "
                          "or put the checkpoint beside the file")


def inputs(normalize, data, sample_index, rows: Sequence[int]):
    """The normalised network inputs of stored ``rows``, float32 (P, C, H, W), as the dump fed them.

    Args:
        normalize: :meth:`ModelSource.normalizer`.  data: the dataset the file records.
        sample_index: the file's sample ids.  rows: rows of the file.
    """
    import torch

    from nacscope.errors import DataError

    where = {int(v): i for i, v in enumerate(data.indices.tolist())}
    try:
        pos = [where[int(sample_index[r])] for r in rows]
    except KeyError as exc:
        raise DataError(f"sample {exc.args[0]} of the file is not in dataset {data.name!r}") from None
    return normalize(data.images[torch.as_tensor(pos)])


def dataset_of(attrs: dict[str, Any]):
    """The dataset and split a code set records."""
    from nacscope.data import load_dataset
    from nacscope.errors import DataError

    name, split = attrs.get("dataset"), attrs.get("split") or "all"
    if not name:
        raise DataError("the file records no dataset: cannot rebuild the inputs of its samples")
    return load_dataset(str(name), str(split), root=str(attrs.get("data_root") or "") or None)


def _plain(kw: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()}
