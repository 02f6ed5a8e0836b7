"""Peak memory of a streaming epoch over N and 4N fabricated JPEGs: it should not grow with N.

Fabricates ``4N`` small JPEGs (64x64, 10 class folders) once under a temporary folder, then, each size in a
fresh process (``_child.report``): index the first N (``scan_folder`` of a folder holding N), and run one
epoch of ``stream_loader`` with the ImageNet two-view recipe at ``--size`` and ``--workers`` workers, summing
the batches. Reported: wall time, peak RSS of the main process above its baseline (``peak_mib``), and the
largest worker's peak RSS (``workers_peak_mib``, ``RUSAGE_CHILDREN`` after the workers are joined; absolute,
it includes torch's import).

    PYTHONPATH=$PWD python benchmarks/stream_memory.py --n 1000 --size 64 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _child import report, run_child  # noqa: E402


def fabricate(root: Path, n: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        d = root / f"c{i % 10}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(d / f"{i:07d}.jpg", quality=85)


def child(folder: str, size: int, workers: int, batch: int) -> None:
    import resource

    import torch

    from nacscope.data.stream import imagenet_two_views, scan_folder, stream_loader

    torch.set_num_threads(1)
    worker_hwm: list[float] = []

    def epoch():
        index = scan_folder(folder)
        loader = stream_loader(index, imagenet_two_views(size), batch, workers=workers, seed=0)
        loader.sampler.set_epoch(0)
        total, seen = 0.0, 0
        for x, _ in loader:
            total += float(x.sum())
            seen += x.shape[0]
        del loader  # workers joined: their peak is in RUSAGE_CHILDREN
        worker_hwm.append(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
        return seen

    report(epoch, lambda seen: {"images": seen, "workers_peak_mib": round(max(worker_hwm), 1)})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--child")
    ap.add_argument("--folder")
    a = ap.parse_args()
    if a.child:
        child(a.folder, a.size, a.workers, a.batch)
        return
    tmp = Path(tempfile.mkdtemp(prefix="nacscope-stream-"))
    try:
        results = {}
        for n in (a.n, 4 * a.n):
            folder = tmp / str(n)
            fabricate(folder, n)
            args = ["--folder", str(folder), "--size", str(a.size), "--workers", str(a.workers), "--batch", str(a.batch)]
            results[n] = run_child(__file__, str(n), args)
            print(f"N={n}: {results[n]}", file=sys.stderr, flush=True)
            shutil.rmtree(folder)
        small, big = results[a.n], results[4 * a.n]
        print(json.dumps({"results": results, "main_peak_ratio_4N_over_N": round(big["peak_mib"] / max(small["peak_mib"], 1e-9), 3),
                          "workers_peak_ratio_4N_over_N": round(big["workers_peak_mib"] / max(small["workers_peak_mib"], 1e-9), 3),
                          "cpu": os.cpu_count()}, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
