"""Write and read 60,000 x 4,096-bit codes under each compression choice for the bit matrices.

Usage: python benchmarks/codeset_io.py [--n 60000] [--units 4096] [--repeats 3]

For each filter (none, gzip level 1, gzip level 4, lzf) and two kinds of bits (uniform random, the
worst case; and sparse correlated bits like a deep ReLU layer, ~15% active), it reports the
median time to write the file through ``CodeSetWriter`` (batches of 1,000 rows), to scan it
whole through ``CodeSet.iter_packed``, to read 1,000 random rows, and the size on disk.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import nacscope.codes.format as fmt
from nacscope.codes import CodeSet, CodeSetWriter, LayerSpec

CHOICES = {
    "none": {},
    "gzip-1": {"compression": "gzip", "compression_opts": 1, "shuffle": False},
    "gzip-4": {"compression": "gzip", "compression_opts": 4, "shuffle": False},
    "lzf": {"compression": "lzf", "shuffle": False},
}


def make_bits(kind: str, n: int, units: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "uniform":
        return np.packbits(rng.integers(0, 2, (n, units), dtype=np.uint8).astype(bool), axis=1)
    # Sparse, correlated: a random low-rank ReLU layer thresholded high.
    z = rng.normal(size=(n, 32)).astype(np.float32) @ rng.normal(size=(32, units)).astype(np.float32)
    return np.packbits(z > 1.0 * np.sqrt(32), axis=1)


def one_run(path: Path, packed: np.ndarray, units: int) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    with CodeSetWriter(path, [LayerSpec("code", units, kind="code")], force=True) as w:
        for s in range(0, len(packed), 1000):
            w.append({"code": packed[s : s + 1000]}, packed=True)
    t_write = time.perf_counter() - t0
    with CodeSet(path) as cs:
        t0 = time.perf_counter()
        total = 0
        for _, block in cs.iter_packed("code"):
            total += int(block[:, 0].sum())
        t_scan = time.perf_counter() - t0
        rows = np.sort(np.random.default_rng(1).choice(len(packed), 1000, replace=False))
        t0 = time.perf_counter()
        got = cs.packed("code", rows)
        t_rows = time.perf_counter() - t0
        assert np.array_equal(got, packed[rows])
    return t_write, t_scan, t_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60_000)
    ap.add_argument("--units", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print("| bits | filter | write s | full scan s | 1,000 random rows ms | size MB | vs raw |")
    print("|---|---|---:|---:|---:|---:|---:|")
    raw = args.n * ((args.units + 7) // 8) / 1e6
    with tempfile.TemporaryDirectory() as d:
        for kind in ("uniform", "sparse"):
            packed = make_bits(kind, args.n, args.units, rng)
            for name, opts in CHOICES.items():
                fmt.BITS_COMPRESSION = opts
                runs = [one_run(Path(d) / f"{kind}-{name}.h5", packed, args.units) for _ in range(args.repeats)]
                w, s, r = (statistics.median(x) for x in zip(*runs))
                size = (Path(d) / f"{kind}-{name}.h5").stat().st_size / 1e6
                print(f"| {kind} | {name} | {w:.2f} | {s:.2f} | {r * 1e3:.1f} | {size:.1f} | {size / raw:.2f} |",
                      flush=True)


if __name__ == "__main__":
    main()
