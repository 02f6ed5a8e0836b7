"""Collisions: groups of samples with identical codes, their members and images; near-collisions."""

from __future__ import annotations

from typing import Any

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from nacscope.tui.screens.base import NacScreen
from nacscope.tui.screens.overview import fmt
from nacscope.tui.session import Busy
from nacscope.tui.widgets import ImageView

SORTS = ("size", "purity", "mixed")
GALLERY = 4  # member thumbnails shown side by side
PAGE = 500  # collision groups added to the table at a time


class CollisionsScreen(NacScreen):
    """A sortable table of collision groups; the selected group's members, labels and images."""

    TITLE_TEXT = "Collisions"
    AUTO_FOCUS = "#col-groups"
    BINDINGS = [
        Binding("o", "cycle_sort", "Sort"),
        Binding("r", "near", "Near (r=1,2)"),
        Binding("P", "near_pairs", "Near pairs"),
        Binding("x", "export", "Export group"),
        Binding("tab", "app.focus_next", "Next pane", show=False),
        Binding("n", "neighbours", "Neighbours of member"),
    ]

    def body(self) -> ComposeResult:
        with Horizontal(id="col-main"):
            yield DataTable(id="col-groups", cursor_type="row", zebra_stripes=True)
            with Vertical(id="col-side"):
                yield DataTable(id="col-members", cursor_type="row", zebra_stripes=True)
                with Horizontal(id="col-gallery"):
                    for i in range(GALLERY):
                        yield ImageView(id=f"col-img-{i}", classes="thumb")
        yield Static(id="col-info")

    def __init__(self) -> None:
        super().__init__()
        self.sort_key = "size"
        self.report: Any = None
        self.report_layer: str | None = None
        self.near: dict[int, Any] = {}
        self.group_index: int | None = None
        self._sorted = np.empty(0, dtype=np.int64)
        self._filled = 0

    def on_mount(self) -> None:
        g = self.query_one("#col-groups", DataTable)
        for key, label, width in (("group", "group", 6), ("size", "size", 6), ("purity", "purity", 6),
                                  ("mixed", "mixed", 5), ("rows", "first rows", 24)):
            g.add_column(label, key=key, width=width)
        m = self.query_one("#col-members", DataTable)
        m.add_column("row", width=7)
        m.add_column("label", width=16)
        m.border_title = "members (Enter)"
        g.focus()

    # -- data --------------------------------------------------------------------------------------
    def update_view(self) -> None:
        if self.report_layer != self.code_layer:
            self.report, self.report_layer, self.near = None, self.code_layer, {}
            layer = self.code_layer
            self.query_one("#col-groups", DataTable).clear()
            self.query_one("#col-groups", DataTable).border_title = f"collision groups: computing for {layer}\u2026"
            self.nac.run_quick(lambda: self.session.collisions(layer), lambda rep: self._got(layer, rep),
                               group="collisions")
        self._info()

    def _got(self, layer: str, report: Any) -> None:
        if layer != self.code_layer:
            return
        self.report = report
        self._fill_groups()
        self._info()

    def _order(self) -> np.ndarray:
        rep = self.report
        n = rep.n_groups
        if self.sort_key == "purity" and rep.purity is not None:
            return np.lexsort((np.arange(n), -rep.sizes, rep.purity))  # least pure first
        if self.sort_key == "mixed" and rep.mixed is not None:
            return np.lexsort((np.arange(n), -rep.sizes, ~rep.mixed))  # mixed groups first
        return np.arange(n)  # the engine's order: largest first

    def _fill_groups(self) -> None:
        """Show the groups in the current order, one page at a time (more as the cursor nears the end).

        Filling a DataTable costs about 0.2 ms a row on the UI thread (20,000 rows: 3.7 s), so a file
        with many groups is paged instead of loaded whole.
        """
        rep, table = self.report, self.query_one("#col-groups", DataTable)
        table.clear()
        self._sorted = np.empty(0, dtype=np.int64) if rep is None else self._order()
        self._filled = 0
        if rep is None:
            return
        self._fill_more()
        if self._filled:
            table.move_cursor(row=0, animate=False)
            self._show_group(int(self._sorted[0]))
        else:
            self._show_group(None)

    def _fill_more(self) -> None:
        rep, table = self.report, self.query_one("#col-groups", DataTable)
        stop = min(len(self._sorted), self._filled + PAGE)
        rows = []
        for gi in self._sorted[self._filled : stop]:
            members = rep.groups[gi]
            first = ", ".join(str(int(r)) for r in members[:4]) + (" \u2026" if len(members) > 4 else "")
            rows.append((
                str(int(gi)), int(rep.sizes[gi]),
                "-" if rep.purity is None else f"{rep.purity[gi]:.2f}",
                "-" if rep.mixed is None else ("mixed" if rep.mixed[gi] else "pure"),
                first,
            ))
        table.add_rows(rows)
        self._filled = stop
        shown = "" if stop == len(self._sorted) else f", first {stop:,} shown"
        table.border_title = f"{rep.n_groups:,} groups \u00b7 by {self.sort_key}{shown}"  # o sorts: in the key bar

    def _show_group(self, gi: int | None) -> None:
        self.group_index = gi
        m = self.query_one("#col-members", DataTable)
        m.clear()
        members = [] if gi is None or self.report is None else [int(r) for r in self.report.groups[gi]]
        for r in members:
            m.add_row(str(r), self.session.label_text(r), key=str(r))
        for i in range(GALLERY):
            view = self.query_one(f"#col-img-{i}", ImageView)
            view.plain = self.nac.plain_images
            if i < len(members):
                self._draw(view, members[i])
            else:
                view.set_image(None, caption="")
        self._info()

    def _draw(self, view: ImageView, row: int) -> None:
        try:
            view.set_image(self.session.thumbnail(row, wait=False), caption=f"{row}: {self.session.label_text(row)}")
        except Busy:
            view.set_image(None, caption=f"{row} (file busy)")
            self.set_timer(0.5, lambda: self._draw(view, row))

    def _info(self) -> None:
        m = (self.summary or {}).get("layers", {}).get(self.code_layer) or {}
        parts = []
        if m:
            parts.append(
                f"groups {fmt(m.get('collision_groups'))} \u00b7 samples in them {fmt(m.get('samples_in_collisions'))}"
                f" \u00b7 largest {fmt(m.get('largest_group'))} \u00b7 mixed-label groups {fmt(m.get('mixed_label_groups'))}"
            )
        if self.near:
            for r, v in sorted(self.near.items()):
                parts.append(f"radius {r}: {fmt(v.get('pairs'))} pairs, {fmt(v.get('samples'))} samples (exact)")
        elif m.get("near_collisions"):
            est = " (est.)" if m.get("nn_rows", 0) < m.get("n_samples", 0) else ""
            for r, v in sorted(m["near_collisions"].items()):
                parts.append(f"radius {r}: {fmt(v.get('pairs'))} pairs, {fmt(v.get('samples'))} samples{est}")
            if est:
                parts.append("[dim]r: exact near-collisions[/]")
        else:
            parts.append("[dim]r: near-collisions within Hamming radius 1 and 2[/]")
        self.query_one("#col-info", Static).update("  \u2502  ".join(parts))

    # -- events and actions -----------------------------------------------------------------------
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "col-groups" and self.report is not None:
            row = event.data_table.get_row_at(event.cursor_row) if event.cursor_row >= 0 else None
            if row:
                self._show_group(int(row[0]))
            if event.cursor_row >= self._filled - PAGE // 10 and self._filled < len(self._sorted):
                self._fill_more()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "col-groups":
            self.query_one("#col-members", DataTable).focus()
        elif event.data_table.id == "col-members" and event.row_key.value is not None:
            self.nac.open_neighbours(int(event.row_key.value))

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = event.column_key.value
        if key in SORTS:
            self.sort_key = key
            self._fill_groups()

    def action_cycle_sort(self) -> None:
        self.sort_key = SORTS[(SORTS.index(self.sort_key) + 1) % len(SORTS)]
        self._fill_groups()

    def action_neighbours(self) -> None:
        m = self.query_one("#col-members", DataTable)
        if m.row_count:
            self.nac.open_neighbours(int(m.get_row_at(max(0, m.cursor_row))[0]))

    def action_near_pairs(self) -> None:
        from nacscope.tui.screens.near_pairs import NearPairsScreen

        self.app.push_screen(NearPairsScreen(self.code_layer))

    def action_export(self) -> None:
        from nacscope.tui.screens.exporting import ask_export

        if self.report is None or self.group_index is None:
            self.notify("no collision group selected", severity="warning")
            return
        gi = int(self.group_index)
        ask_export(self, self.report.groups[gi], f"collision group {gi} of {self.code_layer}",
                   f"{self.code_layer}.group{gi}")

    def action_near(self) -> None:
        layer = self.code_layer

        def work(progress):
            return {r: self.session.near_collisions(layer, r, progress) for r in (1, 2)}

        def done(result: dict) -> None:
            if layer == self.code_layer:
                self.near = result
                self._info()

        self.nac.start_job(f"near-collisions in {layer}", work, done)
