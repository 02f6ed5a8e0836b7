"""The network under study and its inputs: which model, fed which images, normalised how, probed at which sites.

Used by every command that runs a network over a dataset (``layers``, ``dump``, ``regions``, the demo),
so that all of them rebuild the same :class:`~nacscope.nets.ModelSource` the same way.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from nacscope.choices import MAX_BITS, MAX_SEED, SPLITS  # noqa: F401 (SPLITS re-exported)
from nacscope.errors import OptionError, require

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from nacscope.codes.capture import Site
    from nacscope.data import ImageData



def load_data(name: str, split: str, root: Optional[Path]) -> "ImageData":
    """The dataset ``name`` (a built-in name, ``folder:PATH``, or a .npz/.h5 file), one split of it."""
    from nacscope.data import load_dataset

    if split not in SPLITS:
        raise OptionError(f"must be one of {', '.join(SPLITS)}, got {split!r}", option="split")
    return load_dataset(name, split, root=root)


def load_source(
    checkpoint: Optional[Path],
    *,
    random_init: bool = False,
    arch: Optional[str] = None,
    bits: Optional[int] = None,
    seed: int = 0,
    in_channels: int | None = None,
    image_size: int | None = None,
    hidden: tuple[int, ...] | None = None,
) -> tuple["nn.Module", dict[str, Any]]:
    """The model to study: a checkpoint (nacscope or authors' format) or a seeded random init.

    Returns ``(model, meta)``; ``meta["source"]`` is the :class:`~nacscope.nets.ModelSource` that rebuilds it.
    """
    from nacscope.nets import ARCHS, ModelSource
    from nacscope.nets.source import load

    if random_init:
        if checkpoint is not None:
            raise OptionError("give a CHECKPOINT or --random-init, not both")
        if arch is None or bits is None:
            raise OptionError("--random-init needs --arch and --bits")
        if arch not in ARCHS and arch != "vgg16":
            raise OptionError(f"unknown --arch {arch!r}; choose one of {', '.join(ARCHS)}")
        require(1 <= bits <= MAX_BITS, "bits", f"must be in [1, {MAX_BITS}], got {bits}")
        require(0 <= seed <= MAX_SEED, "seed", f"must be in [0, 2**31 - 1], got {seed}")
        if in_channels is None or image_size is None:
            raise OptionError("--random-init needs the input shape: give --dataset")
        if hidden is not None and arch != "mlp":
            raise OptionError(f"hidden widths are for the mlp, not {arch!r}")
        kw = {"hidden": tuple(int(h) for h in hidden)} if hidden is not None else {}
        source = ModelSource.random_init(arch, bits, seed, in_channels, image_size, **kw)
        meta = {"format": "random-init", "arch": source.arch, "bits": bits, "seed": seed, "sha256": "",
                "path": source.describe(), "mean": None, "std": None, "source": source,
                "model_config": {"arch": source.arch, "bits": bits, "in_channels": in_channels,
                                 "image_size": image_size, **({"encoder_kw": kw} if kw else {})}}
        return source.build(), meta
    if checkpoint is None:
        raise OptionError("give a CHECKPOINT, or --random-init --arch A --bits D for an untrained baseline")
    if bits is not None:
        raise OptionError("--bits is for --random-init; a checkpoint records its own code length")
    source, model, meta = load(checkpoint, arch=arch)
    meta["source"] = source
    return model, meta


def input_shape(meta: dict, data: "ImageData | None") -> tuple[int, int]:
    """(channels, size) the model expects; checked against the data when both are known."""
    cfg = meta.get("model_config") or {}
    c, s = cfg.get("in_channels"), cfg.get("image_size")
    if data is not None:
        if c is not None and int(c) != data.channels:
            raise OptionError(
                f"the model expects {c}-channel images, dataset {data.name!r} has {data.channels}; "
                "use a checkpoint trained on this kind of data"
            )
        if meta.get("arch") == "mlp" and s is not None and int(s) != data.image_size:
            raise OptionError(
                f"the mlp model expects {s}x{s} images, dataset {data.name!r} has {data.image_size}x{data.image_size}"
            )
        return data.channels, data.image_size
    return int(c or 3), int(s or 32)


def normalizer(meta: dict, data: "ImageData") -> tuple[Callable[["torch.Tensor"], "torch.Tensor"], dict]:
    """The checkpoint's normalisation when it records one that fits the data, else the dataset's.

    Returns ``(normalize, {"mean", "std"})``; ``meta["source"]`` becomes the fitted :class:`ModelSource`."""
    from nacscope.nets import ModelSource

    source = meta.get("source")
    if source is None:  # a meta built by hand (a caller's own random init): its mean/std, else the data's
        c = int((meta.get("model_config") or {}).get("in_channels") or data.channels)
        source = ModelSource.random_init(str(meta.get("arch") or "mlp"), int(meta.get("bits") or 1), 0, c,
                                         data.image_size)
        if meta.get("mean") and meta.get("std"):
            source = replace(source, mean=tuple(meta["mean"]), std=tuple(meta["std"]))
    source = source.fit(data)
    meta["source"] = source
    return source.normalizer(), {"mean": list(source.mean), "std": list(source.std)}


def trace_sites(model: "nn.Module", shape: tuple[int, int], normalize=None, data=None) -> list["Site"]:
    """ReLU sites of ``model`` on a probe batch (two samples of ``data``, or zeros); shape errors become one line."""
    import torch

    from nacscope.codes.capture import list_sites

    c, s = shape
    x = data.images[:2] if data is not None and len(data) >= 2 else torch.zeros(2, c, s, s, dtype=torch.uint8)
    x = normalize(x) if normalize is not None else x.float()  # (2, C, S, S) float32
    try:
        return list_sites(model.eval(), x)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:160]
        raise OptionError(f"the model cannot run on {c}x{s}x{s} inputs ({first})") from None
