"""torchrun set-up shared by ``train`` and ``dump``: the process group from the environment, and the device."""

from __future__ import annotations

import os

import torch

from nacscope.errors import OptionError


class DistInfo:
    """Rank / world of this process; initialises the process group under torchrun."""

    def __init__(self, device_pref: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.owns_group = False
        import torch.distributed as dist

        if self.world > 1 and not dist.is_initialized():
            use_cuda = torch.cuda.is_available() and device_pref != "cpu"
            if use_cuda:
                torch.cuda.set_device(self.local_rank)
            dist.init_process_group("nccl" if use_cuda else "gloo")
            self.owns_group = True
        if dist.is_available() and dist.is_initialized():
            self.world, self.rank = dist.get_world_size(), dist.get_rank()

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()


def pick_device(pref: str, dist_info: DistInfo | None = None) -> torch.device:
    """The device named by ``pref`` (auto, cpu, cuda, cuda:N); under torchrun ``auto`` is this rank's GPU."""
    if pref == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        multi = dist_info is not None and dist_info.world > 1
        return torch.device("cuda", dist_info.local_rank if multi else torch.cuda.current_device())
    try:
        dev = torch.device(pref)
    except RuntimeError:
        raise OptionError(f"--device {pref!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise OptionError("--device cuda asked for, but no CUDA GPU is available; use --device cpu")
    return dev
