"""Long computations in Textual thread workers, with progress, rate, ETA and cancellation."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from rich.text import Text
from textual.widgets import Static

from nacscope.tui.widgets.bars import bar


class JobCancelled(Exception):
    """Raised from a progress callback when the user cancelled the job."""


@dataclass
class JobState:
    """What the job line shows: the running job (if any) and its progress."""

    title: str = ""
    done: int = 0
    total: int = 0
    message: str = ""
    started: float = field(default_factory=time.monotonic)
    running: bool = False
    last: str = ""  # outcome of the last job ("done in 1.2 s", "cancelled", an error)

    def render(self, width: int = 80) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        if not self.running:
            t.append(self.last or "ready", style="dim")
            return t
        elapsed = time.monotonic() - self.started
        t.append(f"\u27f3 {self.title} ", style="bold yellow")
        if self.total > 0:
            frac = min(1.0, self.done / self.total)
            t.append(f"{bar(frac, 1.0, 20):<20}", style="yellow")
            t.append(f" {frac:4.0%} {self.done:,}/{self.total:,}")
            rate = self.done / elapsed if elapsed > 0 else 0.0
            if rate > 0:
                eta = (self.total - self.done) / rate
                t.append(f" \u00b7 {rate:,.1f}/s \u00b7 ETA {int(eta) // 60}:{int(eta) % 60:02d}")
        else:
            t.append(f"{elapsed:.0f} s")
        if self.message:
            t.append(f" \u00b7 {self.message}", style="dim")
        t.append("  [Esc cancels]", style="dim")
        return t


class JobLine(Static):
    """One line at the bottom of each screen showing the app's current job."""

    DEFAULT_CSS = """
    JobLine { height: 1; width: 1fr; padding: 0 1; background: $panel; }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "job", self._show, init=True)

    def _show(self, state: JobState) -> None:
        self.update(state.render(self.size.width))


def make_progress(post: Callable[[int, int, str], None], is_cancelled: Callable[[], bool], every_s: float = 0.1):
    """A ``progress(done, total, message)`` callback that throttles UI updates and raises on cancel."""
    last = [0.0]
    stage = [None]

    def progress(done: int, total: int, message: str = "") -> None:
        if is_cancelled():
            raise JobCancelled()
        now = time.monotonic()
        if now - last[0] >= every_s or (total and done >= total) or message != stage[0]:  # a new stage always shows
            last[0], stage[0] = now, message
            post(int(done), int(total or 0), str(message or ""))

    return progress


def describe_error(exc: BaseException) -> str:
    """One line for an exception raised by a job."""
    from nacscope.errors import NacscopeError

    if isinstance(exc, NacscopeError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


