"""Bring codes made by other hashing methods into nacscope and compare them.

What it does (CPU, a few seconds, nothing downloaded):

1. Makes 32-bit binary codes of scikit-learn's digits with two classic unsupervised hashing methods
   written here in a few lines of numpy: **random-projection LSH** (SimHash: the signs of random
   Gaussian projections) and **PCA-sign** (the signs of the top principal components), plus
   **ITQ** (iterative quantisation: PCA then a learned rotation, Gong & Lazebnik 2011).
2. Saves each as ``.npy`` files, the form any other tool can produce, and brings them in with
   ``nacscope import-codes`` (same as on the command line)::

       nacscope import-codes lsh.npy --labels labels.npy --query-mask is_query.npy -o lsh.h5

3. Analyses them side by side (what ``nacscope compare lsh.h5 pca.h5 itq.h5`` prints): distinct
   codes, collisions, bit health, Hamming-retrieval mAP and k-NN accuracy, 10 queries per class
   against the rest as gallery.
4. Exports the best one back out as a faiss binary index (``nacscope export itq.h5 -o itq.faiss``)
   and checks one query's neighbours against nacscope's own ranking.

Run::

    python examples/third_party_codes.py [--out DIR] [--bits 32]

Results land in ``DIR`` (default ``./third-party-codes``): the ``.npy`` inputs, one code set per
method, ``comparison.json`` and ``itq.faiss``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def hashing_codes(x: np.ndarray, bits: int, seed: int = 0) -> dict[str, np.ndarray]:
    """{method: (N, bits) bool codes} for LSH, PCA-sign and ITQ, fitted on all of ``x`` (unsupervised)."""
    rng = np.random.default_rng(seed)
    xc = x - x.mean(axis=0)  # (N, F)
    lsh = xc @ rng.normal(size=(x.shape[1], bits)) > 0  # SimHash
    from sklearn.decomposition import PCA

    v = PCA(n_components=bits, random_state=seed).fit_transform(xc)  # (N, bits)
    pca = v > 0
    # ITQ: alternate B = sign(V R) and R = the orthogonal Procrustes solution of V R ~ B.
    r = np.linalg.qr(rng.normal(size=(bits, bits)))[0]
    for _ in range(50):
        b = np.where(v @ r >= 0, 1.0, -1.0)
        u, _, wt = np.linalg.svd(v.T @ b)
        r = u @ wt
    itq = v @ r > 0
    return {"lsh": lsh, "pca": pca, "itq": itq}


def run_cli(*args: object) -> None:
    """Run a ``nacscope`` command in this process, exactly as typed on the command line."""
    from nacscope.cli import app

    argv = [str(a) for a in args]
    print("$ nacscope " + " ".join(argv), flush=True)
    code = app(argv, standalone_mode=False)
    if code:  # one_line_errors already printed the message
        sys.exit(code)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("third-party-codes"))
    ap.add_argument("--bits", type=int, default=32)
    args = ap.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    from sklearn.datasets import load_digits

    from nacscope.analysis import compare_codesets, hamming_topk
    from nacscope.codes import CodeSet

    d = load_digits()
    x, y = d.data.astype(np.float64), d.target.astype(np.int64)
    is_query = np.zeros(len(y), bool)
    for c in range(10):  # 10 queries per class, the rest is the gallery
        is_query[np.flatnonzero(y == c)[:10]] = True
    np.save(out / "labels.npy", y)
    np.save(out / "is_query.npy", is_query)

    paths = []
    for name, codes in hashing_codes(x, args.bits).items():
        np.save(out / f"{name}.npy", codes.astype(np.int8) * 2 - 1)  # {-1,+1}, as many tools write them
        h5 = out / f"{name}.h5"
        run_cli("import-codes", out / f"{name}.npy", "--labels", out / "labels.npy",
                "--query-mask", out / "is_query.npy", "--layer", "code", "-o", h5, "--force")
        paths.append(str(h5))

    cmp = compare_codesets(paths, ["code"])
    table = {}
    print(f"\n{'method':8} {'distinct':>8} {'collided':>8} {'mAP':>6} {'kNN acc':>7} {'dead bits':>9}")
    for p, res in zip(paths, cmp["results"]):
        lay, ret = res["layers"]["code"], res["retrieval"]["code"]
        name = Path(p).stem
        table[name] = {"distinct_patterns": lay["distinct_patterns"], "samples_in_collisions": lay["samples_in_collisions"],
                       "map": ret["map"], "knn_accuracy": ret["knn_accuracy"], "dead_bits": lay["dead_bits"]}
        print(f"{name:8} {lay['distinct_patterns']:8d} {lay['samples_in_collisions']:8d} {ret['map']:6.3f} "
              f"{ret['knn_accuracy']:7.3f} {lay['dead_bits']:9d}")
    (out / "comparison.json").write_text(json.dumps(table, indent=1))

    # Export the ITQ gallery as a faiss index and check a query's neighbours against nacscope's ranking.
    run_cli("export", out / "itq.h5", "--rows", "gallery", "-o", out / "itq.faiss", "--force")
    import faiss

    index = faiss.read_index_binary(str(out / "itq.faiss"))
    with CodeSet(out / "itq.h5") as cs:
        q, g = cs.packed("code")[is_query][:5], cs.packed("code")[~is_query]
    dist_f, _ = index.search(q, 10)
    _, dist_n = hamming_topk(q, g, 10)
    assert np.array_equal(np.sort(dist_f, 1), np.sort(dist_n, 1)), "faiss and nacscope disagree"
    print(f"\nfaiss index of {index.ntotal} gallery codes agrees with nacscope's Hamming ranking")
    return table


if __name__ == "__main__":
    main()
