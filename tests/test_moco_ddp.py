"""MoCo-NAC under DDP with --sync-bn: one step on W ranks equals one process on the global batch
(parameters, key encoder and queue), and every rank holds the same queue."""

from __future__ import annotations

import os
import socket
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from nacscope.nets import build_model
from nacscope.nets.global_bn import convert_sync_batchnorm
from nacscope.training.moco_step import MocoState, moco_train_step

B, D, K = 12, 8, 48  # B divisible by 2 and 3 ranks; the queue holds two global steps
CFG = SimpleNamespace(p=0.2, moco_momentum=0.9, moco_kappa="divide", moco_l2=0.01)


def _setup():
    """A float64 MLP with BatchNorm, a MoCo state whose queue is already full of keys, two views, flips."""
    torch.manual_seed(0)
    model = build_model("mlp", D, in_channels=1, image_size=8, hidden=(16, 16)).double().train()
    g = torch.Generator().manual_seed(1)
    x_1 = torch.randn(B, 1, 8, 8, generator=g, dtype=torch.float64)
    x_2 = x_1 + 0.3 * torch.randn(B, 1, 8, 8, generator=g, dtype=torch.float64)
    flips = torch.where(torch.rand(2 * B, D, generator=g) < CFG.p, -1.0, 1.0).double()  # rows: [view 1; view 2]
    queue = torch.tanh(torch.randn(K, D, generator=g, dtype=torch.float64))
    return model, x_1, x_2, flips, queue


def _moco(model, queue) -> MocoState:
    moco = MocoState(model, K, D)
    moco.queue.load_state_dict({"codes": queue.clone(), "ptr": 5})
    return moco


def _state(model, moco) -> dict[str, torch.Tensor]:
    inner = model.module if hasattr(model, "module") else model
    out = {f"model.{k}": v.detach().clone() for k, v in inner.state_dict().items()}
    out.update({f"key.{k}": v.detach().clone() for k, v in moco.key.state_dict().items()})
    out["queue"], out["ptr"] = moco.queue.codes.clone(), torch.tensor(moco.queue.ptr)
    return out


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model, x_1, x_2, flips, queue = _setup()
        model = convert_sync_batchnorm(model, torch.device("cpu"))
        moco = _moco(model, queue)
        ddp = nn.parallel.DistributedDataParallel(model)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.5)
        part = slice(rank * B // world, (rank + 1) * B // world)  # this rank's share of the global batch
        moco_train_step(ddp, moco, opt, x_1[part], x_2[part], CFG, flips=torch.cat([flips[part], flips[B:][part]]))
        torch.save(_state(ddp, moco), f"{out}.{rank}")
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("world", [2, 3])
def test_moco_step_on_ranks_equals_one_process_on_the_global_batch(tmp_path, world):
    import torch.multiprocessing as mp

    model, x_1, x_2, flips, queue = _setup()
    moco = _moco(model, queue)
    moco_train_step(model, moco, torch.optim.SGD(model.parameters(), lr=0.5), x_1, x_2, CFG, flips=flips)
    reference = _state(model, moco)
    assert not torch.equal(reference["queue"], queue)  # the step did enqueue

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / "state")
    mp.spawn(_worker, args=(world, port, out), nprocs=world, join=True)
    ranks = [torch.load(f"{out}.{r}", weights_only=True) for r in range(world)]
    for got in ranks:
        assert got.keys() == reference.keys()
        for k, v in reference.items():
            assert torch.allclose(got[k].to(v.dtype), v, rtol=0, atol=1e-10), k
