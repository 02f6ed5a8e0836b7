"""The report's output folder: a new one appears whole; in an existing one only the report's own files
(listed in its manifest) are replaced or removed, and everything else stays bit-identical."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from nacscope.analysis.report_folder import MANIFEST, ReportFolder, read_manifest
from nacscope.errors import OptionError


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


def write_report(folder: ReportFolder, files: dict[str, bytes]) -> list[Path]:
    tmp = folder.stage()
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    return folder.commit(list(files))


def test_new_folder_appears_whole_with_its_manifest(tmp_path):
    out = tmp_path / "rep"
    written = write_report(ReportFolder(out, force=False), {"regions.png": b"r", "summary.md": b"s"})
    assert written == [out / "regions.png", out / "summary.md"]
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "regions.png", "summary.md"]
    assert json.loads((out / MANIFEST).read_text()) == {"format": "nacscope.report",
                                                       "files": ["regions.png", "summary.md"]}
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]  # no staging folder left


def test_force_replaces_only_the_reports_own_files(tmp_path):
    out = tmp_path / "rep"
    write_report(ReportFolder(out, force=False), {"regions.png": b"old", "plane.png": b"old", "summary.md": b"old"})
    (out / "notes.txt").write_bytes(b"mine")
    (out / "data.h5").write_bytes(b"also mine")
    mine = {k: v for k, v in digests(out).items() if k in ("notes.txt", "data.h5")}
    with pytest.raises(OptionError, match="--force"):
        ReportFolder(out, force=False)
    write_report(ReportFolder(out, force=True), {"regions.png": b"new", "summary.md": b"new"})
    assert (out / "regions.png").read_bytes() == b"new" and (out / "summary.md").read_bytes() == b"new"
    assert not (out / "plane.png").exists()  # the old report's, not rewritten: removed
    assert {k: v for k, v in digests(out).items() if k in mine} == mine
    assert read_manifest(out) == {"regions.png", "summary.md"}
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, "regions.png", "summary.md", *mine])


@pytest.mark.parametrize("manifest", [None, "not json", json.dumps({"format": "other", "files": ["summary.md"]}),
                                      json.dumps({"format": "nacscope.report", "files": ["../escape"]})])
def test_a_file_the_manifest_does_not_list_is_refused_before_any_work(tmp_path, manifest):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "summary.md").write_text("the user's own summary")
    if manifest is not None:
        (out / MANIFEST).write_text(manifest)
    before = digests(out)
    with pytest.raises(OptionError, match="not written by nacscope report"):
        ReportFolder(out, force=True)
    assert digests(out) == before


def test_failed_report_leaves_the_folder_as_it_was(tmp_path):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    before = digests(out)
    folder = ReportFolder(out, force=True)
    tmp = folder.stage()
    (tmp / "regions.png").write_bytes(b"half")
    folder.discard()
    assert digests(out) == before and [p.name for p in out.iterdir()] == ["keep.txt"]


def test_empty_existing_folder_needs_no_force(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    write_report(ReportFolder(out, force=False), {"summary.md": b"s"})
    assert read_manifest(out) == {"summary.md"}


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_output_that_is_not_a_folder_is_refused(tmp_path, kind):
    out = tmp_path / "o"
    if kind == "file":
        out.write_text("x")
    else:
        (tmp_path / "real").mkdir()
        out.symlink_to(tmp_path / "real")
    with pytest.raises(OptionError, match="not a folder"):
        ReportFolder(out, force=True)


def test_report_file_name_that_is_a_folder_is_refused(tmp_path):
    out = tmp_path / "rep"
    (out / "summary.md").mkdir(parents=True)
    (out / MANIFEST).write_text(json.dumps({"format": "nacscope.report", "files": ["summary.md"]}))
    with pytest.raises(OptionError, match="not a regular file"):
        ReportFolder(out, force=True)
