"""Datasets (registry, on-disk loaders), retrieval protocols and per-sample batch augmentation.

The loaders and augmentation need torch, so they are imported on first use (module ``__getattr__``):
``import nacscope.data.protocols`` (used by :mod:`nacscope.codes`) stays torch-free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nacscope._lazy import lazy_exports

if TYPE_CHECKING:
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
    from nacscope.data.datasets import BUILTIN, load_dataset
    from nacscope.data.imagedata import ImageData, channel_stats

#: Names imported on first access, from the module that defines them.
_LAZY = {
    **dict.fromkeys(("RECIPES", "Augment", "Recipe", "adjust_colors", "apply_augmentation", "color_jitter",
                     "crop_flip_theta", "jitter_factors"), "nacscope.data.augment"),
    **dict.fromkeys(("BUILTIN", "load_dataset"), "nacscope.data.datasets"),
    **dict.fromkeys(("ImageData", "channel_stats"), "nacscope.data.imagedata"),
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
