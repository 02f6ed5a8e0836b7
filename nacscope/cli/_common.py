"""Helpers shared by the CLI commands: one-line errors, consoles."""

from __future__ import annotations

import functools
import os
import sys
import warnings
from enum import Enum
from typing import Callable, Iterable, TypeVar

import typer
from rich.console import Console

from nacscope.choices import PLANE_METHODS, PRECISIONS, RANKS, SPLITS
from nacscope.errors import NacscopeError, OptionError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable)


def choices(name: str, values: Iterable[str]) -> type[Enum]:
    """An option type from one of the library's tuples of names: Typer shows them in ``--help`` and refuses
    others; :func:`one_line_errors` hands the command the plain string."""
    return Enum(name, [(v, v) for v in values], type=str)  # type: ignore[return-value]


Rank = choices("Rank", RANKS)
PlaneMethod = choices("PlaneMethod", PLANE_METHODS)
Split = choices("Split", SPLITS)
Precision = choices("Precision", PRECISIONS)

#: Library parameter names whose flag is spelt otherwise than ``--name-with-dashes``.
FLAGS = {"stop_after_epochs": "--stop-after", "p": "--p (flip probability)"}


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr as one line and return the Exit to raise."""
    from rich.markup import escape

    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def show_warning(message, category, filename, lineno, file=None, line=None, *, seen: set[str] | None = None) -> None:
    """A warning as one ``warning: ...`` line on stderr (no source line); only torchrun's rank 0 says it,
    and a message already in ``seen`` is not repeated (a file opened twice, e.g. by compare)."""
    text = " ".join(str(message).split())
    if os.environ.get("RANK", "0") != "0" or (seen is not None and text in seen):
        return
    if seen is not None:
        seen.add(text)
    from rich.markup import escape

    err_console.print(f"[yellow]warning:[/] {escape(text)}", highlight=False, soft_wrap=True)



def one_line_errors(func: F) -> F:
    """Turn library errors, OS errors (a missing file, a read-only folder, a full disk...) and Ctrl-C
    into a one-line message and exit != 0. An OS error names the path and the reason."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        kwargs = {k: v.value if isinstance(v, Enum) else v for k, v in kwargs.items()}  # choices() as plain str
        try:
            with warnings.catch_warnings():
                warnings.showwarning = functools.partial(show_warning, seen=set())
                return func(*args, **kwargs)
        except OptionError as exc:
            raise fail(exc.for_cli(FLAGS)) from None
        except NacscopeError as exc:
            raise fail(str(exc)) from None
        except FileNotFoundError as exc:
            raise fail(f"file not found: {exc.filename or exc}") from None
        except PermissionError as exc:
            raise fail(f"permission denied: {exc.filename or exc}") from None
        except OSError as exc:  # read-only file system, no space left, is a directory, h5py's errors...
            from nacscope._files import output_error

            raise fail(output_error(exc, exc.filename)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", code=130) from None

    return wrapper  # type: ignore[return-value]


def command_line() -> str:
    """The command line as the user typed it (for provenance)."""
    import shlex

    return " ".join(shlex.quote(a) for a in ["nacscope", *sys.argv[1:]])
