"""The CLI's one progress factory: library :data:`nacscope.progress.Progress` callbacks as rich bars.

In a terminal: one rich bar per stage (the ``message`` of the callback), with rate and ETA, on
stderr, removed when done. Without a terminal: one plain line per finished stage, plus one line
every ``every_s`` seconds for a stage still running, so logs of long jobs show that work goes on.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator, Optional

from nacscope.cli._common import err_console
from nacscope.progress import Progress


@contextmanager
def progress_bar(enabled: bool = True, *, unit: str = "", every_s: float = 5.0) -> Iterator[Optional[Progress]]:
    """Yield a progress callback (or None when ``enabled`` is false)."""
    if not enabled:
        yield None
        return
    if not err_console.is_terminal:
        yield _plain_lines(unit, every_s)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

    with RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[rate]} " + (unit or "it") + "/s"),
                      TimeRemainingColumn(), console=err_console, transient=True) as bar:
        tasks: dict[str, int] = {}
        started: dict[str, float] = {}

        def update(done: int, total: int, message: str = "") -> None:
            if message not in tasks:
                tasks[message] = bar.add_task(message or "working", total=total or None, rate="-")
                started[message] = time.perf_counter()
            rate = done / max(time.perf_counter() - started[message], 1e-9)
            bar.update(tasks[message], completed=done, total=total or None, rate=f"{rate:,.1f}")

        yield update


def _plain_lines(unit: str, every_s: float) -> Progress:
    state: dict[str, float] = {}
    finished: set[str] = set()
    suffix = f" {unit}" if unit else ""

    def update(done: int, total: int, message: str = "") -> None:
        now = time.perf_counter()
        label = message or "working"
        if message not in state:
            state[message] = now
            state[message + "\0last"] = now
        if total and done >= total:
            if message not in finished:
                finished.add(message)
                err_console.print(f"{label}: {done:,}/{total:,}{suffix} done in {now - state[message]:.1f} s",
                                  highlight=False, soft_wrap=True)
        elif now - state[message + "\0last"] >= every_s:
            state[message + "\0last"] = now
            of = f"/{total:,}" if total else ""
            err_console.print(f"{label}: {done:,}{of}{suffix} ...", highlight=False, soft_wrap=True)

    return update
