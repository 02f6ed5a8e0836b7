"""Training loop: bit-exact resume (epoch boundary and mid-epoch Ctrl-C), faults, schedule, presets."""

from __future__ import annotations

import json
import math
import os
import signal

import pytest
import torch

from nacscope.errors import OptionError
from nacscope.training import (
    PRESETS,
    TrainConfig,
    TrainingDiverged,
    apply_preset,
    lr_at,
    param_groups,
    train,
    validate,
)


def small(**kw) -> TrainConfig:
    base = dict(dataset="digits", arch="mlp", hidden=[64], bits=8, epochs=2, batch_size=128, log_every=4,
                device="cpu", seed=3)
    base.update(kw)
    return TrainConfig(**base)


def _state(path):
    return torch.load(path, weights_only=True)


def _assert_same_training_state(a, b):
    assert a["epoch"] == b["epoch"] and a["step"] == b["step"]
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    oa, ob = a["optimizer"]["state"], b["optimizer"]["state"]
    assert oa.keys() == ob.keys()
    for k in oa:
        for name, v in oa[k].items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(ob[k][name])), (k, name)


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["nac", "simclr"])
def test_resume_is_bit_exact(tmp_path, objective):
    straight = train(small(objective=objective), tmp_path / "a", progress=False)
    assert straight.epochs_done == 2 and straight.steps == 2 * (1437 // 128)
    first = train(small(objective=objective, stop_after_epochs=1), tmp_path / "b", progress=False)
    assert first.stopped_early and first.epochs_done == 1
    assert _state(tmp_path / "b" / "last.pt")["epoch"] == 1
    train(small(objective=objective), tmp_path / "b", resume=True, progress=False)
    _assert_same_training_state(_state(tmp_path / "a" / "last.pt"), _state(tmp_path / "b" / "last.pt"))
    lines = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["epoch"] == 1 and any(r.get("final") for r in lines)  # appended, not overwritten


def test_ctrl_c_mid_epoch_then_resume_is_bit_exact(tmp_path):
    train(small(), tmp_path / "a", progress=False)

    def interrupt(record):
        if record.get("step") == 4:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends

    result = train(small(), tmp_path / "b", progress=False, on_log=interrupt)
    assert result.interrupted and result.steps == 4
    mid = _state(tmp_path / "b" / "last.pt")
    assert mid["step"] == 4 and mid["epoch"] == 0 and mid["scheduler"]["batch_in_epoch"] == 4
    train(small(), tmp_path / "b", resume=True, progress=False)
    _assert_same_training_state(_state(tmp_path / "a" / "last.pt"), _state(tmp_path / "b" / "last.pt"))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    import nacscope.objectives as objectives

    real = objectives.nac_loss
    calls = {"n": 0}

    def poisoned(*args, **kw):
        calls["n"] += 1
        loss = real(*args, **kw)
        return loss * float("nan") if calls["n"] > 13 else loss

    monkeypatch.setattr(objectives, "nac_loss", poisoned)
    with pytest.raises(TrainingDiverged, match="non-finite|nan") as info:
        train(small(epochs=3), tmp_path / "run", progress=False)
    assert "last.pt" in str(info.value) and "\n" not in str(info.value)
    good = _state(tmp_path / "run" / "last.pt")
    assert good["epoch"] == 1 and good["step"] == 11  # the end of epoch 1, before the poisoned step 14
    assert all(torch.isfinite(v).all() for v in good["model"].values() if v.is_floating_point())


def test_existing_run_is_refused_without_force(tmp_path):
    train(small(epochs=1, ckpt_every=1), tmp_path / "run", progress=False)
    assert _state(tmp_path / "run" / "epoch_0001.pt")["epoch"] == 1  # the every-N-epochs copy
    before = (tmp_path / "run" / "last.pt").read_bytes()
    with pytest.raises(OptionError, match="--resume"):
        train(small(epochs=1), tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "last.pt").read_bytes() == before
    with pytest.raises(OptionError):  # a bad option must not touch the old run either
        train(small(epochs=1, bits=0), tmp_path / "run", progress=False, force=True)
    assert (tmp_path / "run" / "last.pt").read_bytes() == before


def test_schedule_warmup_then_cosine():
    cfg = small(epochs=10, lr=0.4, warmup_epochs=2)
    spe = 5
    lrs = [lr_at(s, cfg, spe) for s in range(50)]
    assert lrs[:10] == pytest.approx([0.4 * s / 10 for s in range(10)])  # from lr 0 at step 0, as the authors'
    assert lrs[10] == pytest.approx(0.4)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[30] == pytest.approx(0.4 * 0.5 * (1 + math.cos(math.pi * 20 / 40)))
    assert lrs[-1] < 0.01


def test_param_groups_exclude_bias_and_norm():
    from nacscope.nets import build_model

    model = build_model("convnet", 8, in_channels=3, image_size=8)
    decay, plain = param_groups(model, 1e-6, True)
    assert plain["weight_decay"] == 0 and decay["weight_decay"] == 1e-6
    assert all(p.ndim > 1 for p in decay["params"]) and all(p.ndim == 1 for p in plain["params"])
    assert len(decay["params"]) + len(plain["params"]) == len(list(model.parameters()))
    (single,) = param_groups(model, 1e-6, False)
    assert len(single["params"]) == len(list(model.parameters()))


def test_presets_reproduce_the_paper_table():
    lin = apply_preset("paper-cifar10-linear", {})
    assert (lin.arch, lin.bits, lin.p, lin.optimizer, lin.lr, lin.warmup_epochs, lin.epochs, lin.batch_size,
            lin.weight_decay) == ("resnet50", 128, 0.1, "lars-paper", 3.0, 10, 1000, 1000, 1e-6)
    assert (lin.forward, lin.bf16) == ("per-view", False)  # the authors' step: two forwards, fp32
    hsh = apply_preset("paper-cifar10-hash", {"bits": 16, "epochs": None})
    assert (hsh.arch, hsh.bits, hsh.p, hsh.warmup_epochs, hsh.epochs) == ("vgg16_bn", 16, 0.4, 100, 2000)
    assert set(PRESETS) == {"paper-cifar10-linear", "paper-cifar10-hash", "paper-imagenet"}
    with pytest.raises(OptionError, match="preset"):
        apply_preset("paper-jft300m", {})


def test_lars_is_timms():
    from timm.optim import Lars

    from nacscope.nets import build_model
    from nacscope.training import make_optimizer

    opt = make_optimizer(build_model("mlp", 8, in_channels=1, image_size=8, hidden=(16,)), small(optimizer="lars", lr=3.0),
                         torch.device("cpu"))
    assert isinstance(opt, Lars) and opt.defaults["trust_coeff"] == 0.001 and opt.defaults["momentum"] == 0.9


@pytest.mark.parametrize("field,value", [("p", 0.5), ("p", 0.0), ("bits", 0), ("objective", "byol"), ("optimizer", "adam"),
                                         ("lr", -1.0), ("augment", "heavy"), ("arch", "vit"), ("batch_size", 1),
                                         ("device", "tpu"), ("threads", 0)])
def test_bad_options(field, value):
    with pytest.raises(OptionError):
        validate(small(**{field: value}))


def test_simclr_and_nac_beat_random_init(tmp_path):
    from nacscope.training import baseline_eval

    cfg = dict(hidden=[256], bits=16, epochs=8, log_every=50)
    base = baseline_eval(small(**cfg))
    for objective in ("nac", "simclr"):
        r = train(small(objective=objective, **cfg), tmp_path / objective, progress=False)
        assert r.eval["map"] > base["map"] + 0.15, (objective, r.eval, base)
        assert r.eval["code_knn_acc"] > base["code_knn_acc"] + 0.05, (objective, r.eval, base)


def _ddp_worker(rank: int, world: int, port: int, run: str, out: str) -> None:
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    result = train(small(epochs=1, log_every=2), run, progress=False)
    torch.save({"steps": result.steps, "eval": bool(result.eval)}, os.path.join(out, f"rank{rank}.pt"))


@pytest.mark.slow
def test_two_process_gloo_training(tmp_path):
    """torchrun's environment, 2 CPU processes: DDP runs, rank 0 alone evaluates and writes."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = tmp_path / "run"
    mp.spawn(_ddp_worker, args=(2, port, str(run), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert r0["steps"] == r1["steps"] == 1437 // 128
    assert r0["eval"] and not r1["eval"]  # only rank 0 evaluates and logs
    ck = _state(run / "last.pt")
    assert ck["epoch"] == 1 and len(ck["rng"]["aug"]) == 2  # both ranks' generators, for exact resume
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "last.pt", "metrics.jsonl"]


def _records(run):
    """metrics.jsonl without the wall-clock fields."""
    out = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        r.pop("time", None), r.pop("images_per_s", None)
        out.append(r)
    return out


@pytest.mark.slow
def test_bare_resume_keeps_the_runs_own_settings_and_survives_a_kill_between_checkpoints(tmp_path):
    import shutil

    kw = dict(epochs=3, ckpt_every=1, eval_every=1, log_every=3, hidden=[32])
    straight = train(small(**kw), tmp_path / "a", progress=False)
    assert straight.epochs_done == 3
    b = tmp_path / "b"
    train(small(stop_after_epochs=1, **kw), b, progress=False)
    shutil.copy(b / "last.pt", tmp_path / "after1.pt")
    # a bare --resume: the CLI passes only the options given (none); the defaults (30 epochs, no kept
    # checkpoints, no evaluation) must not replace the run's own settings
    train(TrainConfig(stop_after_epochs=1), b, resume=True, explicit={"stop_after_epochs"}, progress=False)
    assert _state(b / "last.pt")["epoch"] == 2 and (b / "epoch_0002.pt").is_file()
    # a kill after epoch_0002.pt was written but before last.pt was: last.pt still says epoch 1, and
    # metrics.jsonl already holds epoch 2's records
    shutil.copy(tmp_path / "after1.pt", b / "last.pt")
    messages = []
    train(TrainConfig(), b, resume=True, explicit=set(), progress=False, on_log=messages.append)
    assert messages[0] == {"resumed": True, "epoch": 2, "step": 1437 // 128}
    for name in ("last.pt", "epoch_0001.pt", "epoch_0002.pt", "epoch_0003.pt"):
        _assert_same_training_state(_state(tmp_path / "a" / name), _state(b / name))
    assert sorted(p.name for p in b.glob("*.pt*")) == sorted(p.name for p in (tmp_path / "a").glob("*.pt*"))
    assert _records(b) == _records(tmp_path / "a")  # no repeated records, none lost
    assert [r["epoch"] for r in _records(b) if "eval" in r] == [1, 2, 3]


def test_resume_edges(tmp_path):
    run = tmp_path / "run"
    train(small(epochs=2, hidden=[16]), run, progress=False)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    done = train(small(), run, resume=True, explicit=set(), progress=False)
    assert done.already_finished and done.epochs_done == 2
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before  # nothing changed
    with pytest.raises(OptionError, match="^epochs 1 is fewer than the 2 epochs") as refused:
        train(small(epochs=1), run, resume=True, explicit={"epochs"}, progress=False)
    assert refused.value.for_cli().startswith("--epochs 1 is fewer")  # the CLI names the flag
    (run / "config.json").unlink()
    with pytest.raises(OptionError, match="config.json is missing"):
        train(small(), run, resume=True, explicit=set(), progress=False)
