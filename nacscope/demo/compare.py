"""The demo's comparison: one row per metric, one column per model, a verdict, a table and a figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nacscope._files import save_png
from nacscope.demo.settings import TITLES, DemoSettings


def comparison_rows(analyses: dict[str, dict], settings: DemoSettings | None = None) -> list[dict]:
    """One row per metric, one column per model, from ``analyze_codeset`` results (code layer + network)."""

    def get(res: dict, *path: str) -> Any:
        for p in path:
            if res is None:
                return None
            res = res.get(p)
        return res

    settings = settings or DemoSettings()
    metrics = [
        # (not the whole network's distinct patterns on the data: 1,797 of 1,797 for every model, it says nothing)
        ("linear regions crossed along a segment between two test digits (mean of "
         f"{settings.segment_pairs}, all ReLUs, exact)",
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
    wanted = {"linear regions crossed": "regions along segments",
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


