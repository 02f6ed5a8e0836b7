"""Checkpoints: nacscope's own (atomic save, full training state) and the authors' ``last.pt`` layout.

Everything is loaded with ``torch.load(..., weights_only=True)``: a checkpoint is data, never code.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nacscope._files import atomic_write, file_sha256
from nacscope.errors import CheckpointError
from nacscope.nets.model import NACModel, build_model

FORMAT = "nacscope-checkpoint"
VERSION = 1
# The authors' normalisation constants (NAC-NOTES §3); their checkpoints expect exactly these.
AUTHORS_MEAN = (0.4914, 0.4822, 0.4465)
AUTHORS_STD = (0.2023, 0.1994, 0.2010)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under DDP and/or ``torch.compile`` wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def model_config(model: NACModel, in_channels: int, image_size: int, encoder_kw: dict | None = None) -> dict:
    """What :func:`build_model` needs to rebuild ``model`` (plain types only)."""
    return {
        "arch": model.arch,
        "bits": model.bits,
        "in_channels": in_channels,
        "image_size": image_size,
        "head_dim": model.head_dim,
        "pred_dim": model.pred_dim,
        "encoder_kw": {k: list(v) if isinstance(v, tuple) else v for k, v in (encoder_kw or {}).items()},
    }


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary name in the same folder, then rename over ``path``."""
    with atomic_write(path) as tmp:
        torch.save(obj, tmp)


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    model_cfg: dict,
    config: dict | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: dict | None = None,
    rng: dict | None = None,
    epoch: int = 0,
    step: int = 0,
    data: dict | None = None,
    extra: dict | None = None,
) -> None:
    """Write a nacscope checkpoint atomically.

    Args:
        path: destination file (``RUN_DIR/last.pt``...).
        model: the model (DDP / compiled wrappers are unwrapped).
        model_cfg: from :func:`model_config`.
        config: the training configuration as plain types.
        optimizer: its state is saved when given.
        scheduler: the learning-rate schedule's state (plain dict).
        rng: random-generator states (tensors).
        epoch: number of completed epochs.  step: number of completed optimiser steps.
        data: dataset provenance: ``name``, ``mean``, ``std``.
        extra: objective-specific training state as plain tensors/dicts (``nac-moco``: key encoder, queue,
            queue pointer), saved under ``"extra"``.
    """
    state = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": model_cfg,
        "config": config or {},
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler or {},
        "rng": rng or {},
        "epoch": int(epoch),
        "step": int(step),
        "data": data or {},
        "extra": extra or {},
    }
    atomic_torch_save(state, path)


CHECKPOINT_NAMES = ("last.pt", "model.pt")  # looked for, in this order, in a folder (run dir or models/<name>)


def resolve_checkpoint_path(path: str | os.PathLike) -> Path:
    """A checkpoint file, or the ``last.pt``/``model.pt`` inside a folder (a run or a ``models/`` entry)."""
    path = Path(path)
    if path.is_dir():
        for name in CHECKPOINT_NAMES:
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path} is a folder without last.pt or model.pt; give a checkpoint file or a run folder")
    return path


def read_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """``torch.load(weights_only=True)`` with one-line :class:`CheckpointError` on any problem."""
    path = resolve_checkpoint_path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc).lower()
        if "unsupported global" in text or "global" in text and "allowed" in text:
            raise CheckpointError(
                f"{path} holds pickled Python objects or code, not plain tensors; refusing to load it "
                "(re-save it as a state_dict)"
            ) from None
        raise CheckpointError(f"{path} is not a PyTorch checkpoint (unreadable pickle data)") from None
    except Exception as exc:  # zip errors, truncated files, random bytes
        raise CheckpointError(f"{path} is not a PyTorch checkpoint ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a checkpoint dictionary")
    return obj


def _strip_prefix(sd: dict, prefix: str) -> dict:
    if sd and all(k.startswith(prefix) for k in sd):
        return {k[len(prefix) :]: v for k, v in sd.items()}
    return sd


# The authors' ``last.pt`` (NAC-NOTES §1): ``head = Sequential(Linear(F, F), ReLU)``, ``linear = Sequential(Linear(F, D))``,
# ``prediction = Sequential(Linear(F, F), ReLU, Linear(F, D))`` (NAC only). nacscope's ``head`` is their head + linear.
AUTHORS_KEY_COUNTS = {("resnet50", "nac"): 326, ("resnet50", "simclr"): 322, ("vgg16_bn", "nac"): 99, ("vgg16_bn", "simclr"): 95}
_TO_NACSCOPE = (("linear.0.", "head.2."), ("prediction.", "predictor."), ("head.", "head."), ("encoder.", "encoder."))


def is_authors_state_dict(sd: dict) -> bool:
    """True for the authors' layout: keys ``encoder.*``, ``head.0.*``, ``linear.0.*`` (``prediction.*`` for NAC)."""
    keys = [k for k in sd if isinstance(k, str)]
    return any(k.startswith("encoder.") for k in keys) and any(k.startswith(("head.", "linear.")) for k in keys)


def detect_authors_arch(sd: dict) -> str:
    """``resnet50`` or ``vgg16_bn`` from the encoder keys."""
    if any(k.startswith("encoder.features.") for k in sd):
        return "vgg16_bn"
    if any(k.startswith("encoder.4.0.conv3.") for k in sd):
        return "resnet50"
    raise CheckpointError(
        "checkpoint has the authors' key layout but an encoder that is neither ResNet-50 (encoder.4.0.conv3.*) "
        "nor VGG-16-BN (encoder.features.*)"
    )


def authors_key(nacscope_key: str) -> str:
    """The authors' name of one nacscope model key (``head.2.weight`` -> ``linear.0.weight``...)."""
    for theirs, ours in _TO_NACSCOPE:
        if nacscope_key.startswith(ours):
            return theirs + nacscope_key[len(ours) :]
    return nacscope_key


def _to_nacscope(key: str) -> str:
    for theirs, ours in _TO_NACSCOPE:
        if key.startswith(theirs):
            return ours + key[len(theirs) :]
    return key


def _shape(sd: dict, key: str) -> tuple[int, ...]:
    try:
        return tuple(sd[key].shape)
    except KeyError:
        raise CheckpointError(f"authors'-format checkpoint lacks {key}") from None


def _load_authors(sd: dict, arch: str | None, path: Path) -> tuple[NACModel, dict]:
    detected = detect_authors_arch(sd)
    if arch is not None:
        want = "vgg16_bn" if arch in ("vgg16", "vgg16_bn") else arch
        if want != detected:
            raise CheckpointError(f"{path} holds a {detected} encoder, not {arch}; pass --arch {detected} or omit it")
    try:
        bits = _shape(sd, "linear.0.weight")[0]
        head_dim, feature_dim = _shape(sd, "head.0.weight")
        has_pred = any(k.startswith("prediction.") for k in sd)
        pred_dim = _shape(sd, "prediction.0.weight")[0] if has_pred else None
        first = _shape(sd, "encoder.features.0.weight" if detected == "vgg16_bn" else "encoder.0.weight")
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    model = build_model(detected, bits, in_channels=first[1], image_size=32, head_dim=head_dim, pred_dim=pred_dim)
    expected = {
        authors_key(k): tuple(v.shape)
        for k, v in model.state_dict().items()
        if has_pred or not k.startswith("predictor.")
    }
    for key, shape in expected.items():  # the first missing or mismatched key, in module order
        if key not in sd:
            raise CheckpointError(f"{path}: {detected} checkpoint lacks {key} (expected shape {list(shape)})")
        if tuple(sd[key].shape) != shape:
            raise CheckpointError(
                f"{path}: {key} has shape {list(sd[key].shape)}, a {detected} model needs {list(shape)}"
            )
    extra = [k for k in sd if k not in expected]
    if extra:
        raise CheckpointError(f"{path}: unexpected key {extra[0]} (shape {list(sd[extra[0]].shape)}) for {detected}")
    model.load_state_dict({_to_nacscope(k): v for k, v in sd.items()}, strict=False)
    meta = {
        "format": "authors",
        "arch": detected,
        "bits": bits,
        "has_predictor": has_pred,
        "objective": "nac" if has_pred else "simclr",
        "config": {},
        "dataset": "cifar10",
        "mean": list(AUTHORS_MEAN),
        "std": list(AUTHORS_STD),
        "model_config": {
            "arch": detected,
            "bits": bits,
            "in_channels": first[1],
            "image_size": 32,
            "head_dim": head_dim,
            "pred_dim": pred_dim,
            "encoder_kw": {},
        },
    }
    return model, meta


def load_checkpoint(
    path: str | os.PathLike, *, arch: str | None = None, map_location="cpu"
) -> tuple[NACModel, dict]:
    """Load a nacscope checkpoint (or run folder) or an authors'-format state_dict into a NACModel.

    Args:
        path: a ``.pt`` file, or a folder holding ``last.pt`` (a run) or ``model.pt`` (``models/<name>``).
        arch: expected architecture; required to match (``resnet50`` / ``vgg16`` for the authors' files).
        map_location: passed to ``torch.load``.

    Returns:
        ``(model in eval mode, metadata)``; metadata keys: ``format`` (``nacscope`` / ``authors``), ``arch``,
        ``bits``, ``config``, ``sha256``, ``dataset``, ``mean``, ``std``, ``model_config``, ``epoch``, ``step``.

    Raises:
        CheckpointError: missing file, not a checkpoint, pickled code, architecture mismatch.
    """
    path = resolve_checkpoint_path(path)
    obj = read_checkpoint(path, map_location=map_location)
    if obj.get("format") == FORMAT:
        cfg = obj["model_config"]
        if arch is not None and {"vgg16": "vgg16_bn"}.get(arch, arch) != cfg["arch"]:
            raise CheckpointError(f"{path} holds a {cfg['arch']} model, not {arch}; omit --arch or pass --arch {cfg['arch']}")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.get("encoder_kw", {}).items()}
        model = build_model(
            cfg["arch"],
            cfg["bits"],
            in_channels=cfg["in_channels"],
            image_size=cfg["image_size"],
            head_dim=cfg.get("head_dim"),
            pred_dim=cfg.get("pred_dim"),
            **kw,
        )
        try:
            model.load_state_dict(obj["model"])
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: weights do not fit the recorded architecture ({str(exc).splitlines()[0]})") from None
        data = obj.get("data") or {}
        meta = {
            "format": "nacscope",
            "arch": cfg["arch"],
            "bits": cfg["bits"],
            "config": obj.get("config", {}),
            "objective": obj.get("config", {}).get("objective"),
            "dataset": data.get("name"),
            "mean": data.get("mean"),
            "std": data.get("std"),
            "model_config": cfg,
            "epoch": obj.get("epoch"),
            "step": obj.get("step"),
        }
    else:
        sd = obj
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                sd = obj[key]
                break
        sd = _strip_prefix(_strip_prefix(sd, "module."), "_orig_mod.")
        if not all(isinstance(v, torch.Tensor) for v in sd.values()) or not is_authors_state_dict(sd):
            raise CheckpointError(
                f"{path} is neither a nacscope checkpoint nor an authors' NAC state_dict (encoder.*, head.0.*, linear.0.*)"
            )
        model, meta = _load_authors(sd, arch, path)
        meta.update(epoch=None, step=None)
    meta["path"] = str(path)
    meta["sha256"] = file_sha256(path)
    return model.eval(), meta
