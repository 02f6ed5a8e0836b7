"""``nacscope export``: one layer of a code set to npz, npy, parquet, csv or a faiss binary index."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from nacscope.cli._common import console, err_console, one_line_errors
from nacscope.cli.app import app


@app.command("export")
@one_line_errors
def export_cmd(
    file: Annotated[Path, typer.Argument(help="A code set (.h5).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The file to write.")],
    layer: Annotated[Optional[str], typer.Option(help="Layer to export (default: `code`, or the only layer).")] = None,
    fmt: Annotated[
        Optional[str],
        typer.Option("--format", "-f", help="npz | npy | parquet | csv | faiss (default: from OUT's suffix)."),
    ] = None,
    packed: Annotated[
        bool, typer.Option("--packed/--unpacked", help="Packed bytes or one 0/1 byte per unit (csv, faiss: always packed).")
    ] = False,
    rows: Annotated[str, typer.Option(help="all | query | gallery (needs the file's query/gallery split).")] = "all",
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")] = False,
) -> None:
    """Export codes, labels and split of one layer (npy sidecars, parquet, csv as hex, faiss index)."""
    from nacscope.cli._progress import progress_bar
    from nacscope.export import export_codes

    with progress_bar(err_console.is_terminal, unit="rows") as prog:
        paths = export_codes(file, out, fmt=fmt, layer=layer, packed=packed, rows=rows, force=force, progress=prog)
    for p in paths:
        console.print(f"wrote [bold]{p}[/]", highlight=False, soft_wrap=True)
