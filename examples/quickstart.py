"""Quickstart: train, dump, analyse, report and export, on scikit-learn's digits, on the CPU.

The same five commands you would type, run in order (each printed before it runs)::

    nacscope train --dataset digits --arch mlp --objective nac --epochs 20 --out quickstart/run
    nacscope dump quickstart/run --dataset digits --split test -o quickstart/codes.h5
    nacscope analyze quickstart/codes.h5 --json            (saved as quickstart/analysis.json)
    nacscope report quickstart/codes.h5 -o quickstart/report
    nacscope export quickstart/codes.h5 --layer code -o quickstart/codes.npz

then browse the result with ``nacscope inspect quickstart/codes.h5``.

Run::

    python examples/quickstart.py [--out DIR] [--epochs 20] [--no-umap]

About a minute on a 2-core CPU, nothing downloaded. Where results land: ``DIR/run`` (checkpoint,
metrics.jsonl), ``DIR/codes.h5`` (the code set of the 360 held-out digits), ``DIR/analysis.json``,
``DIR/report/`` (PNG figures and a Markdown summary) and ``DIR/codes.npz`` (codes, labels, indices).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path


def run_cli(*args: object, capture: bool = False) -> str:
    """Run a ``nacscope`` command in this process, exactly as typed on the command line."""
    from nacscope.cli import app

    argv = [str(a) for a in args]
    print("$ nacscope " + " ".join(argv), flush=True)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf) if capture else contextlib.nullcontext():
        code = app(argv, standalone_mode=False)
    if code:  # the command already printed a one-line error
        sys.exit(code)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("quickstart"))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--no-umap", action="store_true", help="skip the report's UMAP figure (its first run compiles)")
    args = ap.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    run_cli("train", "--dataset", "digits", "--arch", "mlp", "--objective", "nac", "--epochs", args.epochs,
            "--out", out / "run", "--force", "--quiet")
    run_cli("dump", out / "run", "--dataset", "digits", "--split", "test", "-o", out / "codes.h5", "--force")
    analysis = json.loads(run_cli("analyze", out / "codes.h5", "--json", capture=True))
    (out / "analysis.json").write_text(json.dumps(analysis, indent=1))
    run_cli("report", out / "codes.h5", "-o", out / "report", "--force", *(["--no-umap"] if args.no_umap else []))
    run_cli("export", out / "codes.h5", "--layer", "code", "-o", out / "codes.npz", "--force")

    code = analysis["layers"]["code"]
    ret = analysis["retrieval"]["code"]
    print(f"\ncode layer: {code['n_bits']} bits, {code['distinct_patterns']} distinct codes among "
          f"{code['n_samples']} held-out digits; mAP {ret['map']:.3f}, k-NN accuracy {ret['knn_accuracy']:.3f}")
    print(f"next: nacscope inspect {out / 'codes.h5'}")
    return analysis


if __name__ == "__main__":
    main()
