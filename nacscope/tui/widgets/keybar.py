"""A one-line key bar: the active bindings as text (a cheap stand-in for Textual's Footer).

Textual's ``Footer`` rebuilds one widget per key on every focus or screen change, which costs more than
the rest of a screen switch here (see ``benchmarks/tui_open.py``); this bar is a single widget that
re-renders a line of text. Clicking a key runs it.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.widget import Widget


class KeyBar(Widget):
    """The screen's active, shown bindings: ``key description`` pairs; ``^p palette`` at the end."""

    DEFAULT_CSS = """
    KeyBar { height: 1; width: 1fr; background: $panel; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._spans: list[tuple[int, int, str]] = []  # (start, end, key) of each shown binding
        self._text = Text()

    def on_mount(self) -> None:
        signal = getattr(self.screen, "bindings_updated_signal", None)
        if signal is not None:
            signal.subscribe(self, self._changed)
        else:  # older Textual: refresh when focus moves
            self.watch(self.screen, "focused", lambda *_: self._changed(), init=False)
        self._changed(self.screen)

    def on_unmount(self) -> None:
        signal = getattr(self.screen, "bindings_updated_signal", None)
        if signal is not None:
            signal.unsubscribe(self)

    def _changed(self, _screen=None) -> None:
        text, spans, seen = Text(no_wrap=True, overflow="crop"), [], set()
        for key, active in self.screen.active_bindings.items():
            b = active.binding
            if not b.show or not b.description or b.action in seen:
                continue
            seen.add(b.action)
            start = len(text)
            text.append(f" {self.app.get_key_display(b)}", style="bold yellow" if active.enabled else "dim")
            text.append(f" {b.description} ", style="" if active.enabled else "dim")
            spans.append((start, len(text), key))
        tail = f" {self.app.get_key_display_for_palette()} palette " if hasattr(self.app, "get_key_display_for_palette") \
            else " ^p palette "
        width = self.size.width or 80
        if len(text) + len(tail) > width:
            text.truncate(max(0, width - len(tail)))
        text.append(" " * max(0, width - len(text) - len(tail)))
        text.append(tail, style="dim")
        self._text, self._spans = text, spans
        self.refresh()

    def on_resize(self) -> None:
        self._changed()

    def render(self) -> Text:
        return self._text

    async def on_click(self, event: events.Click) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                await self.app.simulate_key(key)
                return
