"""The ``x`` key of the Collisions and Projection screens: chosen rows to a file (``export.subset``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nacscope.errors import NacscopeError
from nacscope.tui.screens.dialogs import AskDialog
from nacscope.tui.session import Busy

_FORCE_HINT = "use --force to overwrite it"


def ask_export(screen: Any, rows: np.ndarray, what: str, slug: str) -> None:
    """Ask for a path and write ``rows`` of the app's layer there; ``what`` names the rows in the dialog.

    The format follows the name: ``.npz``/``.csv`` (the layer's bits with sample indices, labels and
    split) or ``.h5`` (a new code set of those rows). A bad path leaves a one-line error in the dialog;
    an existing file is overwritten only when Enter is pressed again on the same name.
    """
    app = screen.app
    session, layer = app.session, app.layer
    rows = np.asarray(rows, dtype=np.int64)
    if not len(rows):
        app.notify("nothing to export: no rows selected", severity="warning")
        return
    state: dict[str, Any] = {"confirm": None, "paths": None}

    def submit(text: str) -> str | None:
        if not text:
            return "type a file name ending in .npz, .csv or .h5"
        try:
            state["paths"] = session.export_rows(text, rows, layer, force=state["confirm"] == text)
        except Busy:
            return "the file is busy with a running job: try again when it ends"
        except NacscopeError as exc:
            msg = str(exc)
            if msg.endswith(_FORCE_HINT):
                state["confirm"] = text
                return msg[: -len(_FORCE_HINT)] + "press Enter again to overwrite it"
            return msg
        except OSError as exc:
            from nacscope._files import output_error

            return output_error(exc, text)
        return None

    def closed(text: str | None) -> None:
        if text and state["paths"]:
            app.notify(f"wrote {state['paths'][0]}: {len(rows):,} rows of {what}")

    default = str(Path(session.path).with_name(f"{Path(session.path).stem}.{slug}.npz"))
    prompt = (f"{len(rows):,} rows ({what}). File name: .npz or .csv (sample index, label, split and the bits "
              f"of layer {layer}) or .h5 (a new code set of these rows, every layer):")
    app.push_screen(AskDialog(f"Export {what}", prompt, submit, initial=default), closed)
