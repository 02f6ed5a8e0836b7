"""File plumbing shared by the package: content digests, and writes that never leave a half-written file."""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from nacscope.errors import NacscopeError, OptionError

#: What a file is called while it is being written: ``<final name>.partial``, in the same folder.
PARTIAL_SUFFIX = ".partial"


def partial_path(path: str | os.PathLike) -> Path:
    """The temporary name of ``path`` while it is being written (``<name>.partial``, same folder)."""
    p = Path(path)
    return p.with_name(p.name + PARTIAL_SUFFIX)


def check_output(path: str | os.PathLike, *, force: bool = False,
                 error: type[NacscopeError] = OptionError) -> Path:
    """Refuse an output path before any work: a folder, an existing file (unless ``force``), a missing folder.

    Raises:
        error: one line saying which, and what to do.
    """
    p = Path(path)
    if p.is_dir():
        raise error(f"output {p} is a directory")
    if p.exists() and not force:
        raise error(f"{p} exists; use --force to overwrite it")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise error(f"output directory {parent} does not exist")
    return p


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB blocks (``hashlib.file_digest`` needs Python 3.11)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, as recorded in provenance attributes (``checkpoint_sha256``, ``source_sha256``)."""
    return file_digest(path, "sha256")


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield :func:`partial_path` of ``path`` to write; rename it over ``path`` when the block succeeds.

    On any exception (Ctrl-C included) the partial file is removed and ``path`` is left as it was.
    The partial name does not end in the final suffix: writers that infer a format from the name
    (``matplotlib``, ``np.savez``) must be told the format.
    """
    path = Path(path)
    tmp = partial_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_png(fig, path: str | os.PathLike, *, dpi: int = 110, **savefig_kw) -> Path:
    """Draw a matplotlib figure into ``path`` as a PNG (via :func:`atomic_write`), then close the figure."""
    import matplotlib.pyplot as plt

    try:
        with atomic_write(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png", **savefig_kw)
    finally:
        plt.close(fig)
    return Path(path)
