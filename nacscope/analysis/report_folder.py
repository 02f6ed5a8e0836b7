"""The folder a report is written into: staged, then moved in, touching only files the report wrote.

A new folder is built under a temporary name beside it and renamed into place. An existing folder
(``--force``) keeps everything that is not the report's: the files a report wrote are listed in its
manifest ``.nacscope-report.json``, and only those are replaced or removed. A file of a report's
name that the manifest does not list (the user's own ``summary.md``, say) is refused before any work.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

from nacscope._files import atomic_write, refuse_inputs, writable_dir
from nacscope.errors import OptionError

#: The manifest: ``{"format": "nacscope.report", "files": [name, ...]}``, the files the last report wrote.
MANIFEST = ".nacscope-report.json"
MANIFEST_FORMAT = "nacscope.report"
#: Every file a report may write (figures and the summary).
REPORT_FILES = ("regions.png", "collisions.png", "bit_rates.png", "nn_distance.png", "pr_curve.png", "umap.png",
                "plane.png", "summary.md")
_STAGING = ".nacscope-report.partial-"


def read_manifest(folder: Path) -> set[str]:
    """The report files listed in ``folder``'s manifest (names of :data:`REPORT_FILES` only); empty if none."""
    path = folder / MANIFEST
    if not path.is_file():
        return set()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return set()
    files = data.get("files") if isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT else None
    return {f for f in files if isinstance(f, str) and f in REPORT_FILES} if isinstance(files, list) else set()


def _write_manifest(folder: Path, names: Iterable[str]) -> None:
    with atomic_write(folder / MANIFEST) as tmp:
        tmp.write_text(json.dumps({"format": MANIFEST_FORMAT, "files": sorted(set(names))}, indent=1) + "\n")


class ReportFolder:
    """Where one report goes. Checked at construction (before any work); :meth:`stage` gives the
    temporary folder to draw into, :meth:`commit` moves the files in, :meth:`discard` drops them."""

    def __init__(self, out: str | os.PathLike, *, force: bool, inputs: Sequence[str | os.PathLike] = ()) -> None:
        self.out = Path(out)
        refuse_inputs(self.out, inputs)
        self.exists = os.path.lexists(self.out)
        self.old: set[str] = set()
        if self.exists:
            self._check_existing(force)
        else:
            parent = Path(os.path.abspath(self.out)).parent
            if not parent.is_dir():
                raise OptionError(f"output directory {parent} does not exist")
            if not writable_dir(parent):
                raise OptionError(f"output directory {parent} is not writable")
        self.staging: Path | None = None

    def _check_existing(self, force: bool) -> None:
        out = self.out
        if out.is_symlink() or not out.is_dir():
            raise OptionError(f"output {out} exists and is not a folder")
        if not force and any(out.iterdir()):
            raise OptionError(f"{out} exists; use --force to replace the report in it (other files are kept)")
        if not writable_dir(out):
            raise OptionError(f"output directory {out} is not writable")
        self.old = read_manifest(out)
        for name in (*REPORT_FILES, MANIFEST):
            target = out / name
            if not os.path.lexists(target):
                continue
            if target.is_symlink() or not target.is_file():
                raise OptionError(f"{target} is not a regular file; remove it or choose another folder")
            if name != MANIFEST and name not in self.old:
                raise OptionError(f"{target} was not written by nacscope report; remove it or choose another folder")

    def stage(self) -> Path:
        """A fresh temporary folder (in the output folder, or beside it if new) to write the report into."""
        if self.exists:
            self.staging = Path(tempfile.mkdtemp(prefix=_STAGING, dir=self.out))
        else:
            absolute = Path(os.path.abspath(self.out))
            self.staging = Path(tempfile.mkdtemp(prefix=f".{absolute.name}.partial-", dir=absolute.parent))
        return self.staging

    def commit(self, names: Sequence[str]) -> list[Path]:
        """Move the staged ``names`` into the output folder; remove the older report's files not rewritten."""
        assert self.staging is not None and set(names) <= set(REPORT_FILES), names
        if not self.exists:
            _write_manifest(self.staging, names)
            os.rename(self.staging, self.out)  # fails, never merges, if the folder appeared meanwhile
        else:
            _write_manifest(self.out, self.old | set(names))  # a crash below leaves only listed files
            for name in names:
                os.replace(self.staging / name, self.out / name)
            for stale in self.old - set(names):
                target = self.out / stale
                if target.is_file() and not target.is_symlink():
                    target.unlink()
            _write_manifest(self.out, names)
            self.staging.rmdir()
        self.staging = None
        return sorted(self.out / n for n in names)

    def discard(self) -> None:
        """Drop the staged files (after a failure); the output folder is as it was."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None


__all__ = ["MANIFEST", "REPORT_FILES", "ReportFolder", "read_manifest"]
