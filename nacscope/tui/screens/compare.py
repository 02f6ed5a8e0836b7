"""Compare: one column per code set (and their difference), and the neighbours of one sample in each."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from nacscope.tui.compare import Comparison

K_NEIGHBOURS = 8


class CompareScreen(Screen):
    """The overview table of every file side by side, and the same sample's neighbours in each file."""

    BINDINGS = [Binding("n", "step(1)", "Next sample"), Binding("p", "step(-1)", "Prev sample"),
                Binding("q", "app.quit", "Quit")]
    AUTO_FOCUS = "#cmp-table"

    sample: var[int] = var(0)

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with VerticalScroll(id="cmp-body"):
            yield DataTable(id="cmp-table", zebra_stripes=True, cursor_type="row")
            yield Static(id="cmp-sample")
            with Horizontal(id="cmp-neighbours"):
                for f in range(len(self.cmp.sessions)):
                    yield DataTable(id=f"cmp-nn-{f}", classes="cmp-nn", cursor_type="none")
            yield Static(id="cmp-status")
        yield Footer()

    @property
    def cmp(self) -> Comparison:
        return self.app.cmp  # type: ignore[attr-defined]

    def on_mount(self) -> None:
        self.title = "nacscope inspect \u00b7 compare"
        self.sub_title = " vs ".join(self.cmp.names)
        table = self.query_one("#cmp-table", DataTable)
        table.border_title = "Each file's code layer over all its rows (\u0394 = last - first)"
        table.add_column("metric", key="metric")
        for f, (name, layer) in enumerate(zip(self.cmp.names, self.cmp.layers)):
            table.add_column(f"{name} ({layer})", key=f"f{f}")
        table.add_column("\u0394", key="diff")
        for f in range(len(self.cmp.sessions)):
            nn = self.query_one(f"#cmp-nn-{f}", DataTable)
            nn.border_title = self.cmp.names[f]
            nn.add_column("sample", key="sample")
            nn.add_column("d", key="d")
            nn.add_column("same", key="same")
        self.fill_table()
        self.fill_neighbours()

    def fill_table(self) -> None:
        table = self.query_one("#cmp-table", DataTable)
        table.clear()
        for row in self.cmp.table():
            table.add_row(*row)
        done = all(s is not None for s in self.cmp.summaries)
        self.query_one("#cmp-status", Static).update(
            "" if done else "[dim]analyses pending: numbers appear when the analysis finishes[/]")

    def fill_neighbours(self) -> None:
        i = self.sample
        per_file = self.cmp.neighbours(i, K_NEIGHBOURS)
        shared = set.intersection(*(set(s for s, _ in nn) for nn in per_file))
        self.query_one("#cmp-sample", Static).update(
            f"Sample {self.cmp.sample(i):,} ({i + 1:,} of {self.cmp.n:,} common; n/p: next/previous) \u2014 "
            f"its {K_NEIGHBOURS} nearest in each file; \u25cf: a neighbour in every file ({len(shared)})")
        for f, nn in enumerate(per_file):
            t = self.query_one(f"#cmp-nn-{f}", DataTable)
            t.clear()
            for s, d in nn:
                t.add_row(f"{s:,}", str(d), "\u25cf" if s in shared else "")

    def watch_sample(self) -> None:
        if self.is_mounted:
            self.fill_neighbours()

    def action_step(self, d: int) -> None:
        self.sample = (self.sample + d) % self.cmp.n


class CompareApp(App):
    """``nacscope inspect a.h5 b.h5 [c.h5]``: several code sets of the same samples side by side."""

    CSS_PATH = "../nacscope.tcss"

    def __init__(self, cmp: Comparison, *, analyze_on_open: bool = True) -> None:
        super().__init__()
        self.cmp = cmp
        self.analyze_on_open = analyze_on_open
        self.analysed = False

    def on_mount(self) -> None:
        self.push_screen(CompareScreen())
        if self.analyze_on_open:
            self.run_worker(self._analyze, thread=True, exclusive=True)

    def _analyze(self) -> None:
        self.cmp.analyze()
        self.call_from_thread(self._analysed)

    def _analysed(self) -> None:
        self.analysed = True
        if isinstance(self.screen, CompareScreen):
            self.screen.fill_table()


def run_compare(paths: Sequence[str | Path]) -> None:
    """Open the comparison TUI on several code sets of the same samples."""
    cmp = Comparison(paths)
    try:
        CompareApp(cmp).run()
    finally:
        cmp.close()
