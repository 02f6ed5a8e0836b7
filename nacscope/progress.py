"""The one progress protocol of the library.

Every long-running library function takes an optional ``progress`` callable and calls it as
``progress(done, total, message)``: ``done`` of ``total`` units of the current *stage*, where the
stage is named by ``message`` (e.g. ``"layer code: collisions"``, ``"UMAP: optimising"``). A new
message starts a new stage. ``total`` may be 0 when unknown. The callable may raise (for example
:class:`nacscope.progress.Cancelled`) to stop the work; library code lets that propagate.

The CLI turns it into rich bars (``nacscope.cli._progress.progress_bar``); the TUI into its job
line (``nacscope.tui.jobs.make_progress``).
"""

from __future__ import annotations

from typing import Callable, Optional

#: ``progress(done, total, message)``.
Progress = Callable[[int, int, str], None]


class Cancelled(Exception):
    """Raised by a progress callback to stop the work it reports on."""


def prefixed(progress: Optional[Progress], label: str) -> Optional[Progress]:
    """A callback that reports to ``progress`` with ``label: `` before each message (None stays None)."""
    if progress is None:
        return None
    return lambda done, total, message="": progress(done, total, f"{label}: {message}" if message else label)


def report(progress: Optional[Progress], done: int, total: int, message: str = "") -> None:
    """Call ``progress`` if there is one."""
    if progress is not None:
        progress(int(done), int(total), message)
