"""SIGKILL at many write points of analyze, dump, import-codes and export: nothing is ever lost.

Each command first runs to the end once under ``tests/codes/killpoint.py``, which counts its write
events (files opened for writing, renames, removals, and every HDF5 write: datasets and groups created,
rows written, resizes, attributes, copies, flushes, closes). Then, for at least 20 event numbers K spread
over that count, a fresh copy of the same folder is made and the command is run again and killed with
SIGKILL just before its K-th write. Afterwards:

* every input and every file that existed before is bit-identical (SHA-256), or, for an output the
  command was asked to replace (``--force``) and the analysis cache, replaced by a complete valid one;
* any new file is absent, labelled ``.partial`` (or the cache's hidden ``.<name>.cache.*.tmp`` / its lock),
  or complete, valid and equal to what an uninterrupted run writes;
* the next run of the command (after every 5th kill and the last) succeeds and leaves no temporary file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.codes.fuzz_cases import build_base
from tests.helpers import hang_guard

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
MIN_KILLS = 20
#: Every how many kills the command is run again to the end (it must succeed and clean up).
RERUN_EVERY = 5


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.name: _sha(p) for p in folder.iterdir() if p.is_file()}


def _run(folder: Path, args: list[str], kill_at: int = 0, events: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NACSCOPE_TEST_KILL_DIR": str(folder),
           "NACSCOPE_TEST_KILL_AT": str(kill_at), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("NACSCOPE_TEST_EVENTS", None)
    if events is not None:
        env["NACSCOPE_TEST_EVENTS"] = str(events)
    return subprocess.run([sys.executable, "-m", "tests.codes.killpoint", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=hang_guard(600))


def _kill_points(n_events: int, want: int = MIN_KILLS + 1) -> list[int]:
    """``want`` event numbers spread evenly over 1..n_events (all of them if there are fewer)."""
    return sorted({int(round(x)) for x in np.linspace(1, n_events, min(want, n_events))})


def _clean_partial(name: str) -> bool:
    return name.endswith(".partial") or (name.startswith(".") and ".cache." in name and name.endswith(".tmp")) \
        or name.endswith(".cache.lock")


class Scenario:
    """A folder to copy before each run, the command, and how to check each file afterwards."""

    def __init__(self, setup: Path, args: list[str], replaced: set[str], check) -> None:
        self.setup, self.args, self.replaced, self.check = setup, args, replaced, check
        #: Per trial: what the kill left ("partial" files, "old" outputs kept, "new" outputs complete).
        self.seen: set[str] = set()

    def trial(self, work: Path, kill_at: int, reference: dict[str, Path], rerun: bool) -> None:
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(self.setup, work, symlinks=True)
        before = _snapshot(work)
        r = _run(work, self.args, kill_at)
        assert r.returncode == -signal.SIGKILL, f"K={kill_at}: not killed (rc {r.returncode})\n{r.stderr[-2000:]}"
        after = {p.name for p in work.iterdir()}
        for name, sha in before.items():
            p = work / name
            if name in self.replaced:
                assert p.is_file(), f"K={kill_at}: {name} was lost"
                if _sha(p) != sha:
                    self.check(p, reference[name], f"K={kill_at}: replaced {name}")
                    self.seen.add("new")
                else:
                    self.seen.add("old")
            else:
                assert p.is_file() and _sha(p) == sha, f"K={kill_at}: pre-existing {name} changed or lost"
        for name in sorted(after - set(before)):
            if _clean_partial(name):
                self.seen.add("partial")
                continue
            self.seen.add("new")
            assert name in reference, f"K={kill_at}: unexpected new file {name}"
            self.check(work / name, reference[name], f"K={kill_at}: new {name}")
        if not rerun:
            return
        # The next run finishes and cleans up after the killed one.
        r = _run(work, self.args)
        assert r.returncode == 0, f"K={kill_at}: the run after the kill failed\n{r.stderr[-2000:]}"
        leftovers = [p.name for p in work.iterdir() if _clean_partial(p.name) and not p.name.endswith(".lock")]
        assert not leftovers, f"K={kill_at}: temporary files left after a clean run: {leftovers}"
        for name, ref in reference.items():
            if name in before and name not in self.replaced:
                assert _sha(work / name) == before[name], f"K={kill_at}: the rerun changed the input {name}"
            else:
                self.check(work / name, ref, f"K={kill_at}: after the rerun {name}")


def _same_codeset(p: Path, ref: Path, what: str) -> None:
    from nacscope.codes.validate import validate

    assert validate(p) == [], f"{what}: {validate(p)}"
    with h5py.File(p, "r", locking=False) as a, h5py.File(ref, "r", locking=False) as b:
        assert sorted(a["layers"]) == sorted(b["layers"]), what
        for k in b["layers"]:
            np.testing.assert_array_equal(a["layers"][k]["bits"][()], b["layers"][k]["bits"][()], err_msg=what)
        for k in b["samples"]:
            np.testing.assert_array_equal(a["samples"][k][()], b["samples"][k][()], err_msg=what)


def _same_arrays(p: Path, ref: Path, what: str) -> None:
    if p.suffix == ".npz":
        with np.load(p) as a, np.load(ref) as b:
            assert sorted(a.files) == sorted(b.files), what
            for k in b.files:
                np.testing.assert_array_equal(a[k], b[k], err_msg=what)
    else:
        np.testing.assert_array_equal(np.load(p), np.load(ref), err_msg=what)


def _run_and_count(scn: Scenario, tmp_path: Path) -> tuple[dict[str, Path], int]:
    """An uninterrupted run: the reference outputs and the number of write events."""
    ref = tmp_path / "ref"
    shutil.copytree(scn.setup, ref, symlinks=True)
    events = tmp_path / "events.txt"
    r = _run(ref, scn.args, events=events)
    assert r.returncode == 0, r.stderr[-3000:]
    n = len(events.read_text().splitlines())
    outputs = {p.name: p for p in ref.iterdir() if p.is_file() and not _clean_partial(p.name)}
    return outputs, n


def _kill_matrix(scn: Scenario, tmp_path: Path, points: slice = slice(None)) -> int:
    reference, n_events = _run_and_count(scn, tmp_path)
    ks = _kill_points(n_events)[points]
    for i, k in enumerate(ks):
        scn.trial(tmp_path / "work", k, reference, rerun=i % RERUN_EVERY == 0 or i == len(ks) - 1)
    # The kill points reached the writes: some kills left temporary files, others the old or new result.
    assert "partial" in scn.seen, scn.seen
    if scn.replaced:  # an output being replaced was seen intact in the middle of the write
        assert "old" in scn.seen, scn.seen
    return len(ks)


# -- scenarios -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def codeset(tmp_path_factory) -> Path:
    return build_base(tmp_path_factory.mktemp("killbase") / "c.h5")


def _analyze_scenario(codeset: Path, folder: Path) -> Scenario:
    """analyze over a code set whose sidecar already holds one layer's results (it is rewritten per entry)."""
    folder.mkdir(parents=True)
    shutil.copyfile(codeset, folder / "c.h5")
    r = _run(folder, ["analyze", "c.h5", "--layer", "code", "--json"])
    assert r.returncode == 0, r.stderr
    expected = json.loads(r.stdout)["layers"]["code"]

    def check(p: Path, ref: Path, what: str) -> None:
        assert p.name == "c.h5.cache", what
        from nacscope.codes import CodeSet
        from nacscope.analysis import analyze_codeset

        with CodeSet(p.with_name("c.h5")) as cs:
            assert analyze_codeset(cs, ["code"], use_cache=True)["layers"]["code"] == expected, what

    return Scenario(folder, ["analyze", "c.h5", "--json"], {"c.h5.cache"}, check)


def _import_scenario(folder: Path) -> Scenario:
    from sklearn.datasets import load_digits

    folder.mkdir()
    d = load_digits()
    np.savez(folder / "in.npz", code=d.data > 7, coarse=d.data > 3)
    np.save(folder / "labels.npy", d.target)
    np.save(folder / "q.npy", np.arange(len(d.target)) % 10 == 0)
    r = _run(folder, ["import-codes", "in.npz", "-o", "out.h5", "--labels", "labels.npy"])  # the old output
    assert r.returncode == 0, r.stderr
    return Scenario(folder, ["import-codes", "in.npz", "-o", "out.h5", "--labels", "labels.npy", "--query-mask", "q.npy",
                             "--force"], {"out.h5"}, _same_codeset)


def _dump_scenario(folder: Path) -> Scenario:
    folder.mkdir()
    args = ["dump", "--random-init", "--arch", "mlp", "--bits", "16", "--dataset", "digits", "-o", "d.h5",
            "--device", "cpu", "--batch-size", "48", "--thumbnails", "0", "--force"]
    return Scenario(folder, args, set(), _same_codeset)


def _export_scenario(codeset: Path, folder: Path, fmt: str) -> Scenario:
    folder.mkdir(parents=True)
    shutil.copyfile(codeset, folder / "c.h5")
    out = f"e.{fmt}"
    r = _run(folder, ["export", "c.h5", "-o", out, "--layer", "pix"])  # the old output, replaced below
    assert r.returncode == 0, r.stderr
    replaced = {p.name for p in folder.iterdir() if p.name.startswith("e.")}
    return Scenario(folder, ["export", "c.h5", "-o", out, "--layer", "code", "--force"], replaced, _same_arrays)


# -- tests -----------------------------------------------------------------------------------------
def test_kill_analyze_cache_writes(codeset, tmp_path):
    assert _kill_matrix(_analyze_scenario(codeset, tmp_path / "setup"), tmp_path) >= MIN_KILLS


@pytest.mark.parametrize("half", [0, 1])
def test_kill_dump(tmp_path, half):
    """Split in two halves (even and odd kill points) so that two workers share the slowest command."""
    assert _kill_matrix(_dump_scenario(tmp_path / "setup"), tmp_path, slice(half, None, 2)) >= MIN_KILLS // 2


def test_kill_import_codes(tmp_path):
    assert _kill_matrix(_import_scenario(tmp_path / "setup"), tmp_path) >= MIN_KILLS


def test_kill_export(codeset, tmp_path):
    """npz (one file) and npy (four sidecars renamed one after another): together >= 20 kill points."""
    n = _kill_matrix(_export_scenario(codeset, tmp_path / "npz" / "setup", "npz"), tmp_path / "npz")
    n += _kill_matrix(_export_scenario(codeset, tmp_path / "npy" / "setup", "npy"), tmp_path / "npy")
    assert n >= MIN_KILLS
