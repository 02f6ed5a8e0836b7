"""Overview: provenance, samples and labels, and every layer's headline numbers at a glance."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Static

from nacscope.analysis.labels import label, short_label
from nacscope.tui.screens.base import NacScreen

#: The layer table's columns as metric keys (``nacscope.analysis.labels`` names them).
LAYER_KEYS = ("layer", "kind", "units", "distinct_patterns", "cumulative_distinct", "samples_in_collisions",
              "largest_group", "dead_bits", "stuck_bits", "bit_entropy", "map")
LAYER_COLUMNS = tuple(short_label(k) for k in LAYER_KEYS)
#: Below this width the table leaves out these columns (and the collided share) so the rest fit.
NARROW = 110
NARROW_DROPS = ("kind", "cumulative_distinct")


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
        self._keys: tuple[str, ...] = ()
        table = self.query_one("#ov-layers", DataTable)
        table.border_title = "Layers ([ ] or Enter)"
        table.focus()
        self._set_columns()

    def _set_columns(self) -> bool:
        """Choose the table's columns for the screen's width; True if they changed."""
        narrow = 0 < self.size.width < NARROW
        self.query_one("#ov-details").set_class(narrow, "-narrow")  # the two detail tables one above the other
        keys = tuple(k for k in LAYER_KEYS if not (narrow and k in NARROW_DROPS))
        if keys == getattr(self, "_keys", ()):
            return False
        self._keys = keys
        table = self.query_one("#ov-layers", DataTable)
        table.clear(columns=True)
        table.add_columns(*(short_label(k) for k in keys))
        return True

    def on_resize(self) -> None:
        if self._set_columns() and self.code_layer:
            self.update_view()

    def update_view(self) -> None:
        s = self.session
        self.query_one("#ov-provenance", Static).update(self._provenance())
        self.query_one("#ov-samples", Static).update(self._samples())
        self._set_columns()
        table = self.query_one("#ov-layers", DataTable)
        table.clear()
        narrow = "kind" not in self._keys
        summary = self.summary or {}
        layers = summary.get("layers") or {}
        retrieval = summary.get("retrieval") or {}
        cumulative = summary.get("cumulative") or {}
        for info in s.layers:
            m = layers.get(info.name) or {}
            r = retrieval.get(info.name) or {}
            n = m.get("n_samples") or s.n
            inc = m.get("samples_in_collisions")
            cells = {
                "layer": info.name, "kind": info.kind, "units": fmt(info.units),
                "distinct_patterns": fmt(m.get("distinct_patterns")),
                "cumulative_distinct": fmt(cumulative_count(cumulative, info.name)),
                "samples_in_collisions": fmt(inc) + (f" ({inc / n:.1%})" if isinstance(inc, int) and n and not narrow
                                                     else ""),
                "largest_group": fmt(m.get("largest_group")), "dead_bits": fmt(m.get("dead_bits")),
                "stuck_bits": fmt(m.get("stuck_bits")), "bit_entropy": fmt(m.get("bit_entropy"), ",.1f"),
                "map": fmt(r.get("map"), ".4f") if r else ("-" if summary else "\u2026"),
            }
            table.add_row(*(cells[k] for k in self._keys), key=info.name)
        if self.code_layer in s.layer_names:
            table.move_cursor(row=s.layer_names.index(self.code_layer), animate=False)
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
        t.add_row("regions", f"{fmt(m.get('distinct_patterns'))} distinct, {fmt(m.get('regions_with_multiple_samples'))}"
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
                  title_justify="left")  # rows named by nacscope.analysis.labels
        t.add_column(style="bold cyan", no_wrap=True)
        t.add_column()
        for k, v in r.items():
            if k in ("rank", "split", "notes") or isinstance(v, (dict, list)):
                continue
            spec = ".1f" if k == "mean_relevant" else ".4f"
            t.add_row(label(k), fmt(v, spec) if isinstance(v, float) else fmt(v))
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


def cumulative_count(cumulative: Any, name: str) -> Any:
    """The cumulative distinct count of a layer from the engine's ``cumulative`` section."""
    if isinstance(cumulative, dict):
        v = cumulative.get(name)
        return v.get("distinct_patterns") if isinstance(v, dict) else v
    if isinstance(cumulative, list):
        for item in cumulative:
            if isinstance(item, dict) and item.get("layer") == name:
                return item.get("distinct_patterns", item.get("distinct"))
    return None
