"""Projection: the UMAP scatter of a layer's codes, coloured by label; zoom, pan, select a point."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from nacscope.tui.screens.base import NacScreen
from nacscope.tui.session import Busy
from nacscope.tui.widgets import ImageView, Scatter, label_hex
from nacscope.tui.widgets.codes import code_lines


class ProjectionScreen(NacScreen):
    """A braille scatter plot of the stored projection; select a point to see its sample."""

    TITLE_TEXT = "Projection"
    AUTO_FOCUS = "#pj-scatter"
    BINDINGS = [
        Binding("plus,equals_sign", "zoom(1.5)", "Zoom in"),
        Binding("minus", "zoom(0.6667)", "Zoom out"),
        Binding("left,h", "pan(-0.2, 0)", "Pan left", show=False),
        Binding("right,l", "pan(0.2, 0)", "Pan right", show=False),
        Binding("up,k", "pan(0, 0.2)", "Pan up", show=False),
        Binding("down,j", "pan(0, -0.2)", "Pan down", show=False),
        Binding("0", "reset", "Reset view"),
        Binding("enter,space", "select", "Select point"),
        Binding("n", "neighbours", "Neighbours"),
        Binding("u", "compute", "Compute UMAP"),
    ]

    def body(self) -> ComposeResult:
        with Horizontal(id="pj-main"):
            yield Scatter(id="pj-scatter")
            with Vertical(id="pj-side"):
                yield Static(id="pj-legend")
                yield ImageView(id="pj-img")
                yield Static(id="pj-info")

    def __init__(self) -> None:
        super().__init__()
        self.loaded_layer: tuple | None = None
        self.coords: np.ndarray | None = None

    def on_mount(self) -> None:
        self.query_one(Scatter).focus()

    def update_view(self) -> None:
        if self.loaded_layer == (self.code_layer, self.session.n):
            return
        self.loaded_layer = (self.code_layer, self.session.n)  # type: ignore[assignment]
        layer = self.code_layer
        self.nac.run_quick(lambda: self.session.projection(layer), lambda xy: self._got(layer, xy), group="projection")

    def _got(self, layer: str, stored: tuple[np.ndarray, dict[str, Any]] | None) -> None:
        if layer != self.code_layer:
            return
        xy, info = stored if stored is not None else (None, {})
        self.coords = xy
        s = self.session
        labels = s.labels if s.label_kind == "class" else None
        scatter = self.query_one(Scatter)
        scatter.selected = None
        scatter.set_points(xy, labels)
        tw = info.get("trustworthiness")
        scatter.border_title = (f"UMAP of {layer}" + (f" \u00b7 trustworthiness {tw:.3f}" if tw is not None else "")
                                if xy is not None else f"{layer}: no projection stored")
        legend = Text()
        if labels is not None:
            names = s.class_names or [str(i) for i in range(int(labels.max()) + 1 if len(labels) else 0)]
            for i, name in enumerate(names[:20]):
                legend.append("\u25a0 ", style=label_hex(i))
                legend.append(f"{name}  ")
        legend.append("\n+/- zoom \u00b7 arrows pan \u00b7 Enter select \u00b7 0 reset", style="dim")
        if xy is None:
            legend.append("\nno projection stored for this layer: press u to compute one (UMAP)", style="yellow")
        self.query_one("#pj-legend", Static).update(legend)
        self.query_one("#pj-info", Static).update("")
        self.query_one("#pj-img", ImageView).set_image(None, caption="")  # no stale sample from another layer

    # -- actions ---------------------------------------------------------------------------------
    def action_zoom(self, factor: float) -> None:
        self.query_one(Scatter).zoom(float(factor))

    def action_pan(self, dx: float, dy: float) -> None:
        self.query_one(Scatter).pan(float(dx), float(dy))

    def action_reset(self) -> None:
        self.query_one(Scatter).reset_view()

    def action_select(self) -> None:
        self.query_one(Scatter).select_at_center()

    def on_scatter_selected(self, event: Scatter.Selected) -> None:
        self.show_point(event.row)

    def show_point(self, row: int) -> None:
        s = self.session
        view = self.query_one("#pj-img", ImageView)
        view.plain = self.nac.plain_images
        try:
            view.set_image(s.thumbnail(row, wait=False), caption=f"row {row}: {s.label_text(row)}")
        except Busy:
            view.set_image(None, caption=f"row {row} (file busy)")
        layer = self.code_layer

        def compute() -> tuple[Any, Any]:
            return s.neighbours(layer, row, 5), s.bits_text(layer, row)

        def done(res: tuple[Any, Any]) -> None:
            (idx, dist), code = res
            width = (self.query_one("#pj-info", Static).size.width or 24) - 1
            lines = [f"[b]row {row}[/b] \u00b7 {s.label_text(row)}", "code:", code_lines(code, width),
                     "nearest (Hamming):"]
            lines += [f"  {int(r):>6} d={int(d):<4} {s.label_text(int(r))}" for r, d in zip(idx, dist)]
            lines.append("[dim]n: open in Neighbours[/]")
            self.query_one("#pj-info", Static).update("\n".join(lines))

        self.nac.run_quick(compute, done, group="projection-point")

    def action_neighbours(self) -> None:
        sel = self.query_one(Scatter).selected
        if sel is not None:
            self.nac.open_neighbours(sel)
        else:
            self.notify("select a point first (Enter)", severity="warning")

    def action_compute(self) -> None:
        layer = self.code_layer

        def done(result: tuple[np.ndarray, dict[str, Any]]) -> None:
            self.loaded_layer = (layer, self.session.n)  # type: ignore[assignment]
            self._got(layer, result)

        self.nac.start_job(f"UMAP of {layer}", lambda progress: self.session.compute_projection(layer, progress), done)
