"""The ``nacscope`` command line. Each command lives in its own module and registers on ``app``.

Command modules import heavy libraries (torch, umap, textual) inside the command functions so
that ``nacscope --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from nacscope import __version__
from nacscope.cli.app import app

# Command modules (import order = order in --help).
from nacscope.cli import codes  # noqa: F401,E402  info, import-codes
from nacscope.cli import train  # noqa: F401,E402
from nacscope.cli import probe  # noqa: F401,E402  linear evaluation
from nacscope.cli import dump  # noqa: F401,E402  layers, dump
from nacscope.cli import regions  # noqa: F401,E402  regions
from nacscope.cli import analyze  # noqa: F401,E402  analyze, compare, report
from nacscope.cli import export  # noqa: F401,E402  export
from nacscope.cli import demo  # noqa: F401,E402  demo
from nacscope.cli import inspect  # noqa: F401,E402  inspect (the TUI)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nacscope {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """Study the activation codes of ReLU networks (Neural Activation Coding)."""


def _one_line_warnings() -> None:
    """Print nacscope's own warnings (partial file, corrupt cache entry, repair) as one ``warning:`` line, once."""
    import sys
    import warnings

    default = warnings.showwarning
    shown: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None):
        if category.__module__.startswith("nacscope"):
            if str(message) not in shown:  # a file opened twice (e.g. by compare) is reported once
                shown.add(str(message))
                print(f"warning: {message}", file=sys.stderr, flush=True)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def main() -> None:
    """Console-script entry point."""
    _one_line_warnings()
    app()
