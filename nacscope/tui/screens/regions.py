"""Regions: distinct activation patterns per layer and cumulatively, segment walks, plane partitions."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Static

from nacscope.tui.screens.base import NacScreen
from nacscope.tui.summary import cumulative_distinct, fmt
from nacscope.tui.widgets import BarChart, ImageView


class RegionsScreen(NacScreen):
    """Region counts (table and bars); segment walks and plane partitions computed on request."""

    TITLE_TEXT = "Regions"
    AUTO_FOCUS = "#rg-table"
    BINDINGS = [
        Binding("s", "segment", "Segment walk"),
        Binding("p", "plane", "Plane"),
        Binding("slash", "focus_rows", "Rows\u2026"),
    ]

    def body(self) -> ComposeResult:
        with Horizontal(id="rg-top"):
            yield DataTable(id="rg-table", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="rg-bars"):
                yield BarChart("distinct patterns per layer", color="cyan", id="rg-bar-layer")
                yield BarChart("cumulative (joint pattern up to the layer)", color="magenta", id="rg-bar-cum")
                yield BarChart("region sizes (current layer): regions per size", color="green", id="rg-bar-hist")
        with Horizontal(id="rg-bottom"):
            with Vertical(id="rg-walk"):
                yield Input(placeholder="rows: 'a b' for a segment, 'a b c' for a plane; then s / p", id="rg-rows")
                yield Static(id="rg-result")
            yield ImageView(id="rg-plane", caption="")

    def __init__(self) -> None:
        super().__init__()
        self.segment_result: Any = None
        self.plane_result: Any = None
        self.plane_running: list[int] | None = None  # the rows of the plane being partitioned
        self.plane_line: tuple[list[int], str] | None = None  # a plane's one progress (or outcome) line

    def on_mount(self) -> None:
        t = self.query_one("#rg-table", DataTable)
        t.add_columns("layer", "units", "distinct", "shared", "largest", "cumulative", "cum. shared")
        t.border_title = "Distinct patterns of the samples"
        self.watch(self.app, "job", self._on_job, init=False)

    def update_view(self) -> None:
        s, summary = self.session, self.summary or {}
        layers, cumulative = summary.get("layers") or {}, summary.get("cumulative") or {}
        t = self.query_one("#rg-table", DataTable)
        t.clear()
        per_layer, cum_bars = [], []
        for info in s.layers:
            m = layers.get(info.name) or {}
            c = cumulative.get(info.name) if isinstance(cumulative, dict) else None
            c = c if isinstance(c, dict) else {}
            t.add_row(info.name, fmt(info.units), fmt(m.get("distinct_patterns")),
                      fmt(m.get("regions_with_multiple_samples")), fmt(m.get("largest_region", m.get("largest_group"))),
                      fmt(cumulative_distinct(cumulative, info.name)), fmt(c.get("regions_with_multiple_samples")), key=info.name)
            if m.get("distinct_patterns") is not None:
                per_layer.append((info.name, float(m["distinct_patterns"])))
            if cumulative_distinct(cumulative, info.name) is not None:
                cum_bars.append((info.name, float(cumulative_distinct(cumulative, info.name))))
        if self.code_layer in s.layer_names:
            t.move_cursor(row=s.layer_names.index(self.code_layer), animate=False)
        self.query_one("#rg-bar-layer", BarChart).set_data(per_layer)
        self.query_one("#rg-bar-cum", BarChart).set_data(cum_bars)
        hist = (layers.get(self.code_layer) or {}).get("size_histogram") or {}
        items = sorted(((int(k), float(v)) for k, v in hist.items()), key=lambda kv: kv[0])
        if len(items) > 12:  # the sizes that matter: the smallest ones and the largest ones
            items = items[:8] + items[-4:]
        self.query_one("#rg-bar-hist", BarChart).set_data([(f"size {k}", v) for k, v in items])
        self._show_results()

    # -- segment walks and planes (need the checkpoint the file came from) ---------------------------
    def _rows(self, n: int) -> list[int] | None:
        text = self.query_one("#rg-rows", Input).value.replace(",", " ").split()
        try:
            rows = [int(v) for v in text]
        except ValueError:
            rows = []
        if len(rows) != n or not all(0 <= r < self.session.n for r in rows):
            self.notify(f"type {n} sample rows (0..{self.session.n - 1}) in the rows box first", severity="warning")
            self.query_one("#rg-rows", Input).focus()
            return None
        return rows

    def action_focus_rows(self) -> None:
        self.query_one("#rg-rows", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        n = len(event.value.replace(",", " ").split())
        if n == 2:
            self.action_segment()
        elif n == 3:
            self.action_plane()

    def action_segment(self) -> None:
        rows = self._rows(2)
        if rows is None:
            return

        def done(result: Any) -> None:
            self.segment_result = (rows, result)
            self._show_results()

        self.nac.start_job(f"segment walk {rows[0]}\u2192{rows[1]}",
                           lambda progress: self.session.segment(self.code_layer, rows[0], rows[1], progress), done)

    def action_plane(self) -> None:
        rows = self._rows(3)
        if rows is None:
            return

        def done(result: Any) -> None:
            self.plane_result = (rows, result)
            self.plane_running, self.plane_line = None, None
            self._show_results()

        res = self.plane_resolution()
        started = self.nac.start_job(
            f"plane through {rows}",
            lambda progress: self.session.plane(self.code_layer, *rows, progress=progress, resolution=res), done)
        if started:
            self.plane_running, self.plane_line = rows, (rows, "starting\u2026 (Esc cancels)")
            self._show_results()

    def plane_resolution(self) -> int:
        """Raster side for the plane picture: one half-block pixel per cell half of the picture widget."""
        view = self.query_one("#rg-plane", ImageView)
        cols, rows = view.size.width, view.size.height - 1  # a line for the caption
        return max(8, min(cols, 2 * rows))

    def _on_job(self, state: Any) -> None:
        """Keeps the running plane's one line up to date; a plane job that ended without a result says why."""
        rows = self.plane_running
        if rows is None:
            return
        if state.running and state.title == f"plane through {rows}":
            stage = state.message.removeprefix("exact plane: ")
            count = f" \u00b7 {state.done:,}/{state.total:,} polygons" if state.total else ""
            self.plane_line = (rows, f"{stage or 'starting'}{count} (Esc cancels)")
        elif not state.running and state.last.startswith(f"plane through {rows}"):
            outcome = state.last.removeprefix(f"plane through {rows}").lstrip(": ")
            if not outcome.startswith("cancelling"):  # the job has ended (cancelled or failed)
                self.plane_running = None
            self.plane_line = (rows, outcome)
        else:
            return
        self._show_results()

    def _show_results(self) -> None:
        lines = []
        if self.segment_result is not None:
            rows, r = self.segment_result
            lines.append(f"[b]segment {rows[0]} \u2192 {rows[1]}[/b]: {describe(r)}")
        if self.plane_line is not None:
            lines.append(f"[b]plane through {self.plane_line[0]}[/b]: {escape(self.plane_line[1])}")
        if self.plane_result is not None:
            rows, r = self.plane_result
            lines.append(f"[b]plane through {rows}[/b]: {describe(r)}")
            if isinstance(r, dict) and r.get("image") is not None:
                self.query_one("#rg-plane", ImageView).set_image(
                    r["image"], caption=f"plane through {rows[0]}, {rows[1]}, {rows[2]} (anchors red)")
        if not lines:
            lines.append("[dim]Segment walk: regions crossed between two samples (exact, using the network's "
                         "local linearity). Plane: regions cut by the plane through three samples. Both count "
                         "the regions of every ReLU up to the current layer (the code layer adds the code's "
                         "sign) and load the checkpoint the file was dumped from.[/]")
        self.query_one("#rg-result", Static).update("\n".join(lines))


def _get(obj: Any, *names: str) -> Any:
    for n in names:
        if isinstance(obj, dict) and n in obj:
            return obj[n]
        if hasattr(obj, n):
            return getattr(obj, n)
    return None


def describe(result: Any) -> str:
    """One line for a segment or plane result: its scalar fields, as the engine named them."""
    if result is None:
        return "-"
    if isinstance(result, (int, float, np.integer)):
        return f"{result:,}"
    items = result.items() if isinstance(result, dict) else (
        (k, getattr(result, k)) for k in getattr(result, "__dataclass_fields__", {}))
    parts = [f"{k.replace('_', ' ')} {fmt(v)}" for k, v in items
             if isinstance(v, (int, float, str, np.integer, np.floating)) and not isinstance(v, bool)]
    return ", ".join(parts) or str(result)[:200]
