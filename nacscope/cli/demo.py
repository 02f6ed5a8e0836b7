"""``nacscope demo``: train NAC (and SimCLR) on digits, dump, analyse, compare with random init, inspect."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Callable

import typer

from nacscope.cli._common import console, err_console, one_line_errors
from nacscope.cli.app import app


class StepLine:
    """A demo step's progress where there is no terminal: one line when the step is finished.

    Rich's transient bars leave empty lines in a file or a pipe; this prints ``describe(done, seconds)``
    once, when told the step is finished or at its ``stop()`` (the next step's line), if it ever started
    (or ``always``: analyses read from the file's cache report no progress but are a finished step).
    """

    def __init__(self, describe: Callable[[int, float], str], *, always: bool = False) -> None:
        self.describe = describe
        self.started = time.perf_counter()
        self.done: int | None = 0 if always else None  # None: not started (yet)
        self.printed = False

    def update(self, done: int, *, finished: bool = False) -> None:
        self.done = int(done)
        if finished:
            self.stop()

    def stop(self) -> None:
        if self.done is None or self.printed:  # never started (the step was reused), or already said
            return
        self.printed = True
        err_console.print(f"      {self.describe(self.done, time.perf_counter() - self.started)}", highlight=False,
                          soft_wrap=True)


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
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from nacscope.demo import TITLES, DemoSettings, run_demo

    t0 = time.perf_counter()
    interactive = wants_tui(tui)
    bars: list[Progress | StepLine] = []  # the current step's progress displays, stopped by the next line

    def bar(description: str, fields: str = "") -> Progress:
        p = Progress(f"      {description}", BarColumn(), MofNCompleteColumn(), TextColumn(fields),
                     TimeRemainingColumn(), console=err_console, transient=True)
        bars.append(p)
        return p

    def dump_progress(name: str):
        if not err_console.is_terminal:  # no live bar: one line when the dump is done
            line = StepLine(lambda done, s: f"dumped {done:,} samples in {s:.1f} s")
            bars.append(line)
            return lambda done, total, message="": line.update(done, finished=done >= total)
        p = bar(f"dumping {TITLES[name]}")
        task = p.add_task("", total=None)
        p.start()

        def update(done: int, total: int, message: str = "") -> None:
            p.update(task, completed=done, total=total)
            if done >= total:
                p.stop()

        return update

    def analysis_progress(name: str):
        if not err_console.is_terminal:
            line = StepLine(lambda done, s: f"analysed {TITLES[name]} in {s:.1f} s", always=True)
            bars.append(line)
            return lambda done, total, message: line.update(done)
        p = bar(f"analysing {TITLES[name]}", "{task.fields[msg]}")
        task = p.add_task("", total=None, msg="")
        p.start()

        def update(done: int, total: int, message: str) -> None:
            p.update(task, completed=done, total=max(total, 1), msg=message[:40])

        return update

    def log(line: str) -> None:
        for p in bars:  # finish the previous step's bars before the next line
            p.stop()
        bars.clear()
        err_console.print(line, highlight=False, soft_wrap=True)

    try:
        result = run_demo(out, DemoSettings(epochs=epochs, bits=bits, simclr=simclr, segment_pairs=segment_pairs), force=force, console=err_console,
                          log=log, dump_progress=dump_progress, analysis_progress=analysis_progress)
    finally:
        for p in bars:
            p.stop()
    models = tuple(result.analyses)
    elapsed = time.perf_counter() - t0
    if interactive:
        from nacscope.tui import run_inspect

        err_console.print(f"done in {elapsed:.0f} s; opening the TUI on {result.codesets['nac']} (q quits)")
        run_inspect(result.codesets["nac"], "code")  # then the comparison below stays on the terminal
    table = Table(title=f"NAC vs {' vs '.join(TITLES[m] for m in models[1:])} on digits "
                        f"({result.analyses['nac']['n_samples']:,} samples, {bits}-bit codes)", title_justify="left")
    table.add_column("metric")
    for m in models:
        table.add_column(TITLES[m], justify="right")
    from nacscope.demo import format_value

    for r in result.rows:
        table.add_row(f"{r['metric']} [dim]({r['better']})[/]", *[format_value(r.get(m)) for m in models])
    console.print(table)
    for line in result.verdict:
        console.print(line, highlight=False)
    console.print("\nwritten:", highlight=False)
    for name, path in {**{f"code set ({TITLES[k]})": v for k, v in result.codesets.items()},
                       **{k: v for k, v in result.files.items()}}.items():
        console.print(f"  {name:22} {path}", highlight=False, soft_wrap=True)
    note = f" (reused: {', '.join(result.reused)})" if result.reused else ""
    console.print(f"done in {elapsed:.0f} s{note}. Browse with: nacscope inspect {result.codesets['nac']}",
                  highlight=False, soft_wrap=True)
