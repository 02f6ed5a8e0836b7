"""Datasets (registry, on-disk loaders) and per-sample batch augmentation."""

from nacscope.data.augment import (
    RECIPES,
    Augment,
    Recipe,
    adjust_colors,
    apply_augmentation,
    color_jitter,
    crop_flip_theta,
    jitter_factors,
)
from nacscope.data.datasets import BUILTIN, ImageData, channel_stats, load_dataset

__all__ = [
    "BUILTIN",
    "RECIPES",
    "Augment",
    "ImageData",
    "Recipe",
    "adjust_colors",
    "apply_augmentation",
    "jitter_factors",
    "channel_stats",
    "color_jitter",
    "crop_flip_theta",
    "load_dataset",
]
