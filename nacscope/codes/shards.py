"""Dumps under torchrun: each rank writes a contiguous block of rows to a shard, rank 0 merges them in order.

The merged file is identical to a single-process dump of the same rows (``tests/codes/test_dump.py``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from nacscope.codes.capture import Site
from nacscope.codes.dump import DumpInput, DumpStats, dump_codes, file_size
from nacscope.codes.format import CodeSet, CodeSetWriter, LayerSpec
from nacscope.errors import CodeSetError


def shard_rows(n: int, rank: int, world: int) -> tuple[int, int]:
    """Contiguous block of rows ``[start, stop)`` for ``rank`` of ``world`` (sizes differ by at most 1)."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def shard_path(out: str | os.PathLike, rank: int) -> Path:
    p = Path(out)
    return p.with_name(f"{p.name}.rank{rank}")


def merge_shards(shards: Sequence[str | os.PathLike], out: str | os.PathLike, *, force: bool = False,
                 attrs: Mapping[str, Any] | None = None, block_rows: int = 65536) -> Path:
    """Concatenate shard code sets (same layers, in order) into one code set, block by block."""
    opened = [CodeSet(s) for s in shards]
    try:
        first = opened[0]
        specs = [LayerSpec(i.name, i.units, i.shape, kind=i.kind) for i in first.layers]
        feats = {n: int(first.f["features"][n].shape[1]) for n in first.feature_names}
        th = first.f["samples"]["thumbnails"].shape[1:] if first.has_thumbnails else None
        root = {k: v for k, v in first.attrs.items() if k not in ("n_samples", "complete", "created")}
        w = CodeSetWriter(
            out, specs, label_kind=first.label_kind, class_names=first.class_names,
            n_label_columns=int(first.f["samples"]["labels"].shape[1]) if first.label_kind == "multihot" else None,
            has_query_mask=first.query_mask is not None, features=feats or None,
            thumbnail_shape=tuple(th) if th is not None else None,
            attrs={**root, **(attrs or {}), "merged_from_shards": len(opened)}, force=force,
        )
        try:
            for cs in opened:
                if [i.name for i in cs.layers] != [s.name for s in specs]:
                    raise CodeSetError(f"shard {cs.path} has other layers than {first.path}")
                for a in range(0, cs.n_samples, block_rows):
                    sl = slice(a, min(cs.n_samples, a + block_rows))
                    s = cs.f["samples"]
                    w.append(
                        {spec.name: cs.packed(spec.name, sl) for spec in specs}, packed=True,
                        index=s["index"][sl],
                        labels=s["labels"][sl] if "labels" in s else None,
                        is_query=s["is_query"][sl] if "is_query" in s else None,
                        thumbnails=s["thumbnails"][sl] if "thumbnails" in s else None,
                        features={n: cs.f["features"][n][sl] for n in feats} or None,
                    )
            return w.close()
        except BaseException:
            w.abort()
            raise
    finally:
        for cs in opened:
            cs.close()


def dump_distributed(model: nn.Module, data: DumpInput, out: str | os.PathLike, sites: Sequence[Site], **kw) -> DumpStats | None:
    """Dump under torchrun: each rank writes its block to a shard; rank 0 merges and returns the stats.

    Other ranks return None. The process group must be initialised (any backend).
    """
    import torch.distributed as dist

    rank, world = dist.get_rank(), dist.get_world_size()
    force = kw.pop("force", False)
    # NCCL collectives need CUDA tensors; gloo takes CPU ones.
    cdev = torch.device(kw.get("device", "cpu")) if dist.get_backend() == "nccl" else torch.device("cpu")
    if rank == 0 and Path(out).exists() and not force:
        err = CodeSetError(f"{out} exists; use --force to overwrite it")
    else:
        err = None
    flag = torch.tensor([1 if err else 0], device=cdev)
    dist.broadcast(flag, 0)
    if flag.item():
        raise err or CodeSetError(f"{out} exists; use --force to overwrite it")
    part = shard_path(out, rank)
    ok = torch.tensor([1], device=cdev)
    stats = None
    try:
        stats = dump_codes(model, data, part, sites, rows=shard_rows(len(data), rank, world), force=True, **kw)
    except BaseException:
        ok = torch.tensor([0], device=cdev)
        raise
    finally:
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    if not ok.item():
        part.unlink(missing_ok=True)
        raise CodeSetError("another rank failed; no code set was written")
    result = None
    try:
        if rank == 0:
            t0 = time.perf_counter()
            shards = [shard_path(out, r) for r in range(world)]
            path = merge_shards(shards, out, force=force, attrs={"world_size": world})
            result = DumpStats(path, len(data), stats.layers, stats.seconds + time.perf_counter() - t0, file_size(path))
    finally:
        dist.barrier()
        part.unlink(missing_ok=True)
    return result

