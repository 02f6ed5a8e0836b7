"""Checkpoints: nacscope round trip, the authors' layout (built here independently), unsafe/bad files."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torchvision
from torch import nn

from nacscope.errors import CheckpointError
from nacscope.nets import build_model, load_checkpoint, model_config, save_checkpoint


class AuthorsNet(nn.Module):
    """The authors' module tree (NAC-NOTES §1), written here from the notes, real widths.

    ``encoder``: ResNet-50 = torchvision's children without max-pool and fc, CIFAR 3x3 stride-1 stem;
    VGG-16-BN = a module whose only parameters live in ``encoder.features``. ``head = Sequential(Linear(F, F), ReLU)``,
    ``linear = Sequential(Linear(F, D))``, ``prediction = Sequential(Linear(F, F), ReLU, Linear(F, D))`` (NAC only).
    """

    def __init__(self, arch: str, bits: int, nac: bool = True):
        super().__init__()
        if arch == "resnet50":
            net = torchvision.models.resnet50(weights=None)
            net.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
            self.encoder = nn.Sequential(*[m for n, m in net.named_children() if n not in ("fc", "maxpool")])
            feat = 2048
        else:
            vgg = torchvision.models.vgg16_bn(weights=None)
            self.encoder = nn.Module()
            self.encoder.features = vgg.features
            feat = 512
        self.arch = arch
        self.head = nn.Sequential(nn.Linear(feat, feat), nn.ReLU())
        self.linear = nn.Sequential(nn.Linear(feat, bits))
        if nac:
            self.prediction = nn.Sequential(nn.Linear(feat, feat), nn.ReLU(), nn.Linear(feat, bits))
        self.bits = bits

    def forward(self, x):
        enc = self.encoder.features if self.arch == "vgg16_bn" else self.encoder
        h = torch.flatten(enc(x), 1)  # (B, F); VGG features of a 32x32 image are 1x1
        return self.linear(self.head(h)) / math.sqrt(self.bits)  # a (B, D)


def _randomise_bn(module: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


@pytest.mark.slow
@pytest.mark.parametrize(
    "arch,given,prefix,nac,n_keys",
    [("resnet50", "resnet50", "", True, 326), ("resnet50", None, "", False, 322), ("vgg16_bn", "vgg16", "module.", True, 99)],
)
def test_authors_checkpoint_gives_same_code_bits(tmp_path, arch, given, prefix, nac, n_keys):
    torch.manual_seed(1)
    theirs = AuthorsNet(arch, bits=32, nac=nac)
    _randomise_bn(theirs, 2)
    theirs.eval()
    sd = theirs.state_dict()
    assert len(sd) == n_keys  # NAC-NOTES §1
    path = tmp_path / "last.pt"
    torch.save({prefix + k: v for k, v in sd.items()}, path)

    model, meta = load_checkpoint(path, arch=given)
    assert meta["format"] == "authors" and meta["arch"] == arch and meta["bits"] == 32
    assert meta["objective"] == ("nac" if nac else "simclr")
    assert meta["mean"] == [0.4914, 0.4822, 0.4465] and len(meta["sha256"]) == 64
    x = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a_theirs = theirs(x)
        a = model.code_preactivation(x)
    want = a_theirs > 0
    assert 0.0 < want.float().mean() < 1.0  # a non-trivial pattern
    assert torch.equal(model.codes(x), want)
    torch.testing.assert_close(a, a_theirs)
    assert model.head_dim == model.feature_dim and a.shape == (6, 32)
    if nac:  # inference head weights are carried over as well
        torch.testing.assert_close(model.predictor[2].weight, theirs.prediction[2].weight)

    other = "vgg16" if arch == "resnet50" else "resnet50"
    with pytest.raises(CheckpointError, match="not " + other):
        load_checkpoint(path, arch=other)


@pytest.mark.slow
def test_authors_truncated_or_mismatched(tmp_path):
    sd = AuthorsNet("vgg16_bn", bits=16).state_dict()
    cut = dict(sd)
    del cut["encoder.features.41.running_var"]  # the last BatchNorm's statistics
    torch.save(cut, tmp_path / "cut.pt")
    with pytest.raises(CheckpointError, match=r"lacks encoder\.features\.41\.running_var \(expected shape \[512\]\)"):
        load_checkpoint(tmp_path / "cut.pt")
    bad = dict(sd)
    bad["head.0.bias"] = torch.zeros(7)
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"head\.0\.bias has shape \[7\], a vgg16_bn model needs \[512\]"):
        load_checkpoint(tmp_path / "bad.pt")
    half = {k: v for k, v in sd.items() if not k.startswith("linear.")}
    torch.save(half, tmp_path / "half.pt")
    with pytest.raises(CheckpointError, match=r"lacks linear\.0\.weight"):
        load_checkpoint(tmp_path / "half.pt")
    rn18 = torchvision.models.resnet18(weights=None)
    other = {"encoder." + k: v for k, v in rn18.state_dict().items() if not k.startswith("fc.")}
    other.update({k: v for k, v in sd.items() if k.startswith(("head.", "linear."))})
    torch.save(other, tmp_path / "r18.pt")
    with pytest.raises(CheckpointError, match="neither ResNet-50"):
        load_checkpoint(tmp_path / "r18.pt")


@pytest.mark.slow
def test_layers_lists_every_resnet50_relu_call(tmp_path):
    """Stem ReLU + 16 bottlenecks x 3 ReLU calls = 49 in the encoder, + the code head's ReLU = 50, + the code layer."""
    from typer.testing import CliRunner

    from nacscope.cli import app

    torch.save(AuthorsNet("resnet50", bits=16, nac=False).state_dict(), tmp_path / "last.pt")
    r = CliRunner().invoke(app, ["layers", str(tmp_path / "last.pt"), "--json"])
    assert r.exit_code == 0, r.output
    sites = json.loads(r.output)
    relus = [s for s in sites if s["name"] != "code"]
    n_bottlenecks = sum(len(getattr(torchvision.models.resnet50(weights=None), f"layer{i}")) for i in range(1, 5))
    assert n_bottlenecks == 16
    enc = [s for s in relus if s["name"].startswith("encoder.")]
    assert len(enc) == 1 + 3 * n_bottlenecks == 49
    assert len([s for s in relus if s["name"].startswith("head.")]) == 1
    assert [s["name"] for s in sites][-1] == "code"


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
