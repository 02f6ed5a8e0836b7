"""Projection: the UMAP scatter of a layer's codes, coloured by label, query/gallery, a collision group or
a bit; zoom, pan, select a point, export the selection."""

from __future__ import annotations

from typing import Any

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from nacscope.tui.screens.base import NacScreen
from nacscope.tui.session import Busy
from nacscope.tui.widgets import ImageView, Scatter
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
        Binding("c", "cycle_colour", "Colour by"),
        Binding("b", "choose_bit", "Colour by bit", show=False),
        Binding("x", "export", "Export selection"),
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
        self.colour_mode = ""  # one of colouring.MODES; the first the file allows
        self.bit = 0
        self.colours: Any = None  # the colouring.Colouring shown

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
        scatter = self.query_one(Scatter)
        scatter.selected = None
        scatter.set_points(xy)
        tw = info.get("trustworthiness")
        scatter.border_title = (f"UMAP of {layer}" + (f" \u00b7 trustworthiness {tw:.3f}" if tw is not None else "")
                                if xy is not None else f"{layer}: no projection stored")
        self._recolour()
        self.query_one("#pj-info", Static).update("")
        self.query_one("#pj-img", ImageView).set_image(None, caption="")  # no stale sample from another layer

    def on_screen_resume(self) -> None:
        if self.colour_mode == "group" and self.coords is not None:
            self._recolour()  # the group chosen on the Collisions screen may have changed

    def _highlighted_group(self) -> tuple[int, np.ndarray] | None:
        """The collision group selected on the Collisions screen (same layer), else the selected
        point's group, else the largest; None without collisions."""
        layer = self.code_layer
        rep = self.session.collisions(layer)
        if not rep.n_groups:
            return None
        col = self.nac.get_screen_for_mode("collisions") if self.nac._screen_stacks.get("collisions") else None
        gi = getattr(col, "group_index", None) if getattr(col, "report_layer", None) == layer else None
        sel = self.query_one(Scatter).selected
        if gi is None and sel is not None:
            hits = [i for i, g in enumerate(rep.groups) if sel in g]
            gi = hits[0] if hits else None
        gi = 0 if gi is None else int(gi)
        return gi, np.asarray(rep.groups[gi], dtype=np.int64)

    def _recolour(self) -> None:
        from nacscope.tui.screens.colouring import available, colouring

        modes = available(self.session)
        if self.colour_mode not in modes:
            self.colour_mode = modes[0]
        scatter = self.query_one(Scatter)
        group = self._highlighted_group() if self.colour_mode == "group" else None
        self.colours = c = colouring(self.session, self.code_layer, self.colour_mode, group=group, bit=self.bit)
        if self.colour_mode == "bit":
            self.bit = int(self.bit) % self.session.layer(self.code_layer).units
        scatter.set_colours(c.classes, c.palette)
        legend = c.legend()
        legend.append("\nc: colour by \u00b7 x: export the selection", style="dim")
        legend.append("\n+/- zoom \u00b7 arrows pan \u00b7 Enter select \u00b7 0 reset", style="dim")
        if self.coords is None:
            legend.append("\nno projection stored for this layer: press u to compute one (UMAP)", style="yellow")
        self.query_one("#pj-legend", Static).update(legend)

    def selection(self) -> tuple[np.ndarray, str]:
        """The rows ``x`` exports: the points in view of the highlighted group (colour by group), or of
        the selected point's colour (its label, role or bit value), or every point in view."""
        scatter, c = self.query_one(Scatter), self.colours
        rows = scatter.in_view()
        if c is None or c.classes is None:
            return rows, "points in view"
        if c.mode == "group":
            return rows[c.classes[rows] == 1], f"{c.names[1]} in view"
        if scatter.selected is not None:
            k = int(c.classes[scatter.selected])
            name = c.names[k] if 0 <= k < len(c.names) else str(k)
            return rows[c.classes[rows] == k], f"{name} points in view"
        return rows, "points in view"

    # -- actions ---------------------------------------------------------------------------------
    def action_cycle_colour(self) -> None:
        from nacscope.tui.screens.colouring import available

        modes = available(self.session)
        i = modes.index(self.colour_mode) if self.colour_mode in modes else -1
        self.colour_mode = modes[(i + 1) % len(modes)]
        self._recolour()

    def action_choose_bit(self) -> None:
        from nacscope.tui.screens.dialogs import AskDialog

        units = self.session.layer(self.code_layer).units

        def submit(text: str) -> str | None:
            if not text.isdigit() or not 0 <= int(text) < units:
                return f"a unit number from 0 to {units - 1}"
            self.bit, self.colour_mode = int(text), "bit"
            self._recolour()
            return None

        self.app.push_screen(AskDialog("Colour by bit", f"Unit of {self.code_layer} (0..{units - 1}):", submit,
                                       initial=str(self.bit)))

    def action_export(self) -> None:
        from nacscope.tui.screens.exporting import ask_export

        if self.coords is None:
            self.notify("no projection: nothing selected", severity="warning")
            return
        rows, what = self.selection()
        ask_export(self, rows, f"{what}, {self.code_layer}", f"{self.code_layer}.selection")

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
