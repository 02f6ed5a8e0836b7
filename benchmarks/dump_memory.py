"""Peak memory of a dump: 60,000 samples vs 10,000 (streaming must keep it flat).

Each size runs in a fresh process: a small MLP on synthetic 28x28 digit-like images that are
generated batch by batch (so the dataset itself takes no memory), dumped with every site, features
and thumbnails. Reported: the process's peak RSS after building the model (baseline) and after the
dump, and the growth in between.

    python benchmarks/dump_memory.py [--sizes 10000 60000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import json, resource, sys, tempfile, time
    import numpy as np
    import torch
    torch.set_num_threads(1)
    from nacscope.codes.capture import list_sites
    from nacscope.codes.dump import DumpInput, dump_codes
    from nacscope.nets import build_model

    n = int(sys.argv[1])

    class Lazy:
        '''uint8 (N, 1, 28, 28) images made on demand: strokes of random digits-like blobs.'''
        def __len__(self):
            return n
        def __getitem__(self, sl):
            idx = np.arange(*sl.indices(n))
            rng = np.random.default_rng(idx[0] if len(idx) else 0)
            yy, xx = np.mgrid[0:28, 0:28]
            cx = rng.uniform(8, 20, (len(idx), 1, 1)); cy = rng.uniform(8, 20, (len(idx), 1, 1))
            r = rng.uniform(4, 9, (len(idx), 1, 1))
            ring = np.abs(np.hypot(xx - cx, yy - cy) - r) < 1.5
            return torch.from_numpy((ring * 255).astype(np.uint8)[:, None])

    class Labels:
        def __len__(self):
            return n
        def __getitem__(self, sl):
            return np.arange(*sl.indices(n)) % 10

    def rss_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    model = build_model("mlp", 64, in_channels=1, image_size=28).eval()
    norm = lambda x: (x.float() / 255 - 0.13) / 0.3
    sites = list_sites(model, norm(Lazy()[0:2]))
    data = DumpInput(Lazy(), norm, Labels(), None, [str(i) for i in range(10)])
    with tempfile.TemporaryDirectory() as td:  # warm-up dump: allocator pools, HDF5 caches
        dump_codes(model, DumpInput(Lazy(), norm, Labels(), None, None), td + "/w.h5", sites, batch_size=256)
    base = rss_mb()
    with tempfile.TemporaryDirectory() as td:
        t0 = time.perf_counter()
        st = dump_codes(model, data, td + "/m.h5", sites, batch_size=256)
        dt = time.perf_counter() - t0
        size = st.bytes_on_disk
    print(json.dumps({"n": n, "baseline_mb": base, "peak_mb": rss_mb(), "seconds": dt, "file_mb": size / 1e6}))
    """
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10000, 60000])
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        out = subprocess.run([sys.executable, "-c", CHILD, str(n)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'N':>7s} {'baseline MB':>12s} {'peak MB':>9s} {'growth MB':>10s} {'file MB':>8s} {'s':>6s}")
    for r in rows:
        print(f"{r['n']:7d} {r['baseline_mb']:12.1f} {r['peak_mb']:9.1f} {r['peak_mb'] - r['baseline_mb']:10.1f} "
              f"{r['file_mb']:8.1f} {r['seconds']:6.1f}")
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        print(f"peak ratio N={b['n']} / N={a['n']}: {b['peak_mb'] / a['peak_mb']:.3f} "
              f"(samples x{b['n'] / a['n']:.0f}, file x{b['file_mb'] / a['file_mb']:.1f})")


if __name__ == "__main__":
    main()
