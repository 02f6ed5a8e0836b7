"""Near-collision pairs of the current layer: pairs within Hamming radius r, nearest first, paged."""

from __future__ import annotations

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

PAGE = 100


class NearPairsScreen(ModalScreen):
    """Pairs (i, j, distance) from ``collisions.near_collision_pairs``; +/- change r, PgDn/PgUp page."""

    BINDINGS = [Binding("plus,equals_sign", "radius(1)", "r+1"), Binding("minus", "radius(-1)", "r-1"),
                Binding("right,pagedown", "page(1)", "Next page"), Binding("left,pageup", "page(-1)", "Prev page"),
                Binding("escape,q", "dismiss", "Close")]

    def __init__(self, layer: str, radius: int = 1) -> None:
        super().__init__()
        self.layer_name, self.radius, self.page = layer, radius, 0
        self.pairs: np.ndarray | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="near-box"):
            yield Static(id="near-title")
            yield DataTable(id="near-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        t = self.query_one("#near-table", DataTable)
        for key, head in (("i", "row i"), ("j", "row j"), ("d", "distance"), ("li", "label i"), ("lj", "label j")):
            t.add_column(head, key=key)
        self._compute()

    def _compute(self) -> None:
        self.pairs = None
        self.query_one("#near-title", Static).update(f"Pairs within radius {self.radius} in {self.layer_name}: computing\u2026")
        session, layer, radius = self.app.session, self.layer_name, self.radius  # type: ignore[attr-defined]

        def work() -> None:
            pairs = session.near_pairs(layer, radius)
            self.app.call_from_thread(self._got, radius, pairs)

        self.run_worker(work, thread=True, exclusive=True)

    def _got(self, radius: int, pairs: np.ndarray) -> None:
        if radius == self.radius:
            self.pairs, self.page = pairs, 0
            self._fill()

    def _fill(self) -> None:
        pairs = self.pairs
        if pairs is None:
            return
        pages = max(1, -(-len(pairs) // PAGE))
        self.page = min(max(0, self.page), pages - 1)
        self.query_one("#near-title", Static).update(
            f"{len(pairs):,} pairs within Hamming radius {self.radius} in {self.layer_name}, nearest first "
            f"\u2014 page {self.page + 1} of {pages} (+/-: radius, \u2190\u2192: page)")
        t = self.query_one("#near-table", DataTable)
        t.clear()
        s = self.app.session  # type: ignore[attr-defined]
        for i, j, d in pairs[self.page * PAGE : (self.page + 1) * PAGE]:
            t.add_row(str(i), str(j), str(d), s.label_text(int(i)), s.label_text(int(j)))

    def action_radius(self, step: int) -> None:
        units = self.app.session.layer(self.layer_name).units  # type: ignore[attr-defined]
        r = min(max(0, self.radius + step), units)
        if r != self.radius:
            self.radius = r
            self._compute()

    def action_page(self, step: int) -> None:
        self.page += step
        self._fill()

    def action_dismiss(self) -> None:
        self.dismiss()
