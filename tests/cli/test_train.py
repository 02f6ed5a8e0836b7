"""`nacscope train` end to end on digits, resume through the CLI, and one-line errors for bad input."""

from __future__ import annotations

import json

import pytest
import torch

from tests import helpers
from tests.helpers import assert_one_line_error

TINY = ["--dataset", "digits", "--arch", "mlp", "--hidden", "64", "--bits", "8", "--batch-size", "128", "--quiet",
        "--device", "cpu"]


def invoke(*args):
    """``nacscope train ARGS``."""
    return helpers.invoke("train", *args)


@pytest.mark.slow
def test_train_then_resume(tmp_path):
    run = tmp_path / "run"
    r = invoke(*TINY, "--epochs", "2", "--stop-after", "1", "--eval-every", "1", "--out", run)
    assert r.exit_code == 0, r.output
    assert "--resume" in r.output and (run / "last.pt").is_file()
    r = invoke("--resume", run, "--epochs", "2", "--quiet")
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "trained 2 epochs" in out and "random init" in out and "mAP" in out
    ck = torch.load(run / "last.pt", weights_only=True)
    assert ck["epoch"] == 2 and ck["config"]["hidden"] == [64]
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"loss", "lr", "images_per_s"} <= set(records[0]) and records[-1]["final"]
    periodic = [r for r in records if "eval" in r and not r.get("final")]
    assert [r["epoch"] for r in periodic] == [1] and 0 <= periodic[0]["eval"]["map"] <= 1
    assert json.loads((run / "config.json").read_text())["bits"] == 8
    # the finished run's checkpoint loads for downstream tools
    from nacscope.nets import load_checkpoint

    model, meta = load_checkpoint(run)
    assert meta["dataset"] == "digits" and model.bits == 8

    assert_one_line_error(invoke(*TINY, "--epochs", "1", "--out", run), "already holds a run", "--force")


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--p", "0.7"], "--p"),
        (["--arch", "vit"], "--arch"),
        (["--objective", "byol"], "--objective"),
        (["--hidden", "a,b"], "--hidden"),
        (["--preset", "paper-jft300m"], "preset"),
        (["--dataset", "nope"], "unknown dataset"),
        (["--batch-size", "5000"], "larger than the training set"),
        (["--arch", "vgg16_bn"], "cannot take 8x8"),
        (["--device", "cuda:0"] if not torch.cuda.is_available() else ["--device", "tpu"], "--device"),
    ],
)
def test_bad_options_give_one_line_errors(tmp_path, args, fragment):
    run = tmp_path / "run"
    assert_one_line_error(invoke(*TINY, "--epochs", "1", *args, "--out", run), fragment)
    assert not (run / "last.pt").exists()


def test_resume_errors(tmp_path):
    assert_one_line_error(invoke("--resume", tmp_path / "none"), "nothing to resume")
    assert_one_line_error(invoke("--resume", tmp_path, "--force"), "contradict")
    assert_one_line_error(invoke(*TINY), "--out")
    assert_one_line_error(invoke("--resume", tmp_path, "--lr", "0.1"), "--lr cannot change when resuming")
