"""Export speed and peak memory: nacscope's streamed writers vs the straightforward whole-array way.

``nacscope export`` streams blocks of rows into ``.npy``/``.npz`` (a hand-written streaming writer:
numpy's ``np.save``/``np.savez`` need the whole array in memory). This measures, side by side in one
run on the same code set, wall time and peak traced memory (``tracemalloc``, numpy allocations) of:

* ``streamed``: :func:`nacscope.export.export_codes`, one block of 32,768 rows at a time;
* ``whole``: ``np.savez_compressed(out, codes=cs.bits(layer))`` / ``np.save(out, cs.bits(layer))``
  (what one would write by hand: read everything, unpack, save);

and the other formats (parquet, csv, faiss) for reference.

Run::

    python benchmarks/export.py [--rows 60000] [--units 4096]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np


def make_codeset(path: Path, rows: int, units: int) -> None:
    from nacscope.codes import CodeSetWriter, LayerSpec

    rng = np.random.default_rng(0)
    with CodeSetWriter(path, [LayerSpec("code", units, kind="code")], label_kind="class", has_query_mask=True) as w:
        for s in range(0, rows, 10_000):
            b = min(10_000, rows - s)
            w.append({"code": rng.random((b, units)) < 0.3}, labels=rng.integers(0, 10, b), is_query=rng.random(b) < 0.1)


def measure(fn) -> tuple[float, float]:
    """(seconds, peak traced MB) of ``fn()``."""
    tracemalloc.start()
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return dt, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=60_000)
    ap.add_argument("--units", type=int, default=4096)
    args = ap.parse_args()

    from nacscope.codes import CodeSet
    from nacscope.export import export_codes

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        src = d / "codes.h5"
        make_codeset(src, args.rows, args.units)
        raw_mb = args.rows * args.units / 1e6
        print(f"{args.rows:,} x {args.units:,} bits ({raw_mb:.0f} MB unpacked, {raw_mb / 8:.0f} MB packed)")

        def whole_npz():
            with CodeSet(src) as cs:
                np.savez_compressed(d / "whole.npz", codes=cs.bits("code"), labels=cs.labels(), is_query=cs.query_mask)

        def whole_npy():
            with CodeSet(src) as cs:
                np.save(d / "whole.npy", cs.bits("code"))

        rows = [
            ("npz unpacked", lambda: export_codes(src, d / "s.npz", force=True), whole_npz),
            ("npy unpacked", lambda: export_codes(src, d / "s.npy", force=True), whole_npy),
            ("npz packed", lambda: export_codes(src, d / "p.npz", packed=True, force=True), None),
            ("parquet packed", lambda: export_codes(src, d / "s.parquet", packed=True, force=True), None),
            ("csv (hex)", lambda: export_codes(src, d / "s.csv", force=True), None),
            ("faiss", lambda: export_codes(src, d / "s.faiss", force=True), None),
        ]
        print("| format | streamed s | streamed peak MB | whole-array s | whole-array peak MB | memory ratio |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, streamed, whole in rows:
            s_t, s_m = measure(streamed)
            if whole is not None:
                w_t, w_m = measure(whole)
                print(f"| {name} | {s_t:.2f} | {s_m:.0f} | {w_t:.2f} | {w_m:.0f} | {w_m / max(s_m, 1e-9):.1f}x |")
            else:
                print(f"| {name} | {s_t:.2f} | {s_m:.0f} | | | |")
        # Same content either way.
        a, b = np.load(d / "s.npz")["codes"], np.load(d / "whole.npz")["codes"]
        assert np.array_equal(a, b)


if __name__ == "__main__":
    main()
