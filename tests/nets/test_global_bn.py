"""--sync-bn: a DDP step with BatchNorm over the global batch equals one process on the global batch."""

from __future__ import annotations

import copy
import os
import socket

import pytest
import torch
from torch import nn

from nacscope.nets import build_model
from nacscope.nets.global_bn import GlobalBatchNorm, convert_sync_batchnorm
from nacscope.objectives import nac_loss
from nacscope.training import forward_views

B = 12  # divisible by 2 and 3 ranks


def _setup(arch: str = "convnet"):
    """A float64 net (convnet: BatchNorm after every conv), two views of B digits-shaped inputs, one config."""
    torch.manual_seed(0)
    kw = {"hidden": (16,)} if arch == "mlp" else {}
    model = build_model(arch, 8, in_channels=1, image_size=8, **kw).double().train()
    g = torch.Generator().manual_seed(1)
    x_1 = torch.randn(B, 1, 8, 8, generator=g, dtype=torch.float64)
    x_2 = x_1 + 0.3 * torch.randn(B, 1, 8, 8, generator=g, dtype=torch.float64)
    flips = torch.where(torch.rand(2 * B, 8, generator=g) < 0.2, -1.0, 1.0).double()  # rows: [view 1; view 2]
    return model, x_1, x_2, flips


def _step(model, x_1, x_2, flips, gather: bool) -> dict[str, torch.Tensor]:
    """The training step (per-view forwards, NAC loss, SGD) with given channel flips."""
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    a_1, a_2, logits_1, logits_2 = forward_views(model, x_1, x_2, "per-view")
    nac_loss(a_1, a_2, logits_1, logits_2, 0.2, flips, gather=gather).backward()
    opt.step()
    inner = model.module if hasattr(model, "module") else model
    return {k: v.detach().clone() for k, v in inner.state_dict().items()}


def _worker(rank: int, world: int, port: int, sync: bool, arch: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model, x_1, x_2, flips = _setup(arch)
        if sync:
            model = convert_sync_batchnorm(model, torch.device("cpu"))
        ddp = nn.parallel.DistributedDataParallel(model)
        part = slice(rank * B // world, (rank + 1) * B // world)  # this rank's share of the global batch
        mine = torch.cat([flips[part], flips[B:][part]])
        state = _step(ddp, x_1[part], x_2[part], mine, gather=True)
        if rank == 0:
            torch.save(state, out)
    finally:
        torch.distributed.destroy_process_group()


def _ranks(tmp_path, world: int, sync: bool, arch: str = "convnet") -> dict[str, torch.Tensor]:
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / f"rank0-{world}-{sync}-{arch}.pt")
    mp.spawn(_worker, args=(world, port, sync, arch, out), nprocs=world, join=True)
    return torch.load(out, weights_only=True)


@pytest.mark.slow
@pytest.mark.parametrize("world", [2, 3])
def test_sync_bn_step_equals_one_process_on_the_global_batch(tmp_path, world):
    model, x_1, x_2, flips = _setup()
    reference = _step(model, x_1, x_2, flips, gather=False)  # plain nn.BatchNorm2d over all B samples per view
    synced = _ranks(tmp_path, world, sync=True)
    assert reference.keys() == synced.keys()  # same keys: a --sync-bn checkpoint loads into a plain model
    for k, v in reference.items():
        assert torch.allclose(synced[k].to(v.dtype), v, rtol=0, atol=1e-10), k
    # the control: BatchNorm per rank (no --sync-bn) is a different step
    per_rank = _ranks(tmp_path, world, sync=False)
    assert max((per_rank[k] - v).abs().max().item() for k, v in reference.items() if v.is_floating_point()) > 1e-4


def test_global_batchnorm_alone_is_batchnorm():
    """Without a process group it is plain BatchNorm (train and eval), and conversion keeps the state."""
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3).double()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2), bn.bias.uniform_(-1, 1)
    x = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    g = convert_sync_batchnorm(copy.deepcopy(bn), torch.device("cpu"))
    assert isinstance(g, GlobalBatchNorm) and g.weight.dtype == torch.float64
    assert torch.allclose(g(x), bn(x), atol=1e-12)
    assert torch.allclose(g.running_var, bn.running_var) and g.num_batches_tracked == bn.num_batches_tracked
    g.eval(), bn.eval()
    assert torch.allclose(g(x), bn(x), atol=1e-12)
