"""``nacscope inspect``: the Textual TUI on a code set, or a one-screen summary without a terminal."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from nacscope.cli._common import console, one_line_errors
from nacscope.cli.app import app


@app.command("inspect")
@one_line_errors
def inspect_cmd(
    files: Annotated[list[Path], typer.Argument(
        help="A code set (.h5; a file still being written by dump is followed), or 2-3 code sets of the same "
             "samples to compare side by side.")],
    layer: Annotated[Optional[str], typer.Option("--layer", "-l", help="Layer to show first (default: the code layer).")] = None,
    no_tui: Annotated[bool, typer.Option("--no-tui", help="Print a summary instead of opening the TUI.")] = False,
    plain_images: Annotated[bool, typer.Option("--plain-images", help="Draw images with shade characters, no colour.")] = False,
    analyze: Annotated[bool, typer.Option("--analyze/--no-analyze", help="Run (or load cached) analyses on open.")] = True,
) -> None:
    """Browse a code set: overview, regions, collisions, neighbours (with images), UMAP scatter.

    Opens the TUI when stdout is a terminal; otherwise (or with --no-tui) prints a summary.
    """
    from nacscope.errors import OptionError
    from nacscope.tui.session import Session

    if len(files) > 1:
        _compare(files, no_tui or not sys.stdout.isatty(), analyze)
        return
    session = Session(files[0])
    try:
        if layer is not None and layer not in session.layer_names:
            raise OptionError(f"no layer {layer!r} in {session.path.name}; available: {', '.join(session.layer_names)}")
        if no_tui or not sys.stdout.isatty():
            _print_summary(session, analyze)
            return
        from nacscope.tui.app import InspectApp

        InspectApp(session, layer, plain_images=plain_images, analyze_on_open=analyze).run()
    finally:
        session.close()


def _compare(files: list[Path], no_tui: bool, analyze: bool) -> None:
    from nacscope.errors import OptionError
    from nacscope.tui.compare import Comparison, compare_renderable
    from nacscope.tui.screens.compare import run_compare

    if len(files) > 3:
        raise OptionError(f"inspect compares at most 3 files, got {len(files)}")
    if not no_tui:
        run_compare(files)
        return
    cmp = Comparison(files)
    try:
        if analyze:
            cmp.analyze()
        from rich.console import Console

        (console if console.is_terminal else Console(width=120)).print(compare_renderable(cmp))
    finally:
        cmp.close()


def _print_summary(session, analyze: bool) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from nacscope.tui.summary import summary_renderable

    summary = None
    if analyze and session.n:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("analysing", total=None)
            summary = session.analyze(
                lambda d, t, m: bar.update(task, completed=d, total=t or None, description=m or "analysing"))
    # A pipe or file gets the table at full width rather than squeezed into 80 columns.
    from rich.console import Console

    out = console if console.is_terminal else Console(width=110)
    out.print(summary_renderable(session, summary))
