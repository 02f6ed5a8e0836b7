"""Checkpoints: nacscope round trip, the authors' layout (built here independently), unsafe/bad files."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn

from nacscope.errors import CheckpointError
from nacscope.nets import build_model, load_checkpoint, model_config, save_checkpoint


class AuthorsStyleNAC(nn.Module):
    """The authors' module layout, written here from the issue's description: encoder, head, linear, prediction."""

    def __init__(self, arch: str, bits: int, dim: int = 256):
        super().__init__()
        if arch == "resnet50":
            net = torchvision.models.resnet50(weights=None)
            net.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
            self.encoder = nn.Sequential(*[m for n, m in net.named_children() if n not in ("fc", "maxpool")])
            feat = 2048
        else:
            net = torchvision.models.vgg16_bn(weights=None)
            net.classifier = nn.Identity()
            net.avgpool = nn.AdaptiveAvgPool2d(1)
            self.encoder = net
            feat = 512
        self.head = nn.Sequential(nn.Linear(feat, dim), nn.ReLU())
        self.linear = nn.Linear(dim, bits)
        self.prediction = nn.Sequential(nn.Linear(feat, feat), nn.ReLU(), nn.Linear(feat, bits))
        self.bits = bits

    def code_bits(self, x):
        h = torch.flatten(self.encoder(x), 1)
        return (self.linear(self.head(h)) / math.sqrt(self.bits)) > 0


def _randomise_bn(module: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


@pytest.mark.parametrize("arch,given,prefix", [("resnet50", "resnet50", ""), ("vgg16_bn", "vgg16", "module.")])
def test_authors_checkpoint_gives_same_code_bits(tmp_path, arch, given, prefix):
    torch.manual_seed(1)
    theirs = AuthorsStyleNAC(arch, bits=32)
    _randomise_bn(theirs, 2)
    theirs.eval()
    path = tmp_path / "last.pt"
    torch.save({prefix + k: v for k, v in theirs.state_dict().items()}, path)

    model, meta = load_checkpoint(path, arch=given)
    assert meta["format"] == "authors" and meta["arch"] == arch and meta["bits"] == 32
    assert meta["mean"] == [0.4914, 0.4822, 0.4465] and len(meta["sha256"]) == 64
    x = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = theirs.code_bits(x)
        got = model.codes(x)
        a = model.code_preactivation(x)
    assert want.float().mean() not in (0.0, 1.0)  # a non-trivial pattern
    assert torch.equal(got, want)
    assert model.head_dim == 256 and a.shape == (6, 32)

    # inference head weights are carried over as well
    torch.testing.assert_close(model.predictor[2].weight, theirs.prediction[2].weight)

    other = "vgg16" if arch == "resnet50" else "resnet50"
    with pytest.raises(CheckpointError, match="not " + other):
        load_checkpoint(path, arch=other)


def test_nacscope_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_model("convnet", 12, in_channels=3, image_size=16, widths=(8, 16))
    model.train()(torch.randn(8, 3, 16, 16))  # move BN running stats
    path = tmp_path / "ck.pt"
    save_checkpoint(path, model, model_cfg=model_config(model, 3, 16, {"widths": (8, 16)}),
                    config={"objective": "nac"}, epoch=3, step=30,
                    data={"name": "fake", "mean": [0.5] * 3, "std": [0.2] * 3})
    assert not list(tmp_path.glob("*.partial"))
    loaded, meta = load_checkpoint(path)
    x = torch.randn(4, 3, 16, 16)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.code_preactivation(x), model.code_preactivation(x), rtol=0, atol=0)
    assert meta["format"] == "nacscope" and meta["epoch"] == 3 and meta["dataset"] == "fake"
    assert meta["objective"] == "nac" and meta["std"] == [0.2] * 3
    with pytest.raises(CheckpointError, match="not mlp"):
        load_checkpoint(path, arch="mlp")
    # a run folder works as well
    (tmp_path / "last.pt").write_bytes(path.read_bytes())
    assert load_checkpoint(tmp_path)[1]["step"] == 30


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_bad_files(tmp_path, capsys):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00\x01 definitely not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_checkpoint(junk)
    evil = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, evil)
    with pytest.raises(CheckpointError, match="pickled"):
        load_checkpoint(evil)
    assert "must never run" not in capsys.readouterr().out
    other = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(CheckpointError, match="neither"):
        load_checkpoint(other)
    for err in (CheckpointError,):
        try:
            load_checkpoint(junk)
        except err as exc:
            assert "\n" not in str(exc)
