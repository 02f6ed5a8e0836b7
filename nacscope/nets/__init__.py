"""Encoders, the NAC/SimCLR model wrapper, and checkpoint save/load (nacscope's and the authors' format)."""

from nacscope.nets.checkpoint import (
    AUTHORS_MEAN,
    AUTHORS_STD,
    load_checkpoint,
    model_config,
    save_checkpoint,
    unwrap,
)
from nacscope.nets.encoders import ARCHS, build_encoder
from nacscope.nets.model import NACModel, NACOutput, build_model, random_init
from nacscope.nets.source import ModelSource

__all__ = [
    "ARCHS",
    "AUTHORS_MEAN",
    "AUTHORS_STD",
    "NACModel",
    "NACOutput",
    "ModelSource",
    "build_encoder",
    "build_model",
    "load_checkpoint",
    "model_config",
    "random_init",
    "save_checkpoint",
    "unwrap",
]
