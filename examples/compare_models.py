"""NAC vs SimCLR vs random init on digits and MNIST-5k: the paper's linear-region claim, measured.

The paper (Park et al., ICML 2021) argues that a noise-robust activation code puts the data into more
distinct linear regions of the ReLU network. This example measures it on the ready checkpoints of
``models/`` (no training needed) with three region counts, and retrieval beside them:

* **distinct activation patterns** of each layer among the held-out images (``nacscope analyze``);
* **regions occupied by the whole network**: distinct joint patterns of every ReLU and the code;
* **regions crossed along segments** between random pairs of held-out images, counted *exactly* by
  walking from one boundary to the next (:func:`nacscope.analysis.segments.count_regions_exact`);
* mAP and k-NN accuracy of the codes (Hamming ranking, leave-one-out among the held-out images).

The commands it runs, per dataset ``D`` and model ``M``::

    nacscope dump models/D-M/model.pt --dataset D --split test --layers all -o DIR/D-M.h5
    nacscope compare DIR/D-nac.h5 DIR/D-simclr.h5 DIR/D-random.h5

Run::

    python examples/compare_models.py [--out DIR] [--datasets digits mnist5k] [--pairs 10]

A few minutes on a 2-core CPU (the exact segment walks dominate; ``--pairs`` trades time for
precision). Results land in ``DIR`` (default ``./compare-models``): one code set per model,
``comparison.md`` (the table), ``comparison.json``, ``regions.png`` (distinct patterns per layer and
segment region counts, per dataset) and ``retrieval.png``.
``models/`` holds a random init for digits only; for MNIST-5k the same seeded initialisation of the
same architecture is made on the fly and saved as ``DIR/mnist5k-random.pt``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("nac", "simclr", "random")
TITLES = {"nac": "NAC", "simclr": "SimCLR", "random": "random init"}


def run_cli(*args: object) -> None:
    """Run a ``nacscope`` command in this process, exactly as typed on the command line."""
    from nacscope.cli import app

    argv = [str(a) for a in args]
    print("$ nacscope " + " ".join(argv), flush=True)
    code = app(argv, standalone_mode=False)
    if code:
        sys.exit(code)


def model_source(dataset: str, model: str) -> Path:
    """The checkpoint of ``model`` on ``dataset``: from ``models/``, or for a random init the zoo lacks
    (MNIST-5k), the same seeded initialisation of the zoo's architecture, saved under ``OUT``."""
    ckpt = ROOT / "models" / f"{dataset}-{model}" / "model.pt"
    if ckpt.is_file():
        return ckpt
    if model != "random":
        raise SystemExit(f"missing {ckpt}: build it with python models/make_models.py --only {dataset}-{model}")
    from nacscope.data import load_dataset
    from nacscope.nets import model_config, random_init, save_checkpoint

    d = load_dataset(dataset, "train")
    net = random_init("mlp", 32, 0, d.channels, d.image_size, hidden=(256, 256))
    path = OUT / f"{dataset}-random.pt"
    save_checkpoint(path, net, model_cfg=model_config(net, d.channels, d.image_size, {"hidden": [256, 256]}),
                    config={"objective": "random-init", "seed": 0},
                    data={"name": dataset, "mean": list(d.mean), "std": list(d.std)})
    return path


def load_model(dataset: str, model: str):
    """The network behind :func:`model_source` (for the segment walks)."""
    from nacscope.nets import load_checkpoint

    return load_checkpoint(model_source(dataset, model))[0]


def segment_counts(dataset: str, model: str, pairs: int) -> np.ndarray:
    """Exact regions crossed along ``pairs`` segments between random pairs of held-out images (all ReLUs)."""
    from nacscope.analysis.segments import count_regions_exact, sample_pairs
    from nacscope.codes import CodeSet
    from nacscope.data import load_dataset

    net = load_model(dataset, model)
    data = load_dataset(dataset, "test")
    with CodeSet(OUT / f"{dataset}-{model}.h5") as cs:  # the normalisation the dump used
        norm = cs.attrs["config"]["normalization"]
    mean = np.asarray(norm["mean"], np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(norm["std"], np.float32).reshape(1, -1, 1, 1)
    import torch

    x = (data.images.float() / 255.0 - torch.from_numpy(mean)) / torch.from_numpy(std)  # (N, C, H, W)
    p = sample_pairs(len(x), pairs, seed=0)  # (P, 2): the same pairs for every model
    return count_regions_exact(net, x[p[:, 0]], x[p[:, 1]]).regions


OUT = Path("compare-models")


def main(argv: list[str] | None = None) -> dict:
    global OUT
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--datasets", nargs="+", default=["digits", "mnist5k"], choices=["digits", "mnist5k"])
    ap.add_argument("--pairs", type=int, default=10, help="segments per model for the exact region walk")
    args = ap.parse_args(argv)
    OUT = args.out
    OUT.mkdir(parents=True, exist_ok=True)

    from nacscope.analysis import compare_codesets

    results: dict = {}
    for dataset in args.datasets:
        paths = []
        for model in MODELS:
            h5 = OUT / f"{dataset}-{model}.h5"
            run_cli("dump", model_source(dataset, model), "--dataset", dataset, "--split", "test", "--layers", "all",
                    "--thumbnails", "0", "--device", "cpu", "-o", h5, "--force")
            paths.append(str(h5))
        print(f"$ nacscope compare {' '.join(paths)}", flush=True)
        cmp = compare_codesets(paths)
        for model, res in zip(MODELS, cmp["results"]):
            seg = segment_counts(dataset, model, args.pairs)
            cum = res["cumulative"]
            results.setdefault(dataset, {})[model] = {
                "n_samples": res["n_samples"],
                "layers": {name: lay["distinct_patterns"] for name, lay in res["layers"].items()},
                "network_regions": list(cum.values())[-1]["distinct_patterns"],
                "segment_regions": seg.tolist(),
                "segment_mean": float(seg.mean()),
                "map": res["retrieval"]["code"]["map"],
                "knn_accuracy": res["retrieval"]["code"]["knn_accuracy"],
            }
            print(f"  {dataset} {TITLES[model]}: {seg.mean():.1f} regions per segment (exact, {len(seg)} pairs)")
    (OUT / "comparison.json").write_text(json.dumps(results, indent=1))
    (OUT / "comparison.md").write_text(markdown(results))
    figures(results)
    print("\n" + markdown(results))
    print(f"written: {OUT / 'comparison.md'}, {OUT / 'regions.png'}, {OUT / 'retrieval.png'}")
    return results


def markdown(results: dict) -> str:
    lines = ["| dataset | model | distinct codes | regions occupied (whole network) | regions per segment (exact, mean) "
             "| mAP | k-NN acc |", "|---|---|---:|---:|---:|---:|---:|"]
    for dataset, per in results.items():
        for model, r in per.items():
            lines.append(f"| {dataset} ({r['n_samples']:,} test images) | {TITLES[model]} | {r['layers']['code']:,} | "
                         f"{r['network_regions']:,} | {r['segment_mean']:.1f} | {r['map']:.3f} | {r['knn_accuracy']:.3f} |")
    return "\n".join(lines) + "\n"


def figures(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(results)
    fig, axes = plt.subplots(2, n, figsize=(6 * n, 8), squeeze=False)
    for j, (dataset, per) in enumerate(results.items()):
        ax = axes[0, j]
        layers = list(next(iter(per.values()))["layers"])
        width = 0.8 / len(per)
        for i, (model, r) in enumerate(per.items()):
            ax.bar(np.arange(len(layers)) + i * width, [r["layers"][l] for l in layers], width, label=TITLES[model])
        ax.set_xticks(np.arange(len(layers)) + width * (len(per) - 1) / 2)
        ax.set_xticklabels(layers, rotation=20, ha="right", fontsize=8)
        ax.axhline(next(iter(per.values()))["n_samples"], color="gray", lw=0.8, ls="--")
        ax.set_title(f"{dataset}: distinct activation patterns per layer")
        ax.legend(fontsize=8)
        ax = axes[1, j]
        data = [r["segment_regions"] for r in per.values()]
        ax.boxplot(data)
        ax.set_xticks(range(1, len(per) + 1), [TITLES[m] for m in per])
        ax.set_ylabel("linear regions crossed (exact)")
        ax.set_title(f"{dataset}: regions along segments between test images")
    fig.tight_layout()
    fig.savefig(OUT / "regions.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    width = 0.8 / len(MODELS)
    for i, model in enumerate(MODELS):
        vals = [results[d][model]["map"] for d in results]
        ax.bar(np.arange(len(results)) + i * width, vals, width, label=TITLES[model])
    ax.set_xticks(np.arange(len(results)) + width, list(results))
    ax.set_ylabel("mAP (Hamming, leave-one-out)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "retrieval.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
