"""ModelSource: a code set's recorded source rebuilds the network that wrote it, for every kind of source.

The reference is always the FILE's stored bits (what the dump wrote), re-captured through the rebuilt
network; never a second rebuild through the same function.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from nacscope.codes import CodeSet
from nacscope.codes.capture import capture_bits, list_sites
from nacscope.codes.format import unpack_bits
from nacscope.codes.sources import load_inputs, load_network, rebuild
from nacscope.errors import CheckpointError
from nacscope.nets import ModelSource
from nacscope.codes.sources import verify
from tests.helpers import invoke
from tests.nets.test_checkpoint import AuthorsNet, _randomise_bn

MODELS = Path(__file__).resolve().parents[2] / "models"
ROWS = [0, 3, 50, 200]


def _authors_checkpoint(path: Path) -> Path:
    """The authors' ResNet-50 module tree with a 1-channel stem (digits), saved as their bare state_dict."""
    torch.manual_seed(5)
    theirs = AuthorsNet("resnet50", bits=24, nac=True)
    theirs.encoder[0] = nn.Conv2d(1, 64, 3, 1, 1, bias=False)
    _randomise_bn(theirs, 6)
    torch.save(theirs.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def dumped(tmp_path_factory) -> dict[str, Path]:
    from nacscope.demo import DemoSettings, dump_or_reuse

    d = tmp_path_factory.mktemp("source")
    out = {"checkpoint": d / "checkpoint.h5", "random-init": d / "random.h5", "authors": d / "authors.h5"}
    r = invoke("dump", MODELS / "digits-nac" / "model.pt", "--dataset", "digits", "--split", "test",
               "--thumbnails", "0", "--device", "cpu", "-o", out["checkpoint"])
    assert r.exit_code == 0, r.output
    # The demo's random baseline: an MLP 256-256 (not build_model's default 512-512), every ReLU site.
    dump_or_reuse(DemoSettings(bits=16), "random", None, out["random-init"], force=True)
    ckpt = _authors_checkpoint(d / "last.pt")
    r = invoke("dump", ckpt, "--dataset", "digits", "--split", "test", "--thumbnails", "0", "--device", "cpu",
               "--no-features", "-o", out["authors"])
    assert r.exit_code == 0, r.output
    return out


def _recaptured_equals_file(path: Path, model: nn.Module, rows=ROWS) -> int:
    """Re-capture ``rows`` through ``model``; assert equal to the file's bits; return the layers compared."""
    with CodeSet(path) as cs:
        x, _ = load_inputs(cs.attrs, cs.sample_index, rows)
        names = [lay.name for lay in cs.layers if lay.kind in ("relu", "code")]
        stored = {n: cs.bits(n)[rows] for n in names}
        units = {n: cs.layer(n).units for n in names}
    sites = {s.name: s for s in list_sites(model, x)}
    got, _ = capture_bits(model, x, [sites[n] for n in names])
    for n in names:
        again = unpack_bits(got[n].numpy(), units[n])
        assert stored[n].any() and not stored[n].all(), n
        np.testing.assert_array_equal(again, stored[n], err_msg=n)
    return len(names)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["checkpoint", "random-init", "authors"])
def test_recorded_source_rebuilds_the_network_that_wrote_the_file(dumped, kind):
    path = dumped[kind]
    with CodeSet(path) as cs:
        assert "model_source" in cs.attrs
        source = ModelSource.from_provenance(cs.attrs, path)
        assert source.kind == kind
        model, x = rebuild(cs, ROWS)  # verified on stored rows
    assert x.shape == (len(ROWS), 1, 8, 8)
    assert _recaptured_equals_file(path, source.build(path)) >= 1
    assert _recaptured_equals_file(path, model) >= 1


@pytest.mark.slow
def test_the_demo_random_baseline_is_rebuilt_with_its_256_wide_layers(dumped):
    path = dumped["random-init"]
    with CodeSet(path) as cs:
        source = ModelSource.from_provenance(cs.attrs, path)
        widths = [cs.layer(n).units for n in cs.layer_names if n.startswith("encoder")]
    assert source.config["encoder_kw"]["hidden"] == [256, 256] and source.seed == 0 and source.bits == 16
    assert widths == [256, 256]  # what the dump stored: the file itself says 256-256
    with CodeSet(path) as cs:
        model = load_network(cs.attrs, path)
    assert [m.out_features for m in model.encoder if isinstance(m, nn.Linear)] == [256, 256]
    assert _recaptured_equals_file(path, model) == 4  # encoder.2, encoder.5, head ReLU, code


@pytest.mark.slow
def test_json_round_trip_and_the_normaliser(dumped):
    with CodeSet(dumped["checkpoint"]) as cs:
        source = ModelSource.from_provenance(cs.attrs, dumped["checkpoint"])
        norm = cs.attrs["config"]["normalization"]
    assert ModelSource.from_json(source.to_json()) == source
    assert list(source.mean) == norm["mean"] and len(source.sha256) == 64
    x = torch.tensor([[[[0, 255], [51, 102]]]], dtype=torch.uint8)  # (1, 1, 2, 2)
    want = (np.array([0, 255, 51, 102], dtype=np.float64) / 255.0 - norm["mean"][0]) / norm["std"][0]
    np.testing.assert_allclose(source.normalizer()(x).numpy().ravel(), want, rtol=1e-6)


@pytest.mark.slow
def test_a_tampered_source_is_refused_in_one_line(dumped, tmp_path):
    path = dumped["random-init"]
    with CodeSet(path) as cs:
        source = ModelSource.from_provenance(cs.attrs, path)
        wide = replace(source, config={**source.config, "encoder_kw": {"hidden": [512, 512]}})
        reseeded = replace(source, seed=1)
        for bad in (wide, reseeded):
            with pytest.raises(CheckpointError) as exc:
                verify(bad, cs, ROWS)
            assert "\n" not in str(exc.value) and "not the network" in str(exc.value)
    ck = dumped["checkpoint"]
    other = MODELS / "digits-simclr" / "model.pt"
    with CodeSet(ck) as cs:
        source = ModelSource.from_provenance(cs.attrs, ck)
        with pytest.raises(CheckpointError, match="sha256"):
            replace(source, checkpoint=str(other)).build(ck)
        swapped = ModelSource.from_checkpoint(other)  # a valid source of another network
        with pytest.raises(CheckpointError) as exc:
            verify(swapped, cs, ROWS)
        assert "\n" not in str(exc.value)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["checkpoint", "random-init"])
def test_a_legacy_file_without_model_source_still_rebuilds(dumped, tmp_path, kind):
    path = tmp_path / f"legacy-{kind}.h5"
    shutil.copy(dumped[kind], path)
    with h5py.File(path, "r+", locking=False) as f:
        del f.attrs["model_source"]
    with CodeSet(path) as cs:
        assert "model_source" not in cs.attrs
        model, _ = rebuild(cs, ROWS)
    assert _recaptured_equals_file(path, model) >= 3
