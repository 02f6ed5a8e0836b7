"""`nacscope layers`, `dump` and `regions`: end to end, and every bad input of the issue."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from nacscope.codes import CodeSet, partial_path
from tests.helpers import assert_one_line_error, hang_guard, invoke




def test_layers_lists_sites_with_units(mlp_ckpt):
    r = invoke("layers", mlp_ckpt, "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [(s["name"], s["units"]) for s in rows] == [("encoder.3", 32), ("encoder.6", 32), ("head.1", 32), ("code", 16)]
    assert [s["default"] for s in rows] == [False, True, True, True]


@pytest.mark.slow
def test_layers_resnet18_random_init_counts_every_call():
    r = invoke("layers", "--random-init", "--arch", "resnet18", "--bits", "8", "--dataset", "digits", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    names = [s["name"] for s in rows]
    assert names[:3] == ["encoder.2", "encoder.3.0.relu:1", "encoder.3.0.relu:2"]
    assert len(names) == 19 and names[-2:] == ["head.1", "code"]
    # digits are 1x8x8: stem 64x8x8, layer4 512x1x1
    assert rows[0]["units"] == 64 * 8 * 8 and rows[-3]["units"] == 512


def test_dump_end_to_end(tmp_path, mlp_ckpt):
    out = tmp_path / "codes.h5"
    r = invoke("dump", mlp_ckpt, "--dataset", "digits", "--split", "all", "--layers", "encoder.*", "--layers", "code",
               "--queries-per-class", "10", "-o", out, "--batch-size", "500")
    assert r.exit_code == 0, r.output
    with CodeSet(out) as cs:
        assert cs.layer_names == ["encoder.3", "encoder.6", "code"]
        assert cs.n_samples == 1797 and cs.query_mask.sum() == 100
        a = cs.attrs
        assert a["checkpoint_sha256"] and a["dataset"] == "digits" and a["split"] == "all"
        assert a["config"]["normalization"] == {"mean": [0.3], "std": [0.4]}  # the checkpoint's own
        bits = cs.bits("code")
    from nacscope.data import load_dataset
    from nacscope.nets import load_checkpoint

    model, _ = load_checkpoint(mlp_ckpt)
    d = load_dataset("digits", "all")
    with torch.no_grad():
        a = model.code_preactivation((d.images.float() / 255 - 0.3) / 0.4)
    assert np.array_equal(bits, (a > 0).numpy().astype(np.uint8))
    # Existing output: refused without --force, replaced with it.
    r = invoke("dump", mlp_ckpt, "--dataset", "digits", "-o", out)
    assert_one_line_error(r, "exists", "--force")
    r = invoke("dump", mlp_ckpt, "--dataset", "digits", "-o", out, "--force", "--no-features", "--thumbnails", "0")
    assert r.exit_code == 0, r.output
    with CodeSet(out) as cs:
        assert cs.n_samples == 360 and not cs.feature_names and not cs.has_thumbnails


def test_dump_random_init_and_all_layers_warns(tmp_path):
    out = tmp_path / "r.h5"
    r = invoke("dump", "--random-init", "--arch", "convnet", "--bits", "8", "--seed", "3", "--dataset", "digits",
               "--layers", "all", "-o", out)
    assert r.exit_code == 0, r.output
    assert "projected size" in r.output
    with CodeSet(out) as cs:
        assert len(cs.layer_names) == 5 and cs.attrs["checkpoint"] == "random-init:convnet:8:seed=3"


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(os.urandom(1000))
    assert_one_line_error(invoke("dump", bad, "--dataset", "digits", "-o", tmp_path / "o.h5"), "not a PyTorch checkpoint")
    assert not (tmp_path / "o.h5").exists()


class _Evil:
    """Unpickling this would create a marker file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_code_never_runs(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    torch.save({"encoder.0.weight": torch.zeros(1), "payload": _Evil(str(marker))}, path)
    assert not marker.exists()
    for cmd in ("dump", "layers"):
        args = [cmd, path] + (["--dataset", "digits", "-o", tmp_path / "o.h5"] if cmd == "dump" else [])
        assert_one_line_error(invoke(*args), "refusing to load")
    assert not marker.exists()
    # Sanity: the payload really would run under plain pickle.
    pickle.loads(pickle.dumps(_Evil(str(marker))))
    assert marker.exists()


def test_checkpoint_of_another_arch(mlp_ckpt, tmp_path):
    assert_one_line_error(invoke("dump", mlp_ckpt, "--arch", "resnet18", "--dataset", "digits", "-o", tmp_path / "o.h5"),
                 "holds a mlp model, not resnet18")


def test_pattern_matching_nothing_lists_sites(mlp_ckpt, tmp_path):
    r = invoke("dump", mlp_ckpt, "--dataset", "digits", "--layers", "layer4.*", "-o", tmp_path / "o.h5")
    assert_one_line_error(r, "'layer4.*' matches no site", "encoder.3, encoder.6, head.1, code")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--dataset", "nope"], "unknown dataset"),
        (["--dataset", "imagenet"], "imagenet needs --data-root"),
        (["--dataset", "cifar10", "--data-root", "{tmp}"], "cifar10 not found"),
        (["--dataset", "cifar10", "--data-root", "{garbage}"], "not a plain CIFAR batch"),
        (["--dataset", "digits", "--split", "val"], "split"),
        (["--dataset", "digits", "--batch-size", "0"], "--batch-size"),
        (["--dataset", "digits", "--precision", "fp16"], "--precision"),
        (["--dataset", "digits", "--protocol", "paper-cifar10"], "needs --dataset cifar10 --split all"),
        (["--dataset", "digits", "--protocol", "nope"], "unknown --protocol"),
        (["--dataset", "digits", "--queries-per-class", "1000"], "not more than --queries-per-class"),
        (["--dataset", "digits", "--device", "cuda:banana"], "--device"),
        pytest.param(["--dataset", "mnist5k"], "28x28", marks=pytest.mark.slow),  # mlp made for 8x8 digits
    ],
)
def test_bad_options(tmp_path, mlp_ckpt, args, fragment):
    garbage = tmp_path / "g"
    (garbage / "cifar-10-batches-py").mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (garbage / "cifar-10-batches-py" / name).write_bytes(b"\x80\x04garbage" * 10)
    args = [a.format(tmp=tmp_path, garbage=garbage) for a in args]
    r = invoke("dump", mlp_ckpt, *args, "-o", tmp_path / "o.h5")
    assert_one_line_error(r, fragment)
    assert not (tmp_path / "o.h5").exists() and not partial_path(tmp_path / "o.h5").exists()


def test_random_init_needs_arch_and_bits(tmp_path):
    assert_one_line_error(invoke("dump", "--random-init", "--dataset", "digits", "-o", tmp_path / "o.h5"), "--arch and --bits")
    assert_one_line_error(invoke("dump", "--dataset", "digits", "-o", tmp_path / "o.h5"), "CHECKPOINT")


def test_disk_full_mid_dump(tmp_path, mlp_ckpt, monkeypatch):
    from nacscope.codes import format as fmt

    real, calls = fmt.CodeSetWriter.append, {"n": 0}

    def full(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 1:  # the first block of rows (the CLI writes digits in one block)
            raise OSError(28, "No space left on device")
        return real(self, *a, **k)

    monkeypatch.setattr(fmt.CodeSetWriter, "append", full)
    out = tmp_path / "o.h5"
    r = invoke("dump", mlp_ckpt, "--dataset", "digits", "--split", "all", "--batch-size", "100", "-o", out)
    assert_one_line_error(r, "disk full")
    assert not out.exists() and not partial_path(out).exists()


@pytest.mark.slow
def test_ctrl_c_mid_dump_real_signal(tmp_path):
    """A real SIGINT to a running `nacscope dump`: exit != 0, one line, no file left behind."""
    out = tmp_path / "o.h5"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "nacscope", "dump", "--random-init", "--arch", "resnet18", "--bits", "8",
           "--dataset", "digits", "--split", "all", "--batch-size", "16", "--device", "cpu", "-o", str(out)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + hang_guard()  # only a hang guard: the loop waits for the file to appear
    while not partial_path(out).exists() and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)
    assert partial_path(out).exists(), "dump did not start"
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=hang_guard())
    assert p.returncode != 0
    assert "Traceback" not in err and "interrupted" in err
    assert not out.exists() and not partial_path(out).exists()


def test_regions_compares_checkpoint_and_random_init(tmp_path, mlp_ckpt):
    png = tmp_path / "planes.png"
    r = invoke("regions", mlp_ckpt, "--random-init", "--seed", "5", "--dataset", "digits", "--pairs", "3",
               "--dense", "300", "--plane-method", "grid", "--resolution", "24", "--plot", png, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output[r.output.index("{"):])
    assert [m["model"] for m in out["models"]] == ["mlp", "random init"]
    for m in out["models"]:
        seg = m["segments"]
        assert len(seg["exact"]) == 3 and all(e >= d >= 1 for e, d in zip(seg["exact"], seg["dense"]))
        assert 1 < m["plane"]["regions"] <= 24 * 24 and m["plane"]["method"] == "grid (lower bound)"
    # Different weights, same samples: the two models cut the same segments differently.
    assert out["models"][0]["segments"]["exact"] != out["models"][1]["segments"]["exact"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The table form names both models and the ratio line.
    r = invoke("regions", mlp_ckpt, "--random-init", "--dataset", "digits", "--pairs", "1", "--dense", "0",
               "--resolution", "0")
    assert r.exit_code == 0 and "mlp vs random init: segments x" in r.output, r.output


def test_regions_exact_plane_bounds_grid_and_draws_polygons(tmp_path, mlp_ckpt):
    png = tmp_path / "exact.png"
    common = (mlp_ckpt, "--dataset", "digits", "--pairs", "0", "--margin", "0.1", "--json")
    exact = json.loads(invoke("regions", *common, "--plot", png).output)["models"][0]["plane"]
    grid = json.loads(invoke("regions", *common, "--plane-method", "grid", "--resolution", "40").output)["models"][0]["plane"]
    assert exact["method"] == "exact" and exact["regions"] >= grid["regions"] > 1
    assert list(exact["per_layer"].values())[-1] == exact["regions"]
    assert exact["vertices"] - exact["edges"] + exact["regions"] == 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = invoke("regions", mlp_ckpt, "--dataset", "digits", "--pairs", "0", "--margin", "0.1")
    assert r.exit_code == 0 and "exact" in r.output and "per layer" in r.output, r.output
    r = invoke("regions", mlp_ckpt, "--dataset", "digits", "--pairs", "0", "--plane-method", "grid", "--resolution", "20")
    assert r.exit_code == 0 and "lower bound" in r.output, r.output


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--dataset", "digits"], "CHECKPOINT"),
        (["--random-init", "--arch", "mlp", "--bits", "8", "--dataset", "digits", "--plane-method", "hex"], "--plane-method"),
        (["--random-init", "--dataset", "digits"], "--random-init without a checkpoint needs an arch and bits"),
        (["--random-init", "--arch", "mlp", "--bits", "8", "--dataset", "digits", "--pairs", "-1"], "--pairs"),
        (["--random-init", "--arch", "mlp", "--bits", "8", "--dataset", "digits", "--resolution", "1"], "--resolution"),
        (["--random-init", "--arch", "mlp", "--bits", "8", "--dataset", "digits", "--margin", "-1"], "--margin"),
    ],
)
def test_regions_bad_input(args, fragment):
    assert_one_line_error(invoke("regions", *args), fragment)


@pytest.mark.slow
def test_torchrun_two_ranks_equal_single_process(tmp_path, mlp_ckpt):
    """Two CPU ranks (gloo) write shards that merge into a file identical to a one-process dump."""
    import shutil

    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    multi, single = tmp_path / "multi.h5", tmp_path / "single.h5"
    args = ["dump", str(mlp_ckpt), "--dataset", "digits", "--split", "test", "--layers", "all", "--device", "cpu"]
    r = subprocess.run([torchrun, "--nproc_per_node=2", "-m", "nacscope", *args, "-o", str(multi)],
                       capture_output=True, text=True, env=env, timeout=hang_guard(1200))
    assert r.returncode == 0, r.stderr[-2000:]
    assert invoke(*args, "-o", single).exit_code == 0
    with CodeSet(multi) as a, CodeSet(single) as b:
        assert a.attrs["world_size"] == 2 and a.n_samples == b.n_samples == 360
        for name in b.layer_names:
            assert np.array_equal(a.packed(name), b.packed(name)), name
        for key in ("index", "labels", "thumbnails"):
            assert np.array_equal(a.f["samples"][key][()], b.f["samples"][key][()]), key
        assert np.array_equal(a.features("h"), b.features("h"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multi.h5", "single.h5"]  # no shard left


@pytest.mark.parametrize("which", ["checkpoint", "dataset-file", "dataset-folder"])
def test_dump_refuses_to_write_over_its_input_even_with_force(tmp_path, mlp_ckpt, which):
    """``--force`` onto the checkpoint or the dataset file must not turn the input into a code set."""
    import hashlib

    from nacscope.data import load_dataset

    if which == "checkpoint":
        target = tmp_path / "mlp.pt"
        target.write_bytes(mlp_ckpt.read_bytes())
        args = [target, "--dataset", "digits", "-o", target, "--force"]
    elif which == "dataset-file":
        d = load_dataset("digits", "test")
        target = tmp_path / "d.npz"
        np.savez(target, images=d.images.numpy(), labels=d.labels.numpy())
        args = [mlp_ckpt, "--dataset", str(target), "-o", target, "--force"]
    else:
        target = tmp_path / "imgs"
        (target / "a").mkdir(parents=True)
        (target / "a" / "x.png").write_bytes(b"not really a png")
        args = [mlp_ckpt, "--dataset", f"folder:{target}", "-o", target, "--force"]
    before = hashlib.sha256(target.read_bytes()).hexdigest() if target.is_file() else sorted(target.rglob("*"))
    r = invoke("dump", *args)
    assert_one_line_error(r, "input")
    after = hashlib.sha256(target.read_bytes()).hexdigest() if target.is_file() else sorted(target.rglob("*"))
    assert after == before
