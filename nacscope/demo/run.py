"""``run_demo``: the demo's steps in order, and the comparison written to the output folder."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from nacscope._files import check_folder_writable
from nacscope.demo.compare import comparison_figure, comparison_markdown, comparison_rows, verdict
from nacscope.demo.settings import TITLES, DemoResult, DemoSettings, Log
from nacscope.demo.steps import write_text, analyse, dump_or_reuse, existing_run, load_demo_model, segments_or_reuse, train_or_reuse
from nacscope.errors import OptionError
from nacscope.progress import Progress


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
    check_folder_writable(out)
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
    write_text(files["table"], comparison_markdown(rows, settings.models, n, lines))
    write_text(files["json"], json.dumps({"settings": asdict(settings), "rows": rows, "verdict": lines,
                                           "codesets": {k: str(v) for k, v in codesets.items()}}, indent=1))
    comparison_figure(analyses, rows, files["figure"])
    return DemoResult(out, codesets, analyses, rows, files, seconds, reused, lines)







@functools.wraps(_run_demo)
def run_demo(*args, **kwargs):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(2, threads)))  # the demo's models are small: more threads only contend
    try:
        return _run_demo(*args, **kwargs)
    finally:
        torch.set_num_threads(threads)  # no lasting side effect on the caller's process

