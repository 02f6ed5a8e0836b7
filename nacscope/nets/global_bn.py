"""BatchNorm over the global batch of all ranks (SyncBN), on every device.

Under DDP each rank's BatchNorm normally sees its own slice of the batch. With ``--sync-bn`` every
BatchNorm layer normalises over the batch of all ranks instead, so a step on W ranks equals the
step of one process on the global batch (with per-view forwards: BatchNorm over one view's global
batch, the statistics of the authors' single-process step, NAC-NOTES §2.7).

On CUDA this is :class:`torch.nn.SyncBatchNorm`. torch's SyncBatchNorm refuses CPU tensors, so on
the CPU (gloo) nacscope uses :class:`GlobalBatchNorm`, written here: per-channel sums and sums of
squares all-reduced with autograd (``torch.distributed.nn.functional.all_reduce``), then the usual
normalisation; tests check a 2-process step against one process on the global batch.
"""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics are those of the batch of every rank in the process group."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input (N, C, ...), got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce  # differentiable (its successor is private API)

        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        count = x.new_full((1,), x.numel() // c)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*all_reduce is deprecated", category=FutureWarning)
            stats = all_reduce(torch.cat([x.sum(dims), (x * x).sum(dims), count]))  # (2C + 1,) summed over ranks
        n = stats[-1]
        mean = stats[:c] / n  # (C,)
        var = stats[c : 2 * c] / n - mean * mean  # (C,) biased, as BatchNorm normalises
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1)), alpha=m)  # unbiased
        shape = (1, c) + (1,) * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm of ``module`` replaced by its global-batch twin (torch's SyncBatchNorm on CUDA)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert(module)


def _convert(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, _BatchNorm) and not isinstance(module, GlobalBatchNorm):
        ref = module.weight if module.affine else module.running_mean
        out = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats).to(device=ref.device, dtype=ref.dtype)
        if module.affine:
            with torch.no_grad():
                out.weight.copy_(module.weight)
                out.bias.copy_(module.bias)
        if module.track_running_stats:
            out.running_mean.copy_(module.running_mean)
            out.running_var.copy_(module.running_var)
            out.num_batches_tracked.copy_(module.num_batches_tracked)
        out.training = module.training
    for name, child in module.named_children():
        out.add_module(name, _convert(child))
    return out
