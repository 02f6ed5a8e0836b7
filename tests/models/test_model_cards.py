"""Every model in ``models/`` has a complete card whose metrics re-measure from its ``model.pt``.

The re-measurement runs the real ``nacscope dump models/<name>/model.pt --dataset D --split test``
(so the card's own command is exercised) and the analysis engine, through ``models/make_models.py``'s
``measure``, the function that wrote the card.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

MODELS = Path(__file__).resolve().parents[2] / "models"
NAMES = sorted(p.parent.name for p in MODELS.glob("*/model.pt"))
EXPECTED = {"digits-nac", "digits-simclr", "digits-random", "mnist5k-nac", "mnist5k-simclr"}
#: Allowed drift (floating-point libraries differ between machines): absolute for scores, relative for counts.
SCORE_TOL = 0.01
COUNT_TOL = 0.02


def make_models():
    spec = importlib.util.spec_from_file_location("nacscope_make_models", MODELS / "make_models.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def card_metrics(text: str) -> dict[str, float]:
    """The ``| metric | value |`` table of a card."""
    body = text.split("| metric | value |", 1)[1]
    out = {}
    for line in body.splitlines()[2:]:
        m = re.match(r"^\| (.+?) \| ([0-9.]+) \|$", line.strip())
        if not m:
            break
        out[m.group(1)] = float(m.group(2))
    return out


def test_zoo_is_complete_and_small():
    assert set(NAMES) == EXPECTED
    total = sum((MODELS / n / "model.pt").stat().st_size for n in NAMES)
    assert total < 6e6, f"models/ holds {total / 1e6:.1f} MB of checkpoints"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_card_fields(name):
    text = (MODELS / name / "README.md").read_text()
    for field in ("| architecture |", "| bits |", "| data |", "| objective |", "| settings |", "| date |",
                  "## How it was made", "## Metrics on held-out data"):
        assert field in text, field
    if not name.endswith("random"):
        assert re.search(r"nacscope train --dataset \S+ --arch mlp --objective (nac|simclr) ", text)
    assert len(card_metrics(text)) == len(make_models().METRICS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_card_metrics_reproduce(name, tmp_path):
    mm = make_models()
    text = (MODELS / name / "README.md").read_text()
    dataset = re.search(rf"nacscope dump models/{name}/model.pt --dataset (\S+) --split test", text).group(1)
    stated = card_metrics(text)
    measured = mm.measure(MODELS / name / "model.pt", dataset, tmp_path)
    assert set(stated) == set(measured)
    for label, value in stated.items():
        got = measured[label]
        if isinstance(got, int):
            assert abs(got - value) <= COUNT_TOL * value + 1, (label, got, value)
        else:
            assert abs(got - value) <= SCORE_TOL, (label, got, value)


def test_checkpoints_load_weights_only():
    """The shipped files are plain data: they load with weights_only=True and rebuild their models."""
    import torch

    from nacscope.nets import load_checkpoint

    for name in NAMES:
        state = torch.load(MODELS / name / "model.pt", weights_only=True)
        assert state.get("optimizer") is None
        model, meta = load_checkpoint(MODELS / name / "model.pt")
        assert meta["bits"] == 32 and model.bits == 32
