"""Overview: provenance, samples and labels, and every layer's headline numbers at a glance."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Static

from nacscope.analysis.labels import label
from nacscope.tui.screens.base import NacScreen
from nacscope.tui.summary import LAYER_KEYS, LAYER_PRIORITY, fmt, layer_cells
from nacscope.tui.widgets.columns import fit_columns



class OverviewScreen(NacScreen):
    """Provenance, samples, and a table of layers (Enter on a row makes it the current layer)."""

    TITLE_TEXT = "Overview"
    AUTO_FOCUS = "#ov-layers"
    BINDINGS = [Binding("enter", "choose_layer", "Use layer", show=False)]

    def body(self) -> ComposeResult:
        with VerticalScroll(id="ov-body"):
            with Horizontal(id="ov-top"):
                yield Static(id="ov-provenance")
                yield Static(id="ov-samples")
            yield DataTable(id="ov-layers", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="ov-details"):
                yield Static(id="ov-layer-detail")
                yield Static(id="ov-retrieval-detail")
            yield Static(id="ov-notes")

    def on_mount(self) -> None:
        table = self.query_one("#ov-layers", DataTable)
        table.border_title = "Layers (Enter: use; ←→ scroll)"
        self._columns: list[tuple[str, str]] = []
        table.focus()

    def on_resize(self) -> None:
        if getattr(self, "_columns", None) is not None and self.code_layer:
            self._fill_layers()

    def _fill_layers(self) -> None:
        """The layer table, with the columns that fit the screen (see :func:`fit_columns`)."""
        table = self.query_one("#ov-layers", DataTable)
        cells = layer_cells(self.session, self.summary)
        width = max(20, (self.size.width or 80) - 4)  # the table's border and scrollbar
        # below 110 columns the two detail tables go one above the other (side by side they cut numbers)
        self.query_one("#ov-details").set_class(0 < (self.size.width or 80) < 110, "-narrow")
        cols = fit_columns(cells, LAYER_KEYS, LAYER_PRIORITY, width)
        if cols != self._columns:
            table.clear(columns=True)
            for key, header in cols:
                table.add_column(header, key=key)
            self._columns = cols
        else:
            table.clear()
        for c, info in zip(cells, self.session.layers):
            table.add_row(*(c[k] for k, _ in cols), key=info.name)
        names = self.session.layer_names
        if self.code_layer in names:
            table.move_cursor(row=names.index(self.code_layer), animate=False)

    def update_view(self) -> None:
        self.query_one("#ov-provenance", Static).update(self._provenance())
        self.query_one("#ov-samples", Static).update(self._samples())
        self._fill_layers()
        summary = self.summary or {}
        layers = summary.get("layers") or {}
        retrieval = summary.get("retrieval") or {}
        self.query_one("#ov-layer-detail", Static).update(self._layer_detail(layers.get(self.code_layer)))
        self.query_one("#ov-retrieval-detail", Static).update(self._retrieval_detail(retrieval.get(self.code_layer)))
        notes = list(summary.get("notes") or [])
        self.query_one("#ov-notes", Static).update(
            ("\n".join(f"\u2022 {n}" for n in notes) if notes else "")
            or ("" if summary else "[dim]analyses pending: numbers appear when the analysis job finishes[/]")
        )

    def _layer_detail(self, m: dict[str, Any] | None) -> Table | str:
        if not m:
            return ""
        t = Table(show_header=False, box=None, pad_edge=False, title=f"Layer {self.code_layer}", title_justify="left")
        t.add_column(style="bold cyan", no_wrap=True)
        t.add_column()
        nn = m.get("nn_distance") or {}
        near = m.get("near_collisions") or {}
        t.add_row("patterns", f"{fmt(m.get('distinct_patterns'))} distinct, {fmt(m.get('regions_with_multiple_samples'))}"
                             f" hold >1 sample ({fmt(m.get('fraction_regions_multiple'), '.1%')})")
        t.add_row("collisions", f"{fmt(m.get('collision_groups'))} groups, {fmt(m.get('mixed_label_groups'))} mixed-label")
        t.add_row("near (r=1, 2)", ", ".join(f"{fmt((near.get(r) or {}).get('samples'))}" for r in ("1", "2"))
                  + " samples")
        t.add_row("NN distance", f"mean {fmt(nn.get('mean'), '.2f')}, median {fmt(nn.get('median'), '.1f')}, "
                                 f"min {fmt(nn.get('min'))}, max {fmt(nn.get('max'))}")
        t.add_row("bits", f"mean rate {fmt(m.get('mean_rate'), '.3f')}, effective {fmt(m.get('effective_bits'), '.1f')}"
                          f", |corr| {fmt(m.get('mean_abs_correlation'), '.3f')}")
        return t

    def _retrieval_detail(self, r: dict[str, Any] | None) -> Table | str:
        if not r:
            return ""
        t = Table(show_header=False, box=None, pad_edge=False, title=f"Retrieval ({r.get('split')}, {r.get('rank')})",
                  title_justify="left")
        t.add_column(style="bold cyan", no_wrap=True)
        t.add_column()
        for k, v in r.items():
            if k in ("rank", "split", "notes") or v is None or isinstance(v, (dict, list)):  # None: not applicable
                continue
            t.add_row(label(k), fmt(v, ".1f" if k == "mean_relevant" else ".4f") if isinstance(v, float) else fmt(v))
        return t

    def _provenance(self) -> Table:
        s, a = self.session, self.session.attrs
        t = Table(show_header=False, box=None, pad_edge=False, title="Provenance", title_justify="left")
        t.add_column(style="bold cyan", no_wrap=True)
        t.add_column(overflow="fold")
        status = "complete" if s.complete else f"[yellow]being written: {s.n:,} rows so far[/]"
        for k, v in (
            ("file", str(s.path)),
            ("status", status),
            ("checkpoint", a.get("checkpoint")),
            ("dataset", a.get("dataset")),
            ("split", a.get("split")),
            ("command", a.get("command")),
            ("created", a.get("created")),
        ):
            if v not in (None, ""):
                t.add_row(k, str(v))
        return t

    def _samples(self) -> Table:
        s = self.session
        t = Table(show_header=False, box=None, pad_edge=False, title="Samples", title_justify="left")
        t.add_column(style="bold cyan", no_wrap=True)
        t.add_column(overflow="fold")
        t.add_row("samples", f"{s.n:,}")
        if s.labels is None:
            t.add_row("labels", "none (retrieval metrics need labels)")
        elif s.label_kind == "multihot":
            t.add_row("labels", f"multi-hot, {s.labels.shape[1]} labels")
        else:
            names = s.class_names
            k = len(names) if names else int(s.labels.max()) + 1 if len(s.labels) else 0
            shown = ", ".join(names[:10]) + (" \u2026" if len(names) > 10 else "") if names else ""
            t.add_row("labels", f"{k} classes" + (f": {shown}" if shown else ""))
        if s.query_mask is not None:
            t.add_row("split", f"{int(s.query_mask.sum()):,} queries / {int((~s.query_mask).sum()):,} gallery")
        else:
            t.add_row("split", "none: retrieval is leave-one-out")
        t.add_row("thumbnails", "yes" if s.has_thumbnails else "no")
        t.add_row("layers", f"{len(s.layers)}")
        return t

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value and event.row_key.value != self.code_layer:
            self.nac.layer = event.row_key.value

    def action_choose_layer(self) -> None:
        table = self.query_one("#ov-layers", DataTable)
        names = self.session.layer_names
        if 0 <= table.cursor_row < len(names):
            self.nac.layer = names[table.cursor_row]

