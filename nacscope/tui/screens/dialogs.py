"""Modal screens: the help screen (every binding), the layer picker, and a one-line question."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import OptionList, Static


_WORDS = {"enter": "Enter", "escape": "Esc", "backspace": "Backspace", "tab": "Tab", "space": "Space",
          "f1": "F1", "ctrl+r": "Ctrl+R", "ctrl+p": "Ctrl+P"}


def key_name(key: str) -> str:
    """A key as the user types it: ``slash`` -> ``/``, ``escape`` -> ``Esc``, ``left`` -> ``←``."""
    from textual.keys import format_key

    key = key.strip()
    return _WORDS.get(key, format_key(key))


def bindings_table(title: str, bindings) -> Table:
    """The keys and what they do (bindings with one description share a row)."""
    t = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False, min_width=40)  # titles do not wrap
    t.add_column(style="bold cyan", no_wrap=True)
    t.add_column()
    for b in bindings:
        if isinstance(b, Binding) and b.description:
            t.add_row(", ".join(key_name(k) for k in b.key.split(",")), b.description)
        elif isinstance(b, tuple) and len(b) >= 3:
            t.add_row(", ".join(key_name(k) for k in str(b[0]).split(",")), b[2])
    return t


class HelpScreen(ModalScreen[None]):
    """Every key of the app and of the screen it was opened from."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    def __init__(self, under: Screen) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static("[b]nacscope inspect[/b]: keys (the command palette, Ctrl+P, lists every action)\n")
            yield Static(bindings_table("Everywhere", self.app.BINDINGS))
            name = getattr(self.under, "TITLE_TEXT", "")
            yield Static(bindings_table(f"\nOn the {name} screen" if name else "\nOn this screen", self.under.BINDINGS))
            yield Static(
                "\nMouse: click a table row or a point to select it; scroll to move.\n"
                "Numbers come from nacscope.analysis and are cached in the file.\n"
                "Hamming distance ranks neighbours; ties are ordered by sample index."
            )

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)


class LayerPicker(ModalScreen[str | None]):
    """Choose the layer every screen shows."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, names: list[str], current: str) -> None:
        super().__init__()
        self.names, self.current = names, current

    def compose(self) -> ComposeResult:
        ol = OptionList(*self.names, id="layer-picker")
        ol.border_title = "Layer"
        yield ol

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        if self.current in self.names:
            ol.highlighted = self.names.index(self.current)
        ol.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.names[event.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)


class AskDialog(ModalScreen[str | None]):
    """One line of text (a path, a number): Enter hands it to ``submit``, Esc cancels.

    ``submit(text)`` returns None when done (the dialog closes with ``text``) or a one-line error,
    shown under the box while the dialog stays open for another try.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, prompt: str, submit, initial: str = "") -> None:
        super().__init__()
        self.title_text, self.prompt, self.submit, self.initial = title, prompt, submit, initial

    def compose(self) -> ComposeResult:
        from textual.containers import Vertical
        from textual.widgets import Input

        with Vertical(id="ask-box") as box:
            box.border_title = self.title_text
            yield Static(self.prompt, id="ask-prompt")
            yield Input(self.initial, id="ask-input")
            yield Static("", id="ask-error")

    def on_mount(self) -> None:
        from textual.widgets import Input

        self.query_one(Input).focus()

    def on_input_submitted(self, event) -> None:
        text = event.value.strip()
        try:
            error = self.submit(text)
        except Exception as exc:  # a one-line message, never a traceback
            from nacscope.tui.jobs import describe_error

            error = describe_error(exc)
        if error:
            self.query_one("#ask-error", Static).update(f"[red]{escape(error)}[/]")
        else:
            self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
