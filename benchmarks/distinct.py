"""Distinct activation patterns of 1,000,000 x 4,096 bits: nacscope against np.unique.

Usage: python benchmarks/distinct.py [--n 1000000] [--bits 4096] [--dup 0.3]

Data: random packed rows, a fraction ``--dup`` of them copies of other rows (so that there are groups
to find; the cases must agree). Each case runs in a fresh process
(time and its own peak memory above the input):

* ``np-unique-void``: ``np.unique`` on a void view of the rows (one sort of n x row_bytes records).
* ``np-unique-axis0``: ``np.unique(packed, axis=0)`` (what one writes first).
* ``nacscope``: ``nacscope.analysis.distinct_patterns`` (64-bit row hashes, ``np.unique`` on the
  hashes, every row checked against the first row of its group).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _child import report, run_cases  # noqa: E402

CASES = ["nacscope", "np-unique-void", "np-unique-axis0"]


def make_data(n: int, bits: int, dup: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    packed = rng.integers(0, 256, (n, bits // 8), dtype=np.uint8)
    copies = np.flatnonzero(rng.random(n) < dup)
    packed[copies] = packed[rng.integers(0, max(1, n // 2), len(copies))]
    return packed


def child(case: str, a) -> None:
    packed = make_data(a.n, a.bits, a.dup)
    if case == "nacscope":
        from nacscope.analysis.patterns import distinct_patterns

        report(lambda: distinct_patterns(packed), lambda d: {"distinct": int(d)})
    elif case == "np-unique-void":
        void = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()
        report(lambda: len(np.unique(void)), lambda d: {"distinct": int(d)})
    elif case == "np-unique-axis0":
        report(lambda: len(np.unique(packed, axis=0)), lambda d: {"distinct": int(d)})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--bits", type=int, default=4096)
    p.add_argument("--dup", type=float, default=0.3)
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--child", default=None)
    a = p.parse_args()
    if a.child:
        child(a.child, a)
        return
    args = ["--n", str(a.n), "--bits", str(a.bits), "--dup", str(a.dup)]
    res = run_cases(__file__, a.cases, args)
    mib = a.n * a.bits / 8 / 2**20
    print(f"\n{a.n} rows x {a.bits} bits ({mib:.0f} MiB packed), {a.dup:.0%} copies\n")
    print("| case | seconds | peak MiB (above input) | distinct | vs nacscope |")
    print("|---|---:|---:|---:|---:|")
    for case, r in res.items():
        ratio = f"{r['seconds'] / res['nacscope']['seconds']:.1f}x slower" if "nacscope" in res and case != "nacscope" else "-"
        print(f"| {case} | {r['seconds']:.2f} | {r['peak_mib']:.0f} | {r['distinct']} | {ratio} |")
    if len({r["distinct"] for r in res.values()}) > 1:
        print("\nWARNING: the counts differ")


if __name__ == "__main__":
    main()
