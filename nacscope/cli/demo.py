"""``nacscope demo``: train NAC (and SimCLR) on digits, dump, analyse, compare with random init, inspect."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from nacscope.cli._common import console, err_console, one_line_errors
from nacscope.cli.app import app


def wants_tui(tui: bool) -> bool:
    """Open the TUI at the end: asked for, and standard output is a terminal."""
    return tui and sys.stdout.isatty() and console.is_terminal


@app.command("demo")
@one_line_errors
def demo_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for runs, code sets and the comparison.")] = Path(
        "nacscope-demo"),
    tui: Annotated[bool, typer.Option("--tui/--no-tui", help="Open `inspect` on the NAC code set at the end "
                                                             "(only when standard output is a terminal).")] = True,
    simclr: Annotated[bool, typer.Option("--simclr/--no-simclr", help="Also train SimCLR for contrast.")] = True,
    force: Annotated[bool, typer.Option("--force", help="Redo every step instead of reusing what OUT holds.")] = False,
    epochs: Annotated[int, typer.Option("--epochs", hidden=True, help="Training epochs (tests use fewer).")] = 20,
    bits: Annotated[int, typer.Option("--bits", hidden=True, help="Code length D.")] = 32,
    segment_pairs: Annotated[int, typer.Option("--segment-pairs", hidden=True, help="Segments to walk.")] = 20,
) -> None:
    """The main job in one command: NAC vs SimCLR vs random init on digits, CPU, no download, then the TUI."""
    from nacscope.cli._progress import StepBars
    from nacscope.demo import TITLES, DemoSettings, run_demo

    t0 = time.perf_counter()
    steps = StepBars()
    try:
        result = run_demo(
            out, DemoSettings(epochs=epochs, bits=bits, simclr=simclr, segment_pairs=segment_pairs), force=force,
            console=err_console, log=steps.log,
            dump_progress=lambda name: steps.bar(f"dumping {TITLES[name]}", ends_at_total=True,
                                                 describe=lambda done, s: f"dumped {done:,} samples in {s:.1f} s"),
            analysis_progress=lambda name: steps.bar(f"analysing {TITLES[name]}", ends_at_total=False,
                                                     describe=lambda done, s: f"analysed {TITLES[name]} in {s:.1f} s"))
    finally:
        steps.close()
    if wants_tui(tui):
        from nacscope.tui import run_inspect

        err_console.print(f"done in {time.perf_counter() - t0:.0f} s; opening the TUI on {result.codesets['nac']} (q quits)")
        run_inspect(result.codesets["nac"], "code")  # then the comparison below stays on the terminal
    _render(result, bits, time.perf_counter() - t0)


def _render(result, bits: int, elapsed: float) -> None:
    """The comparison table, the verdict and the files written."""
    from rich.table import Table

    from nacscope.demo import TITLES, format_value

    models = tuple(result.analyses)
    table = Table(title=f"NAC vs {' vs '.join(TITLES[m] for m in models[1:])} on digits "
                        f"({result.analyses['nac']['n_samples']:,} samples, {bits}-bit codes)", title_justify="left")
    table.add_column("metric")
    for m in models:
        table.add_column(TITLES[m], justify="right")
    for r in result.rows:
        table.add_row(f"{r['metric']} [dim]({r['better']})[/]", *[format_value(r.get(m)) for m in models])
    console.print(table)
    for line in result.verdict:
        console.print(line, highlight=False)
    console.print("\nwritten:", highlight=False)
    for name, path in {**{f"code set ({TITLES[k]})": v for k, v in result.codesets.items()}, **result.files}.items():
        console.print(f"  {name:22} {path}", highlight=False, soft_wrap=True)
    note = f" (reused: {', '.join(result.reused)})" if result.reused else ""
    console.print(f"done in {elapsed:.0f} s{note}. Browse with: nacscope inspect {result.codesets['nac']}",
                  highlight=False, soft_wrap=True)
