"""The one-screen text summary ``nacscope inspect`` prints when there is no terminal (or ``--no-tui``)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

from nacscope.analysis.labels import short_label
from nacscope.tui.screens.overview import LAYER_KEYS, cumulative_count, fmt
from nacscope.tui.session import Session


def layer_rows(session: Session, summary: dict[str, Any] | None) -> list[tuple[str, ...]]:
    """The rows of the overview's layer table (the same cells the TUI shows)."""
    summary = summary or {}
    layers, retrieval = summary.get("layers") or {}, summary.get("retrieval") or {}
    cumulative = summary.get("cumulative") or {}
    rows = []
    for info in session.layers:
        m, r = layers.get(info.name) or {}, retrieval.get(info.name) or {}
        n = m.get("n_samples") or session.n
        inc = m.get("samples_in_collisions")
        rows.append((
            info.name, info.kind, fmt(info.units), fmt(m.get("distinct_patterns")), fmt(cumulative_count(cumulative, info.name)),
            fmt(inc) + (f" ({inc / n:.1%})" if isinstance(inc, int) and n else ""),
            fmt(m.get("largest_group")), fmt(m.get("dead_bits")), fmt(m.get("stuck_bits")),
            fmt(m.get("bit_entropy"), ",.1f"), fmt(r.get("map"), ".4f") if r else "-",
        ))
    return rows


def summary_renderable(session: Session, summary: dict[str, Any] | None) -> Group:
    """Provenance, samples and the per-layer table, as rich renderables."""
    from nacscope.codes.render import provenance_table, samples_table

    from rich import box

    t = Table(title="layers", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for key in LAYER_KEYS:
        t.add_column(short_label(key), justify="left" if key in ("layer", "kind") else "right",
                     no_wrap=True)
    for row in layer_rows(session, summary):
        t.add_row(*row[:5], row[5].split(" (")[0], *row[6:])
    parts: list[Any] = [provenance_table(session.cs), samples_table(session.cs), t]
    for note in (summary or {}).get("notes") or []:
        parts.append(f"[dim]\u2022 {note}[/]")
    parts.append("[dim]open the TUI in a terminal: nacscope inspect FILE[/]")
    return Group(*parts)
