"""The files a command reads when it reads a code set, for the output guard (:func:`nacscope._files.check_output`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from nacscope.codes.cache import cache_path


def codeset_files(*codesets: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Each code set, its ``.cache`` sidecar and the sidecar's ``.lock``: no output may be any of them.

    Accepts paths, or iterables of paths (``codeset_files(a, b)`` or ``codeset_files([a, b])``).
    """
    out: list[Path] = []
    for item in codesets:
        paths = [item] if isinstance(item, (str, os.PathLike)) else list(item)
        for p in paths:
            side = cache_path(p)
            out += [Path(p), side, side.with_name(side.name + ".lock")]
    return out
