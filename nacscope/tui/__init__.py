"""The Textual TUI of ``nacscope inspect``: browse a code set's analyses, samples and images.

The TUI holds no analysis logic: every number it shows is computed by ``nacscope.analysis``
(through :class:`nacscope.tui.session.Session`) and cached in the file by that engine.
"""

from __future__ import annotations

from pathlib import Path


def run_inspect(path: str | Path, layer: str | None = None, *, plain_images: bool = False) -> None:
    """Open the TUI on a code set (the programmatic entry used by ``nacscope inspect`` and ``demo``).

    Raises:
        CodeSetError: the file is missing, corrupt or not a code set.
        OptionError: ``layer`` is not a layer of the file.
    """
    from nacscope.tui.app import InspectApp
    from nacscope.tui.session import Session

    session = Session(path)
    try:
        InspectApp(session, layer, plain_images=plain_images).run()
    finally:
        session.close()


__all__ = ["run_inspect"]
