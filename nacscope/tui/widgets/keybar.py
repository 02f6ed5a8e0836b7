"""A one-line key bar: the active bindings as text (a cheap stand-in for Textual's Footer).

Textual's ``Footer`` rebuilds one widget per key on every focus or screen change, which costs more than
the rest of a screen switch here (see ``benchmarks/tui_open.py``); this bar is a single widget that
re-renders a line of text. Clicking a key runs it.

Keys are placed in priority order: ``? Help`` and ``q Quit`` always, then the screen's own keys, then
the app's; what does not fit is left out of the bar (the help screen lists every key).
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ScreenStackError
from textual.widget import Widget

#: Actions the bar always shows, in this order, at the right end.
ALWAYS = ("help", "quit")


def _entries(bindings, screen) -> list[tuple[str, str, str, bool, int]]:
    """(key, shown key, description, enabled, priority) per distinct shown action.

    Negative priorities are Help and Quit (in ``ALWAYS`` order), 1 the screen's keys, 2 the app's.
    """
    out, seen = [], set()
    for key, active in bindings.items():
        b = active.binding
        if not b.show or not b.description or b.action in seen:
            continue
        seen.add(b.action)
        prio = ALWAYS.index(b.action) - len(ALWAYS) if b.action in ALWAYS else (1 if active.node is screen else 2)
        out.append((key, screen.app.get_key_display(b), b.description, active.enabled, prio))
    return out


class KeyBar(Widget):
    """The screen's active, shown bindings: ``key description`` pairs, Help and Quit always."""

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
        # The binding chain reads the app's current screen: while the app starts, closes or swaps a
        # mode's stack there is none (ScreenStackError), and a resize can land then. Nothing to show;
        # the bar is rebuilt on the next bindings update, resize or screen resume.
        if not self.is_attached:
            return
        try:
            self.app.screen
        except ScreenStackError:
            return
        self._layout(_entries(self.screen.active_bindings, self.screen), self.size.width or 80)
        self.refresh()

    def _layout(self, entries, width: int) -> None:
        always = sorted((e for e in entries if e[4] < 0), key=lambda e: e[4])
        rest = sorted((e for e in entries if e[4] > 0), key=lambda e: e[4])  # stable: keeps their order
        cells = lambda e: len(f" {e[1]} {e[2]} ")  # noqa: E731
        budget = width - sum(cells(e) for e in always)
        chosen = []
        for e in rest:
            if cells(e) <= budget:
                chosen.append(e)
                budget -= cells(e)
        order = {id(e): i for i, e in enumerate(entries)}
        chosen.sort(key=lambda e: order[id(e)])
        text, spans = Text(no_wrap=True, overflow="crop"), []
        for group in (chosen, always):
            if group is always:
                text.append(" " * max(0, budget))
            for key, shown, desc, enabled, _ in group:
                start = len(text)
                text.append(f" {shown}", style="bold yellow" if enabled else "dim")
                text.append(f" {desc} ", style="" if enabled else "dim")
                spans.append((start, len(text), key))
        self._text, self._spans = text, spans

    def on_resize(self) -> None:
        self._changed()

    def on_screen_resume(self) -> None:
        self._changed()

    def render(self) -> Text:
        return self._text

    async def on_click(self, event: events.Click) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                await self.app.simulate_key(key)
                return

