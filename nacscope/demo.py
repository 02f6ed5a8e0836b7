"""``nacscope demo``: the whole journey on scikit-learn's digits, on the CPU, with nothing downloaded.

Steps (each one reused when its result is already in the output folder):

1. train a NAC encoder (``mlp`` 64-256-256, 32-bit code) and, for contrast, a SimCLR one with the
   same encoder, head and augmentations (:func:`nacscope.training.train`);
2. take a randomly initialised encoder of the same architecture (seeded);
3. dump every ReLU site and the code layer of all 1,797 digits for each model into a code set
   (:func:`nacscope.codes.dump.dump_codes`); the held-out test digits (every 5th) are the
   retrieval queries, the training digits the gallery;
4. analyse each code set (:func:`nacscope.analysis.analyze_codeset`, probes included; cached in the
   files), and write ``comparison.json``, ``comparison.md`` and ``comparison.png``.

The comparison answers the paper's claim with numbers: does NAC training put the data into more
distinct linear regions (activation patterns of the whole network, and distinct codes) and retrieve
better than SimCLR and a random initialisation?
"""

from __future__ import annotations

import functools

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nacscope._files import atomic_write, save_png
from nacscope.errors import OptionError
from nacscope.progress import Progress

MODELS = ("nac", "simclr", "random")
TITLES = {"nac": "NAC", "simclr": "SimCLR", "random": "random init"}
Log = Callable[[str], None]


@dataclass
class DemoSettings:
    """What the demo trains; changing any of it retrains (or refuses without ``force``)."""

    epochs: int = 20
    bits: int = 32
    hidden: tuple[int, ...] = (256, 256)
    seed: int = 0
    simclr: bool = True
    dataset: str = "digits"
    segment_pairs: int = 20  # segments between random pairs of test digits
    segment_points: int = 2000  # points sampled along each segment

    def check(self) -> None:
        if self.epochs < 1:
            raise OptionError(f"--epochs must be >= 1, got {self.epochs}")
        if self.bits < 1:
            raise OptionError(f"--bits must be >= 1, got {self.bits}")
        if self.segment_pairs < 1 or self.segment_points < 2:
            raise OptionError("segments need at least 1 pair and 2 points")

    @property
    def models(self) -> tuple[str, ...]:
        return MODELS if self.simclr else ("nac", "random")


@dataclass
class DemoResult:
    """What the demo produced: code sets, analyses, the comparison table, figure, timings."""

    out: Path
    codesets: dict[str, Path]
    analyses: dict[str, dict]
    rows: list[dict]
    files: dict[str, Path]
    seconds: dict[str, float] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)
    verdict: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- train
def _train_config(settings: DemoSettings, objective: str):
    from nacscope.training import TrainConfig

    return TrainConfig(dataset=settings.dataset, arch="mlp", objective=objective, bits=settings.bits,
                       epochs=settings.epochs, hidden=list(settings.hidden), seed=settings.seed, device="cpu",
                       eval_every=0, ckpt_every=0)


_KEYS = ("dataset", "arch", "objective", "bits", "hidden", "seed")


def existing_run(settings: DemoSettings, objective: str, run_dir: Path) -> dict | None:
    """The checkpoint state in ``run_dir`` if it is a run with these settings; None if there is none.

    Raises:
        OptionError: ``run_dir`` holds a run with other settings.
    """
    from nacscope.nets.checkpoint import read_checkpoint

    ckpt = run_dir / "last.pt"
    if not ckpt.is_file():
        return None
    cfg = _train_config(settings, objective)
    state = read_checkpoint(ckpt)
    saved = state.get("config", {})
    if any(saved.get(k) != getattr(cfg, k) for k in _KEYS) or saved.get("epochs") != cfg.epochs:
        raise OptionError(f"{run_dir} holds a run with other settings; use --force to redo the demo, or another --out")
    return state


def train_or_reuse(settings: DemoSettings, objective: str, run_dir: Path, *, force: bool, console=None,
                   log: Log = print) -> tuple[Path, bool]:
    """Train ``objective`` into ``run_dir`` unless a finished run with the same settings is there.

    Returns ``(checkpoint path, reused)``. An unfinished run with the same settings is resumed; a run
    with other settings is refused unless ``force``.
    """
    from nacscope.training import train

    cfg = _train_config(settings, objective)
    ckpt = run_dir / "last.pt"
    state = None if force else existing_run(settings, objective, run_dir)
    if state is not None and int(state.get("epoch", 0)) >= cfg.epochs:
        return ckpt, True
    if state is not None:
        log(f"      resuming {TITLES[objective]} training from epoch {state.get('epoch')}")
    result = train(cfg, run_dir, resume=state is not None, force=force and state is None, progress=True,
                   console=console)
    if result.interrupted:
        raise KeyboardInterrupt
    return ckpt, False


# ----------------------------------------------------------------------------------------------- dump
def _source_args(settings: DemoSettings, ckpt: Path | None) -> dict:
    """How :mod:`nacscope.codes.study` builds the demo's ``nac`` / ``simclr`` (a checkpoint) or ``random`` model."""
    if ckpt is not None:
        return {"checkpoint": ckpt}
    return {"checkpoint": None, "random_init": True, "arch": "mlp", "bits": settings.bits, "seed": settings.seed,
            "hidden": tuple(settings.hidden)}


def load_demo_model(settings: DemoSettings, name: str, ckpt: Path | None):
    """(model in eval mode, provenance dict) for ``nac`` / ``simclr`` (from ``ckpt``) or ``random``.

    The provenance's ``source`` is the :class:`nacscope.nets.ModelSource` (fitted to the dataset's
    normalisation) that rebuilds the model and its inputs: the same one :func:`dump_or_reuse` records."""
    from nacscope.codes.study import load_data, load_source, normalizer

    if name != "random" and ckpt is None:
        raise OptionError(f"the demo's {name} model needs its checkpoint")
    data = load_data(settings.dataset, "all", None)
    model, meta = load_source(**_source_args(settings, ckpt if name != "random" else None),
                              in_channels=data.channels, image_size=data.image_size)
    normalizer(meta, data)  # fits meta["source"] to the data
    return model.eval(), meta


def dump_or_reuse(settings: DemoSettings, name: str, ckpt: Path | None, out: Path, *, force: bool,
                  progress: Progress | None = None) -> tuple[Path, bool]:
    """Dump every ReLU site and the code layer of the whole dataset (the test split as queries, see the
    ``held-out`` protocol) with :func:`nacscope.codes.job.run_dump`; reuse a complete dump of the same model."""
    from nacscope.codes import CodeSet
    from nacscope.codes.job import DumpRequest, run_dump

    if out.exists() and not force:
        _, meta = load_demo_model(settings, name, ckpt)
        try:
            with CodeSet(out) as cs:
                a = cs.attrs
                if (cs.complete and a.get("checkpoint") == meta["path"] and a.get("checkpoint_sha256") == meta["sha256"]
                        and a.get("model_source") == json.loads(meta["source"].to_json())):
                    return out, True
        except Exception:  # unreadable or foreign: dump again
            pass
    req = DumpRequest(settings.dataset, out, **_source_args(settings, ckpt if name != "random" else None),
                      split="all", layers=["all"], protocol="held-out", batch_size=512, device="cpu", force=True,
                      command="nacscope demo",
                      config_extra={"demo_model": name, "settings": asdict(settings),
                                    "queries": "test split (every 5th sample)"})
    run_dump(req, lambda rank: nullcontext(progress))
    return out, False


# -------------------------------------------------------------------------------------------- analyse
def analyse(path: Path, progress: Progress | None = None) -> dict:
    """``analyze_codeset`` of every layer (regions, collisions, retrieval; cached in the file), plus the
    probes of the code layer only (probes of the 256-unit layers cost ~10x more and say little more)."""
    from nacscope.analysis import analyze_codeset
    from nacscope.analysis.probes import analyze_probes
    from nacscope.codes import CodeSet

    with CodeSet(path) as cs:
        res = analyze_codeset(cs, progress=progress)
        res["probes"] = {"code": analyze_probes(cs, "code", progress=progress)}
    return res


def segments_or_reuse(settings: DemoSettings, model, meta: dict, path: Path) -> dict:
    """Linear regions crossed along segments between random pairs of held-out digits (all ReLU sites).

    Counted by dense sampling (``settings.segment_points`` points per segment): a lower bound of the exact count
    (:func:`nacscope.analysis.segments.count_regions_exact` walks boundaries exactly but takes ~10x
    longer than the demo's budget on a 2-core CPU; ``examples/compare_models.py`` uses it). Stored
    in ``path`` (JSON) with the model it was computed for, and reused.
    """
    from nacscope.analysis.segments import count_regions_dense, sample_pairs
    from nacscope.data import load_dataset

    params = {"model": meta["path"], "sha256": meta["sha256"], "pairs": settings.segment_pairs,
              "points": settings.segment_points,
              "split": "test", "seed": 0}
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
            if saved.get("params") == params:
                return saved
        except ValueError:
            pass
    data = load_dataset(settings.dataset, "test")
    x = meta["source"].normalizer()(data.images)  # (N, C, H, W) float32, as the dump fed them
    pairs = sample_pairs(len(x), settings.segment_pairs, seed=0)  # (P, 2)
    counts = count_regions_dense(model, x[pairs[:, 0]], x[pairs[:, 1]], n=settings.segment_points)  # (P,)
    result = {"params": params, "method": "dense", "counts": counts.tolist(), "mean": float(counts.mean()),
              "median": float(np.median(counts))}
    _write_text(path, json.dumps(result))
    return result


# -------------------------------------------------------------------------------------------- compare
def comparison_rows(analyses: dict[str, dict], settings: DemoSettings | None = None) -> list[dict]:
    """One row per metric, one column per model, from ``analyze_codeset`` results (code layer + network)."""

    def get(res: dict, *path: str) -> Any:
        for p in path:
            if res is None:
                return None
            res = res.get(p)
        return res

    def network(res: dict) -> Any:
        cum = res.get("cumulative") or {}
        return list(cum.values())[-1]["distinct_patterns"] if cum else None

    settings = settings or DemoSettings()
    metrics = [
        ("linear regions occupied (whole network: distinct patterns of all ReLUs + code)", network,
         "paper: NAC higher"),
        ("linear regions crossed along a segment between two test digits (mean of "
         f"{settings.segment_pairs}, all ReLUs, {settings.segment_points:,}-point sampling: a lower bound)",
         lambda r: get(r, "segments", "mean"), "paper: NAC higher"),
        ("distinct codes (code layer)", lambda r: get(r, "layers", "code", "distinct_patterns"), "paper: NAC higher"),
        ("samples sharing their code with another sample", lambda r: get(r, "layers", "code", "samples_in_collisions"),
         "lower is better"),
        ("mAP (Hamming, test queries vs train gallery)", lambda r: get(r, "retrieval", "code", "map"), "higher is better"),
        ("k-NN accuracy (codes, Hamming)", lambda r: get(r, "retrieval", "code", "knn_accuracy"), "higher is better"),
        ("probe: logistic regression on codes", lambda r: get(r, "probes", "code", "logistic_codes"), "higher is better"),
        ("probe: linear on features h", lambda r: get(r, "probes", "code", "linear_features"), "higher is better"),
        ("dead or stuck code bits", lambda r: (get(r, "layers", "code", "dead_bits") or 0)
         + (get(r, "layers", "code", "stuck_bits") or 0), "lower is better"),
    ]
    return [{"metric": m, "better": better, **{name: fn(res) for name, res in analyses.items()}}
            for m, fn, better in metrics]


def verdict(rows: list[dict], models: tuple[str, ...]) -> list[str]:
    """Plain sentences: does NAC beat each other model on regions and retrieval (whichever way it goes)."""
    out = []
    wanted = {"linear regions occupied": "regions occupied", "linear regions crossed": "regions along segments",
              "distinct codes": "distinct codes", "mAP": "mAP",
              "k-NN accuracy": "k-NN accuracy"}
    for other in models:
        if other == "nac":
            continue
        parts = []
        for row in rows:
            label = next((v for k, v in wanted.items() if row["metric"].startswith(k)), None)
            a, b = row.get("nac"), row.get(other)
            if label is None or a is None or b is None:
                continue
            fmt = (lambda v: f"{v:,}") if isinstance(a, int) else (lambda v: f"{v:.1f}") if a > 1 else (lambda v: f"{v:.3f}")
            word = "more" if a > b else "fewer" if a < b else "as many"
            if not isinstance(a, int):
                word = "higher" if a > b else "lower" if a < b else "equal"
            parts.append(f"{label} {fmt(a)} vs {fmt(b)} ({word})")
        out.append(f"NAC vs {TITLES[other]}: " + "; ".join(parts))
    return out


def format_value(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    return f"{float(v):.1f}" if abs(float(v)) > 1 else f"{float(v):.3f}"


def comparison_markdown(rows: list[dict], models: tuple[str, ...], n_samples: int, lines: list[str]) -> str:
    head = "| metric | " + " | ".join(TITLES[m] for m in models) + " |"
    sep = "|---|" + "---:|" * len(models)
    body = [f"| {r['metric']} ({r['better']}) | " + " | ".join(format_value(r.get(m)) for m in models) + " |"
            for r in rows]
    return "\n".join([f"# nacscope demo: {n_samples:,} digits", "", head, sep, *body, "", *[f"- {l}" for l in lines], ""])


def comparison_figure(analyses: dict[str, dict], rows: list[dict], path: Path) -> Path:
    """Three panels: distinct activation patterns of each layer, regions crossed
    along segments between test digits, and the retrieval / probe scores; one bar per model."""
    from nacscope._files import subplots

    models = list(analyses)
    fig, (ax1, ax2, ax3) = subplots(1, 3, figsize=(15, 4.4), gridspec_kw={"width_ratios": [3, 1.3, 3]})
    layers = list(next(iter(analyses.values()))["cumulative"])
    width = 0.8 / len(models)
    for i, m in enumerate(models):
        per = analyses[m]["layers"]
        ax1.bar(np.arange(len(layers)) + i * width, [per[l]["distinct_patterns"] for l in layers], width,
                label=TITLES[m])
    ax1.set_xticks(np.arange(len(layers)) + width * (len(models) - 1) / 2)
    ax1.set_xticklabels(layers, rotation=20, ha="right", fontsize=8)
    n = next(iter(analyses.values()))["n_samples"]
    ax1.axhline(n, color="gray", lw=0.8, ls="--")
    ax1.set_ylabel(f"distinct activation patterns (of {n:,} samples)")
    ax1.set_title("distinct activation patterns of each layer", fontsize=10)
    ax1.legend(fontsize=8)
    seg = [analyses[m].get("segments") or {} for m in models]
    ax2.bar(np.arange(len(models)), [s.get("mean", 0) for s in seg], 0.6,
            color=[f"C{i}" for i in range(len(models))])
    for i, s in enumerate(seg):
        if s.get("counts"):
            ax2.plot(np.full(len(s["counts"]), i) + np.linspace(-0.2, 0.2, len(s["counts"])), s["counts"], "k.", ms=3)
    ax2.set_xticks(np.arange(len(models)))
    ax2.set_xticklabels([TITLES[m] for m in models], fontsize=8)
    ax2.set_title("regions crossed between\ntwo test digits", fontsize=10)
    scores = [r for r in rows if isinstance(r.get(models[0]), float) and not r["metric"].startswith("linear regions")]
    for i, m in enumerate(models):
        ax3.bar(np.arange(len(scores)) + i * width, [r.get(m) or 0 for r in scores], width, label=TITLES[m])
    ax3.set_xticks(np.arange(len(scores)) + width * (len(models) - 1) / 2)
    ax3.set_xticklabels([r["metric"].split(" (")[0] for r in scores], rotation=20, ha="right", fontsize=8)
    ax3.set_ylim(0, 1)
    ax3.set_title("retrieval and probes (held-out queries)", fontsize=10)
    fig.tight_layout()
    return save_png(fig, path, dpi=100)


# ---------------------------------------------------------------------------------------------- run
def _run_demo(
    out: str | Path = "nacscope-demo",
    settings: DemoSettings | None = None,
    *,
    force: bool = False,
    console=None,
    log: Log = print,
    dump_progress: Callable[[str], Progress | None] | None = None,
    analysis_progress: Callable[[str], Progress | None] | None = None,
) -> DemoResult:
    """Train, dump, analyse and compare NAC, SimCLR and random init on digits (see the module docstring).

    Args:
        out: the output folder (created); re-running reuses what is there.
        settings: what to train (defaults: :class:`DemoSettings`).
        force: redo every step.
        console: a rich Console for training progress bars.
        log: receives one line per step.
        dump_progress, analysis_progress: factories of per-model progress callbacks.

    Torch's thread count is capped at 2 for the run and restored afterwards (see :func:`run_demo`).
    """
    settings = settings or DemoSettings()
    settings.check()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OptionError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    reused: list[str] = []
    ckpts: dict[str, Path | None] = {"random": None}
    if not force:  # refuse a folder holding other settings before doing anything
        for name in settings.models:
            if name != "random":
                existing_run(settings, name, out / f"{name}-run")
    n_steps = 3 * len(settings.models) - 1
    step = 0

    def stage(text: str) -> None:
        nonlocal step
        step += 1
        log(f"[{step}/{n_steps}] {text}")

    for name in settings.models:
        if name == "random":
            continue
        stage(f"training {TITLES[name]} on {settings.dataset} ({settings.epochs} epochs, mlp {settings.hidden}, "
              f"{settings.bits} bits)")
        t0 = time.perf_counter()
        ckpts[name], was = train_or_reuse(settings, name, out / f"{name}-run", force=force, console=console, log=log)
        seconds[f"train {name}"] = time.perf_counter() - t0
        if was:
            reused.append(f"{name} checkpoint")
            log(f"      reusing {ckpts[name]}")
    codesets: dict[str, Path] = {}
    for name in settings.models:
        stage(f"dumping {TITLES[name]} activation patterns")
        t0 = time.perf_counter()
        cb = dump_progress(name) if dump_progress else None
        codesets[name], was = dump_or_reuse(settings, name, ckpts[name], out / f"{name}.h5", force=force, progress=cb)
        seconds[f"dump {name}"] = time.perf_counter() - t0
        if was:
            reused.append(f"{name} code set")
            log(f"      reusing {codesets[name]}")
    analyses: dict[str, dict] = {}
    for name in settings.models:
        stage(f"analysing {TITLES[name]} (regions, segments, collisions, retrieval, probes)")
        t0 = time.perf_counter()
        cb = analysis_progress(name) if analysis_progress else None
        analyses[name] = analyse(codesets[name], progress=cb)
        model, meta = load_demo_model(settings, name, ckpts[name])
        analyses[name]["segments"] = segments_or_reuse(settings, model, meta, out / f"{name}.segments.json")
        seconds[f"analyse {name}"] = time.perf_counter() - t0
    rows = comparison_rows(analyses, settings)
    lines = verdict(rows, settings.models)
    n = next(iter(analyses.values()))["n_samples"]
    files = {
        "table": out / "comparison.md",
        "json": out / "comparison.json",
        "figure": out / "comparison.png",
    }
    _write_text(files["table"], comparison_markdown(rows, settings.models, n, lines))
    _write_text(files["json"], json.dumps({"settings": asdict(settings), "rows": rows, "verdict": lines,
                                           "codesets": {k: str(v) for k, v in codesets.items()}}, indent=1))
    comparison_figure(analyses, rows, files["figure"])
    return DemoResult(out, codesets, analyses, rows, files, seconds, reused, lines)


def _write_text(path: Path, text: str) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(text)


__all__ = ["DemoResult", "DemoSettings", "MODELS", "comparison_rows", "load_demo_model", "run_demo", "verdict"]


@functools.wraps(_run_demo)
def run_demo(*args, **kwargs):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(2, threads)))  # the demo's models are small: more threads only contend
    try:
        return _run_demo(*args, **kwargs)
    finally:
        torch.set_num_threads(threads)  # no lasting side effect on the caller's process
