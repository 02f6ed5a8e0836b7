"""Commands on code-set files: ``info`` and ``import-codes``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from nacscope.cli._common import command_line, console, err_console, one_line_errors
from nacscope.cli.app import app


@app.command("import-codes")
@one_line_errors
def import_codes_cmd(
    codes: Annotated[Path, typer.Argument(help="(N, D) codes: .npy, or .npz with one array per layer. Values bool, {0,1} or {-1,+1}.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The code set to write (.h5).")],
    labels: Annotated[Optional[Path], typer.Option(help="(N,) integer labels or (N, C) multi-hot .npy.")] = None,
    query_mask: Annotated[Optional[Path], typer.Option("--query-mask", help="(N,) bool .npy marking query samples.")] = None,
    layer: Annotated[str, typer.Option(help="Layer name for .npy input.")] = "code",
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUT if it exists.")] = False,
) -> None:
    """Bring codes made by any other method into a code set."""
    from nacscope.cli._progress import progress_bar
    from nacscope.codes.importing import import_codes

    with progress_bar(err_console.is_terminal, unit="rows") as prog:
        path = import_codes(codes, out, labels_path=labels, query_mask_path=query_mask, layer=layer, force=force,
                            attrs={"command": command_line()}, progress=prog)
    console.print(f"wrote [bold]{path}[/]")


@app.command("info")
@one_line_errors
def info_cmd(
    file: Annotated[Path, typer.Argument(help="A code set (.h5).")],
    check: Annotated[bool, typer.Option("--check", help="Validate the file against the format spec.")] = False,
) -> None:
    """Summarise a code set: provenance, samples, labels, layers, cached analyses."""
    from nacscope.codes.render import render_info
    from nacscope.codes import CodeSet

    from nacscope.codes.validate import validate

    problems = validate(file) if check and file.is_file() else []  # every violation, before opening stops at one
    for p in problems:
        console.print(f"[red]x[/] {p}", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    with CodeSet(file) as cs:
        console.print(render_info(cs))
    if check:
        console.print("[green]valid[/]: the file follows code-set format v1")
