"""File plumbing shared by the package: content digests, and writes that never leave a half-written file."""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from nacscope.errors import NacscopeError, OptionError

#: What a file is called while it is being written: ``<final name>.partial``, in the same folder.
PARTIAL_SUFFIX = ".partial"


def partial_path(path: str | os.PathLike) -> Path:
    """The temporary name of ``path`` while it is being written (``<name>.partial``, same folder)."""
    p = Path(path)
    return p.with_name(p.name + PARTIAL_SUFFIX)


def _relation(out: Path, inp: Path) -> str | None:
    """How ``out`` lies to ``inp``: ``"is"`` (one file), ``"contains"`` (``inp`` under folder ``out``),
    ``"inside"`` (``out`` under folder ``inp``), or None."""
    try:
        if out.exists() and inp.exists() and os.path.samefile(out, inp):
            return "is"
    except OSError:
        pass
    o, i = Path(os.path.realpath(out)), Path(os.path.realpath(inp))
    if o == i:
        return "is"
    if o in i.parents:
        return "contains"
    if i in o.parents:
        return "inside"
    return None


def refuse_inputs(path: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = (), *,
                  sealed: Iterable[str | os.PathLike | None] = (), error: type[NacscopeError] = OptionError) -> None:
    """Refuse, in one line, an output ``path`` that is one of ``inputs`` or ``sealed`` or contains one,
    or that lies inside a ``sealed`` folder (an input folder whose contents must not change, such as
    an image folder read as a dataset) or "inside" an input file. Symlinks are resolved; None entries
    are skipped.

    Raises:
        error: naming the output and the input.
    """
    p = Path(path)
    sealed = [s for s in sealed if s is not None]
    for inp, closed in [*((i, False) for i in inputs if i is not None), *((s, True) for s in sealed)]:
        rel = _relation(p, Path(inp))
        if rel == "is":
            raise error(f"output {p} is the input {inp}; choose another output name")
        if rel == "contains":
            raise error(f"output folder {p} contains the input {inp}; choose another output folder")
        if rel == "inside" and (closed or not Path(inp).is_dir()):  # under a sealed folder, or "under" a file
            raise error(f"output {p} lies inside the input {inp}; write it elsewhere")


def check_output(path: str | os.PathLike, *, force: bool = False,
                 error: type[NacscopeError] = OptionError, inputs: Iterable[str | os.PathLike | None] = (),
                 sealed: Iterable[str | os.PathLike | None] = (), folder: bool = False) -> Path:
    """The one guard every command runs on each output path before any work.

    Refuses, in one line: an output that is (or, for a ``folder`` output, contains) one of the
    command's ``inputs`` or ``sealed`` input folders, or lies inside a ``sealed`` folder (see
    :func:`refuse_inputs`); an existing output that is not a regular file (a device, a folder where a
    file is expected, a file where a folder is expected); an existing output without ``force``; a
    missing or unwritable parent folder.

    Raises:
        error: one line saying which, and what to do.
    """
    p = Path(path)
    refuse_inputs(p, inputs, sealed=sealed, error=error)
    if os.path.lexists(p):
        if folder:
            if p.is_symlink() or not p.is_dir():
                raise error(f"output {p} exists and is not a folder")
        elif p.is_dir():
            raise error(f"output {p} is a directory")
        elif not p.is_file():
            raise error(f"output {p} is not a regular file (a device?); refusing to write over it")
        if not force:
            raise error(f"{p} exists; use --force to overwrite it")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise error(f"output directory {parent} does not exist")
    if not writable_dir(parent):
        raise error(f"output directory {parent} is not writable")
    return p


def check_folder_writable(folder: str | os.PathLike, error: type[NacscopeError] = OptionError) -> None:
    """Refuse, before any work, an output folder that could not be written: it (or, if it does not exist
    yet, the nearest folder above it that does, where it would be created) is not writable."""
    p = Path(os.path.abspath(folder))
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    if p.is_dir() and not writable_dir(p):
        raise error(f"output directory {p} is not writable")


def writable_dir(folder: str | os.PathLike) -> bool:
    """Whether this process may create files in ``folder`` (its effective ids, where the OS tells)."""
    effective = os.access in os.supports_effective_ids
    return os.access(folder, os.W_OK | os.X_OK, effective_ids=effective)


def dataset_path(name: str | None) -> Path | None:
    """The file or folder a dataset name reads (``D.npz``, ``D.h5``, ``folder:PATH``); None for built-ins."""
    if not name:
        return None
    if name.startswith("folder:"):
        return Path(name[len("folder:"):]).expanduser()
    return Path(name).expanduser() if name.endswith((".npz", ".h5", ".hdf5")) else None


def create_exclusive(path: str | os.PathLike) -> Path:
    """Create an empty temporary file at ``path`` that nobody else made: whatever sat there (a stale
    temporary, a symlink planted at the name) is removed, never followed, and the new file is
    created with ``O_EXCL``. Returns ``path``."""
    p = Path(path)
    if p.is_dir() and not p.is_symlink():
        raise OptionError(f"{p} is a directory; remove it")
    p.unlink(missing_ok=True)  # removes a symlink itself, not its target
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    os.close(fd)
    return p


def output_error(exc: OSError, path: str | os.PathLike | None = None) -> str:
    """One line for an OSError met while writing: the path and the reason (``read-only file system``...)."""
    where = exc.filename2 or exc.filename or path or "output"  # os.replace(tmp, dst): dst
    reason = exc.strerror or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return f"cannot write {where}: {reason}"


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
    tmp = create_exclusive(partial_path(path))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def subplots(*args, figsize=None, **kw):
    """``(figure, axes)`` like ``pyplot.subplots``, on a standalone :class:`matplotlib.figure.Figure`.

    No pyplot state and no backend switch: safe inside a notebook or a GUI session.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kw)


def save_png(fig, path: str | os.PathLike, *, dpi: int = 110, **savefig_kw) -> Path:
    """Draw a matplotlib figure into ``path`` as a PNG (via :func:`atomic_write`); a pyplot figure is closed."""
    try:
        with atomic_write(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png", **savefig_kw)
    finally:
        if getattr(fig.canvas, "manager", None) is not None:  # made by pyplot: release it there
            import matplotlib.pyplot as plt

            plt.close(fig)
    return Path(path)
