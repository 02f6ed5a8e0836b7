"""The layer table's cells (shared by the Overview screen and the text summary) and the one-screen text
summary ``nacscope inspect`` prints when there is no terminal (or ``--no-tui``)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

from nacscope.analysis.labels import short_label
from nacscope.tui.session import Session

#: The overview's layer columns (result keys; headers from :mod:`nacscope.analysis.labels`).
LAYER_KEYS = ("layer", "kind", "units", "distinct_patterns", "cumulative_distinct", "samples_in_collisions",
              "largest_group", "dead_bits", "stuck_bits", "bit_entropy", "map")
#: Which columns stay when the terminal is narrow (first = last to go).
LAYER_PRIORITY = ("layer", "distinct_patterns", "samples_in_collisions", "map", "largest_group", "stuck_bits",
                  "bit_entropy", "dead_bits", "cumulative_distinct", "kind", "units")
LAYER_COLUMNS = tuple(short_label(k) for k in LAYER_KEYS)


def fmt(value: Any, spec: str = ",") -> str:
    """A number formatted for a table cell; '…' while unknown."""
    if value is None:
        return "\u2026"
    if isinstance(value, float) and spec == ",":
        spec = ",.3f"
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def cumulative_distinct(cumulative: Any, name: str) -> Any:
    """The cumulative distinct count of a layer from the engine's ``cumulative`` section."""
    if isinstance(cumulative, dict):
        v = cumulative.get(name)
        return v.get("distinct_patterns") if isinstance(v, dict) else v
    if isinstance(cumulative, list):
        for item in cumulative:
            if isinstance(item, dict) and item.get("layer") == name:
                return item.get("distinct_patterns", item.get("distinct"))
    return None


def layer_cells(session: Session, summary: dict[str, Any] | None, *, percent: bool = True) -> list[dict[str, str]]:
    """One ``{key: cell}`` per layer of the overview's table (the same cells the TUI shows)."""
    has = bool(summary)
    summary = summary or {}
    layers, retrieval = summary.get("layers") or {}, summary.get("retrieval") or {}
    cumulative = summary.get("cumulative") or {}
    rows = []
    for info in session.layers:
        m, r = layers.get(info.name) or {}, retrieval.get(info.name) or {}
        n = m.get("n_samples") or session.n
        inc = m.get("samples_in_collisions")
        rows.append({
            "layer": info.name, "kind": info.kind, "units": fmt(info.units),
            "distinct_patterns": fmt(m.get("distinct_patterns")),
            "cumulative_distinct": fmt(cumulative_distinct(cumulative, info.name)),
            "samples_in_collisions": fmt(inc) + (f" ({inc / n:.1%})" if percent and isinstance(inc, int) and n else ""),
            "largest_group": fmt(m.get("largest_group")), "dead_bits": fmt(m.get("dead_bits")),
            "stuck_bits": fmt(m.get("stuck_bits")), "bit_entropy": fmt(m.get("bit_entropy"), ",.1f"),
            "map": fmt(r.get("map"), ".4f") if r else ("-" if has else "\u2026"),
        })
    return rows


def layer_rows(session: Session, summary: dict[str, Any] | None) -> list[tuple[str, ...]]:
    """The rows of the overview's layer table, all columns in ``LAYER_KEYS`` order."""
    return [tuple(c[k] for k in LAYER_KEYS) for c in layer_cells(session, summary)]


def summary_renderable(session: Session, summary: dict[str, Any] | None) -> Group:
    """Provenance, samples and the per-layer table, as rich renderables."""
    from rich import box

    from nacscope.codes.render import provenance_table, samples_table

    t = Table(title="layers", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for key in LAYER_KEYS:
        t.add_column(short_label(key), justify="left" if key in ("layer", "kind") else "right", no_wrap=True)
    for cells in layer_cells(session, summary, percent=False):
        cells["map"] = cells["map"] if cells["map"] != "\u2026" else "-"
        t.add_row(*(cells[k] for k in LAYER_KEYS))
    parts: list[Any] = [provenance_table(session.cs), samples_table(session.cs), t]
    for note in (summary or {}).get("notes") or []:
        parts.append(f"[dim]\u2022 {note}[/]")
    parts.append("[dim]open the TUI in a terminal: nacscope inspect FILE[/]")
    return Group(*parts)
