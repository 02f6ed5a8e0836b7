"""The network a code set is rebuilt from (segment walks, planes, the TUI's Regions screen) is the one it was
dumped from: re-capturing stored rows through the rebuilt network gives the FILE's stored bits.

The reference is what ``nacscope dump`` wrote to disk, never a second rebuild through the same function.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nacscope.codes import CodeSet
from nacscope.codes.sources import load_inputs, load_network
from tests.helpers import invoke

MODELS = Path(__file__).resolve().parents[2] / "models"
ROWS = [0, 1, 7, 100, 359]


@pytest.fixture(scope="module")
def dumped(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("rebuild")
    out = {"checkpoint": d / "checkpoint.h5", "random-init": d / "random.h5"}
    r = invoke("dump", MODELS / "digits-nac" / "model.pt", "--dataset", "digits", "--split", "test",
               "--thumbnails", "0", "--device", "cpu", "-o", out["checkpoint"])
    assert r.exit_code == 0, r.output
    r = invoke("dump", "--random-init", "--arch", "mlp", "--bits", "16", "--seed", "3", "--dataset", "digits",
               "--split", "test", "--thumbnails", "0", "--device", "cpu", "-o", out["random-init"])
    assert r.exit_code == 0, r.output
    return out


@pytest.mark.parametrize("kind", ["checkpoint", "random-init"])
def test_rebuilt_network_recaptures_the_stored_bits(dumped, kind):
    import torch

    path = dumped[kind]
    with CodeSet(path) as cs:
        stored = cs.bits("code")[ROWS]  # (5, D): what the dump wrote
        x, data = load_inputs(cs.attrs, cs.sample_index, ROWS)
        net = load_network(cs.attrs, path, data)
    with torch.no_grad():
        again = net.codes(x).numpy().astype(np.uint8)  # (5, D)
    assert stored.shape == again.shape and stored.any() and not stored.all()
    np.testing.assert_array_equal(again, stored)


def test_a_different_seed_gives_different_bits(dumped):
    """The check above can fail: the same architecture under another seed does not reproduce the file."""
    import torch

    from nacscope.nets import random_init

    path = dumped["random-init"]
    with CodeSet(path) as cs:
        stored = cs.bits("code")[ROWS]
        x, data = load_inputs(cs.attrs, cs.sample_index, ROWS)
    other = random_init("mlp", 16, 4, data.channels, data.image_size).eval()
    with torch.no_grad():
        assert not np.array_equal(other.codes(x).numpy().astype(np.uint8), stored)
