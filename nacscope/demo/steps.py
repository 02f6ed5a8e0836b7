"""The demo's steps, each reused when its result is already in the output folder: train, dump, analyse."""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

import numpy as np

from nacscope._files import atomic_write
from nacscope.demo.settings import TITLES, DemoSettings, Log
from nacscope.errors import OptionError
from nacscope.progress import Progress


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
    """Exact linear regions crossed along segments between random pairs of held-out digits (all ReLU sites).

    Walked exactly (:func:`nacscope.analysis.segments.count_regions_exact`; the demo's MLP takes its
    layer-by-layer chain walk, well under a second for 20 segments). Stored in ``path`` (JSON) with the
    model it was computed for, and reused.
    """
    from nacscope.analysis.segments import count_regions_exact, sample_pairs
    from nacscope.data import load_dataset

    params = {"model": meta["path"], "sha256": meta["sha256"], "pairs": settings.segment_pairs,
              "method": "exact", "split": "test", "seed": 0}
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
    counts = count_regions_exact(model, x[pairs[:, 0]], x[pairs[:, 1]]).regions  # (P,)
    result = {"params": params, "method": "exact", "counts": counts.tolist(), "mean": float(counts.mean()),
              "median": float(np.median(counts))}
    write_text(path, json.dumps(result))
    return result


def write_text(path: Path, text: str) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(text)
