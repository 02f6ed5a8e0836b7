"""The Typer application object; command modules register themselves on it.

Usage errors (an unknown command or option, a missing argument, a bad choice) print one line,
``error: ... (see nacscope CMD --help)``, and exit with code 2, instead of Click's usage block.
"""

import typer
from typer.core import TyperGroup

try:  # Typer >= 0.16 vendors Click as typer._click
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older Typer on Click
    from click.exceptions import NoArgsIsHelpError, UsageError


def usage_exit(exc: UsageError, command: str | None = None) -> typer.Exit:
    """Print ``exc`` as one ``error:`` line with a hint where to look (the failing command's help, or
    ``command``'s when Click did not say which); return the Exit(2) to raise."""
    from nacscope.cli._common import fail

    message = " ".join(exc.format_message().split()) or "bad usage"
    if message[1:2].islower():  # "No such option" -> "no such option", like every other error line
        message = message[0].lower() + message[1:]
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None and ctx.command_path else (command or "nacscope")
    return fail(f"{message.rstrip('.')} (see {where} --help)", code=2)


class OneLineUsageGroup(TyperGroup):
    """The root group: usage errors of the group and of every command become one line (see module doc)."""

    def make_context(self, info_name, args, parent=None, **extra):  # the root's own options
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            raise usage_exit(exc) from None

    def invoke(self, ctx):  # resolving the command, parsing its arguments, option callbacks
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            sub = ctx.invoked_subcommand  # set once the command is known, before its arguments are parsed
            raise usage_exit(exc, f"{ctx.command_path} {sub}" if sub else ctx.command_path) from None


app = typer.Typer(
    name="nacscope",
    cls=OneLineUsageGroup,
    help="Study the activation codes of ReLU networks (Neural Activation Coding).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)
