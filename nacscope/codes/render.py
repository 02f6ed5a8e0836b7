"""Rich renderables describing a code set (used by ``nacscope info`` and the TUI's plain fallback)."""

from __future__ import annotations

import numpy as np
from rich.console import Group
from rich.table import Table

from nacscope.codes.cache import cached_keys, projection_names
from nacscope.codes.format import CodeSet


def human_bytes(n: float) -> str:
    """Bytes in binary units: ``512 B``, ``1.5 KiB``, ``30.7 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def provenance_table(cs: CodeSet) -> Table:
    a = cs.attrs
    t = Table(title=f"{cs.path.name}", show_header=False, title_justify="left", box=None, pad_edge=False)
    t.add_column(style="bold cyan")
    t.add_column()
    status = "complete" if cs.complete else "[yellow]being written (or interrupted)[/]"
    rows = [
        ("format", f"{a.get('format')} v{a.get('format_version')} (nacscope {a.get('nacscope_version')})"),
        ("status", status),
        ("created", a.get("created", "")),
        ("dataset", " / ".join(str(x) for x in (a.get("dataset"), a.get("split")) if x)),
        ("checkpoint", a.get("checkpoint", "")),
        ("checkpoint sha256", str(a.get("checkpoint_sha256", ""))[:16]),
        ("source", a.get("source", "")),
        ("command", a.get("command", "")),
    ]
    for k, v in rows:
        if v not in ("", None):
            t.add_row(k, str(v))
    return t


def samples_table(cs: CodeSet) -> Table:
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold cyan")
    t.add_column()
    t.add_row("samples", f"{cs.n_samples:,}")
    kind = cs.label_kind
    if kind == "class":
        labels = cs.labels()
        classes = np.unique(labels)
        names = cs.class_names
        shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "") if names else ""
        t.add_row("labels", f"{len(classes)} classes" + (f" ({shown})" if shown else ""))
    elif kind == "multihot":
        t.add_row("labels", f"multi-hot, {cs.labels(slice(0, 1)).shape[1]} labels")
    else:
        t.add_row("labels", "none")
    mask = cs.query_mask
    if mask is not None:
        t.add_row("split", f"{int(mask.sum()):,} queries / {int((~mask).sum()):,} gallery")
    if cs.has_thumbnails:
        t.add_row("thumbnails", "x".join(str(s) for s in cs.f["samples"]["thumbnails"].shape[1:]))
    if cs.feature_names:
        t.add_row("features", ", ".join(f"{n} ({cs.f['features'][n].shape[1]}-d)" for n in cs.feature_names))
    keys = cached_keys(cs)
    t.add_row("cached analyses", ", ".join(keys) if keys else "none")
    if projection_names(cs):
        t.add_row("projections", ", ".join(projection_names(cs)))
    return t


def layers_table(cs: CodeSet) -> Table:
    t = Table(title="layers", title_justify="left")
    for col, just in (("layer", "left"), ("kind", "left"), ("units", "right"), ("shape", "right"),
                      ("on disk", "right"), ("features", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for info in cs.layers:
        t.add_row(info.name, info.kind, f"{info.units:,}", "x".join(map(str, info.shape)),
                  human_bytes(info.nbytes_on_disk), "yes" if info.has_features else "")
    return t


def render_info(cs: CodeSet) -> Group:
    """Everything ``nacscope info`` prints."""
    return Group(provenance_table(cs), samples_table(cs), layers_table(cs))
