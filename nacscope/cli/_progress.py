"""The CLI's one progress factory: library :data:`nacscope.progress.Progress` callbacks as rich bars.

In a terminal: one rich bar per stage (the ``message`` of the callback), with rate and ETA, on
stderr, removed when done. Without a terminal: one plain line per finished stage, plus one line
every ``every_s`` seconds for a stage still running, so logs of long jobs show that work goes on.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

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


class StepLine:
    """A step's progress where there is no terminal: one line when the step is finished.

    Rich's transient bars leave empty lines in a file or a pipe; this prints ``describe(done, seconds)``
    once, when told the step is finished or at its ``stop()`` (the next step's line), if it ever started
    (or ``always``: analyses read from the file's cache report no progress but are a finished step).
    """

    def __init__(self, describe: Callable[[int, float], str], *, always: bool = False) -> None:
        self.describe = describe
        self.started = time.perf_counter()
        self.done: int | None = 0 if always else None  # None: not started (yet)
        self.printed = False

    def update(self, done: int, *, finished: bool = False) -> None:
        self.done = int(done)
        if finished:
            self.stop()

    def stop(self) -> None:
        if self.done is None or self.printed:  # never started (the step was reused), or already said
            return
        self.printed = True
        err_console.print(f"      {self.describe(self.done, time.perf_counter() - self.started)}", highlight=False,
                          soft_wrap=True)


class StepBars:
    """Progress of a job told as numbered steps (the demo): ``log`` prints a step's line, ``bar`` shows
    its progress under it, a live rich bar on a terminal, or one :class:`StepLine` when it is done.

    The bars of a step are stopped by the next ``log`` line (and by :meth:`close`).
    """

    def __init__(self) -> None:
        self.shown: list[Any] = []

    def log(self, line: str) -> None:
        self.close()
        err_console.print(line, highlight=False, soft_wrap=True)

    def close(self) -> None:
        for p in self.shown:
            p.stop()
        self.shown.clear()

    def bar(self, description: str, describe: Callable[[int, float], str], *, ends_at_total: bool) -> Progress:
        """A callback for one step. ``ends_at_total``: the step ends when ``done`` reaches ``total`` (one
        stage); otherwise it has several stages and ends at the next line."""
        if not err_console.is_terminal:  # no live bar: one line when the step is done
            line = StepLine(describe, always=not ends_at_total)
            self.shown.append(line)
            return lambda done, total, message="": line.update(done, finished=ends_at_total and done >= total)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

        p = RichProgress(f"      {description}", BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[msg]}"),
                         TimeRemainingColumn(), console=err_console, transient=True)
        self.shown.append(p)
        task = p.add_task("", total=None, msg="")
        p.start()

        def update(done: int, total: int, message: str = "") -> None:
            p.update(task, completed=done, total=max(total, 1), msg=message[:40])
            if ends_at_total and done >= total:
                p.stop()

        return update
