"""Fixtures shared by the CLI tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def mlp_ckpt(tmp_path_factory):
    from nacscope.nets import build_model, model_config, save_checkpoint

    torch.manual_seed(0)
    model = build_model("mlp", 16, in_channels=1, image_size=8, hidden=(32, 32))
    path = tmp_path_factory.mktemp("ckpt") / "mlp.pt"
    save_checkpoint(path, model, model_cfg=model_config(model, 1, 8, {"hidden": (32, 32)}),
                    data={"name": "digits", "mean": [0.3], "std": [0.4]})
    return path
