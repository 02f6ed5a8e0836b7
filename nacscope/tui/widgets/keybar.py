"""A one-line key bar: the active bindings as text (a cheap stand-in for Textual's Footer).

Textual's ``Footer`` rebuilds one widget per key on every focus or screen change, which costs more than
the rest of a screen switch here (see ``benchmarks/tui_open.py``); this bar is a single widget that
re-renders a line of text. Clicking a key runs it.

Keys are shown in priority order: Help and Quit always (at the right, before the palette hint), then
the screen's and the app's keys from the left while they fit; keys that do not fit are listed by Help
(a ``…`` says some were left out).
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.widget import Widget

#: Actions always shown, rightmost last.
ALWAYS = ("help", "quit")


def _fits(entries: list[tuple[str, str, str, bool]]) -> int:
    return sum(len(f" {k} {d} ") for k, d, _, _ in entries)


class KeyBar(Widget):
    """The screen's active, shown bindings: ``key description`` pairs; Help, Quit and ``^p palette`` last."""

    DEFAULT_CSS = """
    KeyBar { height: 1; width: 1fr; background: $panel; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._spans: list[tuple[int, int, str]] = []  # (start, end, key) of each shown binding
        self._text = Text()
        self._stale = True

    def on_mount(self) -> None:
        signal = getattr(self.screen, "bindings_updated_signal", None)
        if signal is not None:
            signal.subscribe(self, self._changed)
        else:  # older Textual: refresh when focus moves
            self.watch(self.screen, "focused", lambda *_: self._changed(), init=False)
        self._changed()

    def on_unmount(self) -> None:
        signal = getattr(self.screen, "bindings_updated_signal", None)
        if signal is not None:
            signal.unsubscribe(self)

    def _live(self) -> bool:
        """True when this bar's screen is the one shown: only then can its bindings be read.

        A resize or a bindings signal can arrive while the app switches modes or shuts down, when the
        app's screen stack is empty (reading bindings then raised ``ScreenStackError``); such a bar is
        marked stale and rebuilt by :meth:`refresh_keys` when its screen is shown again.
        """
        if not self.is_attached:
            return False
        try:
            return self.screen.is_current  # False (not an exception) on an empty screen stack
        except Exception:  # NoScreen: not (or no longer) on a screen
            return False

    def refresh_keys(self) -> None:
        """Rebuild the bar if something changed while its screen was hidden."""
        if self._stale:
            self._changed()

    def entries(self) -> list[tuple[str, str, str, bool]]:
        """``(key display, description, key, enabled)`` of every shown binding, in binding order."""
        out, seen = [], set()
        for key, active in self.screen.active_bindings.items():
            b = active.binding
            if not b.show or not b.description or b.action in seen:
                continue
            seen.add(b.action)
            out.append((self.app.get_key_display(b), b.description, key, bool(active.enabled)))
        return out

    def _changed(self, _screen=None) -> None:
        if not self._live():
            self._stale = True
            return
        self._stale = False
        everything = self.entries()
        last = [e for a in ALWAYS for e, b in zip(everything, self._actions(everything)) if b == a]
        rest = [e for e, b in zip(everything, self._actions(everything)) if b not in ALWAYS]
        width = self.size.width or 80
        tail = f" {self.app.get_key_display_for_palette()} palette " if hasattr(self.app, "get_key_display_for_palette") \
            else " ^p palette "
        if _fits(last) + len(tail) > width:
            tail = ""
        room = width - _fits(last) - len(tail)
        shown: list[tuple[str, str, str, bool]] = []
        for i, e in enumerate(rest):
            more = 2 if i < len(rest) - 1 else 0  # room for " …" if later keys are left out
            if _fits(shown) + _fits([e]) + more > room:
                break
            shown.append(e)
        text, spans = Text(no_wrap=True, overflow="crop"), []
        for k, d, key, enabled in shown:
            start = len(text)
            text.append(f" {k}", style="bold yellow" if enabled else "dim")
            text.append(f" {d} ", style="" if enabled else "dim")
            spans.append((start, len(text), key))
        if len(shown) < len(rest):
            text.append(" \u2026", style="dim")
        text.append(" " * max(0, width - len(text) - _fits(last) - len(tail)))
        for k, d, key, enabled in last:
            start = len(text)
            text.append(f" {k}", style="bold yellow")
            text.append(f" {d} ")
            spans.append((start, len(text), key))
        text.append(tail, style="dim")
        self._text, self._spans = text, spans
        self.refresh()

    def _actions(self, entries: list[tuple[str, str, str, bool]]) -> list[str]:
        bindings = {key: a.binding.action for key, a in self.screen.active_bindings.items()}
        return [bindings.get(key, "") for _, _, key, _ in entries]

    def on_resize(self) -> None:
        self._changed()

    def render(self) -> Text:
        return self._text

    async def on_click(self, event: events.Click) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                await self.app.simulate_key(key)
                return
