"""The Typer application object; command modules register themselves on it."""

import typer

app = typer.Typer(
    name="nacscope",
    help="Study the activation codes of ReLU networks (Neural Activation Coding).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)
