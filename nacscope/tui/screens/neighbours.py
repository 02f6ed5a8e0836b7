"""Neighbours: a query's nearest samples by Hamming distance, their labels, relevance and images."""

from __future__ import annotations

from typing import Any

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Static

from nacscope.tui.screens.base import NacScreen
from nacscope.tui.session import Busy
from nacscope.tui.widgets import ImageView
from nacscope.tui.widgets.codes import code_lines

K_CHOICES = (10, 20, 50, 100)


class NeighboursScreen(NacScreen):
    """Pick a query; browse its top-k neighbours; Enter jumps to a neighbour's own neighbours."""

    TITLE_TEXT = "Neighbours"
    AUTO_FOCUS = "#nb-table"
    BINDINGS = [
        Binding("slash", "focus_query", "Query\u2026"),
        Binding("backspace", "back", "Back"),
        Binding("n", "next_same_class", "Next of class"),
        Binding("plus,equals_sign", "step(1)", "Next row", show=False),
        Binding("minus", "step(-1)", "Prev row", show=False),
        Binding("k", "cycle_k", "Top-k"),
    ]

    def body(self) -> ComposeResult:
        with Horizontal(id="nb-top"):
            with Vertical(id="nb-query-box"):
                yield Input(placeholder="query: a row number, or 'class 3' / a class name; Enter", id="nb-input")
                yield Static(id="nb-query")
            yield ImageView(id="nb-query-img")
        with Horizontal(id="nb-main"):
            yield DataTable(id="nb-table", cursor_type="row", zebra_stripes=True)
            with Vertical(id="nb-side"):
                yield ImageView(id="nb-img")
                yield Static(id="nb-code")

    def __init__(self) -> None:
        super().__init__()
        self.query_row: int | None = None
        self.history: list[int] = []
        self.k = 20
        self.result: tuple[np.ndarray, np.ndarray] | None = None
        self.ap: dict[str, Any] | None = None
        self._shown: tuple | None = None

    def on_mount(self) -> None:
        t = self.query_one("#nb-table", DataTable)
        # Fixed widths: the table keeps its layout while queries change (and in snapshots).
        for name, width in (("rank", 4), ("row", 7), ("hamming", 7), ("label", 14), ("relevant", 8)):
            t.add_column(name, width=width)
        # Focus now, as the other screens do: focusing on the first visit instead (auto focus) clears
        # the table's render cache and draws it twice in that visit (~40 ms of a 100 ms budget).
        t.focus()
        if self.query_row is None and self.session.n:
            self.set_query(self._default_query(), push=False)

    def _default_query(self) -> int:
        qm = self.session.query_mask
        return int(np.flatnonzero(qm)[0]) if qm is not None and qm.any() else 0

    # -- query ----------------------------------------------------------------------------------------
    def set_query(self, row: int, push: bool = True) -> None:
        """Make ``row`` the query (``push`` keeps the previous one in the history for Back)."""
        if not 0 <= row < self.session.n:
            self.notify(f"row {row} is out of range 0..{self.session.n - 1}", severity="warning")
            return
        if push and self.query_row is not None and self.query_row != row:
            self.history.append(self.query_row)
        self.query_row = int(row)
        self._shown = None
        if self.is_mounted:
            self.update_view()

    def update_view(self) -> None:
        if self.query_row is None:
            return
        key = (self.code_layer, self.query_row, self.k, self.session.n)
        if key == self._shown:
            return
        self._shown = key
        layer, row, k = key[:3]
        self._draw_query(None)

        def compute():
            idx, dist = self.session.neighbours(layer, row, k)
            rel = self.session.relevant(row, idx)
            ap = self.session.query_ap(layer, row)
            return idx, dist, rel, ap

        self.nac.run_quick(compute, lambda res: self._got(key, res), group="neighbours")

    def _got(self, key: tuple, res: tuple) -> None:
        if key != self._shown:
            return
        idx, dist, rel, ap = res
        self.result, self.ap = (idx, dist), ap
        t = self.query_one("#nb-table", DataTable)
        t.clear()
        t.add_rows([
            (str(i + 1), str(int(r)), str(int(d)), self.session.label_text(int(r)),
             "-" if rel is None else ("\u2713" if rel[i] else "\u2717"))
            for i, (r, d) in enumerate(zip(idx, dist))
        ])
        t.border_title = f"top {len(idx)} by Hamming in {self.code_layer} (ties by row)"  # Enter on a row jumps to it
        self._draw_query(ap)
        if len(idx):
            t.move_cursor(row=0, animate=False)
            self._draw_neighbour(int(idx[0]))

    def _draw_query(self, ap: dict[str, Any] | None) -> None:
        s, row = self.session, self.query_row
        assert row is not None
        lines = [f"[b]query row {row}[/b] \u00b7 label [b]{s.label_text(row)}[/b]"]
        if s.query_mask is not None:
            lines[0] += " \u00b7 " + ("query" if s.query_mask[row] else "gallery")
        if ap is not None:
            lines.append(f"AP {ap['ap']:.4f} \u00b7 AP@{ap['R']} {ap['ap_at_r']:.4f} \u00b7 tie-aware AP "
                         f"{ap['tie_aware_ap']:.4f}")
            lines.append(f"[dim]{ap['n_relevant']:,} relevant among {ap['n_gallery']:,} ({ap['gallery']})[/]")
        elif s.labels is None:
            lines.append("[dim]no labels: no AP[/]")
        else:
            lines.append("[dim]computing\u2026[/]")
        if self.history:
            trail = " \u2192 ".join(str(h) for h in self.history[-6:])
            lines.append(f"[dim]history: {trail} (Backspace: back)[/]")
        self.query_one("#nb-query", Static).update("\n".join(lines))
        self._draw_image("#nb-query-img", row)

    def _draw_image(self, selector: str, row: int) -> None:
        view = self.query_one(selector, ImageView)
        view.plain = self.nac.plain_images
        try:
            view.set_image(self.session.thumbnail(row, wait=False), caption=f"{row}: {self.session.label_text(row)}")
        except Busy:
            view.set_image(None, caption=f"{row} (file busy)")
            self.set_timer(0.5, lambda: self._draw_image(selector, row))

    def _draw_neighbour(self, row: int) -> None:
        self._draw_image("#nb-img", row)
        units = self.session.layer(self.code_layer).units
        box = self.query_one("#nb-code", Static)
        code = self.session.bits_text(self.code_layer, row) if units <= 512 else ""
        text = code_lines(code, (box.size.width or 30) - 2) if code else ""
        box.update(f"code of row {row} ({units} bits):\n{text}" if code else f"code: {units} bits")

    # -- events and actions ------------------------------------------------------------------------------
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.result is not None and 0 <= event.cursor_row < len(self.result[0]):
            self._draw_neighbour(int(self.result[0][event.cursor_row]))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if self.result is not None and 0 <= event.cursor_row < len(self.result[0]):
            self.set_query(int(self.result[0][event.cursor_row]))
            self.query_one("#nb-table", DataTable).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        row = self._parse(event.value.strip())
        event.input.value = ""  # the box shows the placeholder again, not the last query typed
        if row is not None:
            self.set_query(row)
            self.query_one("#nb-table", DataTable).focus()

    def _parse(self, text: str) -> int | None:
        s = self.session
        if text.lstrip("-").isdigit():
            return int(text)
        name = text[6:].strip() if text.lower().startswith("class ") else text
        names = s.class_names or []
        if s.labels is None or s.label_kind != "class":
            self.notify("this file has no class labels: type a row number", severity="warning")
            return None
        label = names.index(name) if name in names else int(name) if name.lstrip("-").isdigit() else None
        rows = np.flatnonzero(s.labels == label) if label is not None else np.empty(0, dtype=np.int64)
        if not len(rows):
            self.notify(f"no sample of class {name!r}", severity="warning")
            return None
        qm = s.query_mask
        if qm is not None and qm[rows].any():
            rows = rows[qm[rows]]
        return int(rows[0])

    def action_focus_query(self) -> None:
        self.query_one("#nb-input", Input).focus()

    def action_back(self) -> None:
        if self.history:
            self.set_query(self.history.pop(), push=False)

    def action_step(self, step: int) -> None:
        if self.query_row is not None:
            self.set_query((self.query_row + step) % self.session.n)

    def action_next_same_class(self) -> None:
        s, row = self.session, self.query_row
        if row is None or s.labels is None or s.label_kind != "class":
            return
        same = np.flatnonzero(s.labels == s.labels[row])
        later = same[same > row]
        self.set_query(int(later[0] if len(later) else same[0]))

    def action_cycle_k(self) -> None:
        self.k = K_CHOICES[(K_CHOICES.index(self.k) + 1) % len(K_CHOICES)] if self.k in K_CHOICES else 20
        self.update_view()
