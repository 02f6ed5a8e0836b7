"""Several processes on one code set, real subprocesses (issue 16): concurrent analyses and cache writers,
analyses of a file being dumped and of a killed dump's ``.partial``, and poisoned cache entries.

Every wait polls for an event (a file, rows in it, a process exiting); :func:`tests.helpers.hang_guard`
(scaled by ``$NACSCOPE_TEST_TIME_SCALE``) only turns a hang into a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

from nacscope._files import partial_path
from nacscope.codes import CodeSet
from nacscope.codes import cache as cache_mod
from tests.helpers import hang_guard

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200",
       "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
DUMP_ROWS = 1797  # digits --split all
DUMP = ["dump", "--random-init", "--arch", "resnet18", "--bits", "16", "--dataset", "digits", "--split", "all",
        "--batch-size", "16", "--device", "cpu", "--thumbnails", "0", "--no-features"]


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nacscope", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)


def _finish(p: subprocess.Popen) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=hang_guard())
    assert "Traceback" not in err, err
    return p.returncode, out, err


def _run(*args: str) -> tuple[int, str, str]:
    return _finish(_start(*args))


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


def _strip(result: dict) -> dict:
    """A result without its file name (copies of one code set differ only there)."""
    return {k: v for k, v in result.items() if k != "file"}


@pytest.fixture(scope="module")
def reference(digits_codeset):
    """``analyze --json`` of the digits code set, computed in this process without any cache."""
    from nacscope.analysis import analyze_codeset

    with CodeSet(digits_codeset) as cs:
        return json.loads(json.dumps(_strip(analyze_codeset(cs, use_cache=False))))


def _copy(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


def _cache_is_valid(path: Path, reference: dict) -> None:
    """The sidecar reads back cleanly (every entry's digest checks) and gives the reference result."""
    from nacscope.analysis import analyze_codeset

    assert not list(path.parent.glob(f".{path.name}.cache.*.tmp")), "a cache writer left its temporary file"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with CodeSet(path) as cs:
            keys = cache_mod.cached_keys(cs)
            assert {"cumulative", "layer.fc1", "layer.fc2", "retrieval.fc1", "retrieval.fc2"} <= set(keys)
            for key in keys:
                with h5py.File(cache_mod.cache_path(path), "r") as f:
                    params = json.loads(f["analysis"][key].attrs["params"])
                assert cs.cached(key, params) is not None, key
            assert json.loads(json.dumps(_strip(analyze_codeset(cs)))) == reference


# -------------------------------------------------------------------------------------------------
# two processes on one finished file
# -------------------------------------------------------------------------------------------------
def test_two_analyze_at_once_agree_and_leave_a_valid_cache(tmp_path, digits_codeset, reference):
    for trial in range(4):
        path = _copy(digits_codeset, tmp_path / f"t{trial}.h5")  # no cache yet: both compute and write
        procs = [_start("analyze", path, "--json") for _ in range(2)]
        runs = [_finish(p) for p in procs]
        for rc, out, err in runs:
            assert rc == 0 and err == "", (trial, err)
            assert _strip(json.loads(out)) == reference, trial
        _cache_is_valid(path, reference)


def test_analyze_inspect_and_info_at_once(tmp_path, digits_codeset, reference):
    for trial in range(2):
        path = _copy(digits_codeset, tmp_path / f"t{trial}.h5")
        procs = [_start("analyze", path, "--json"), _start("inspect", "--no-tui", path), _start("info", path)]
        (rc_a, out_a, err_a), (rc_i, out_i, err_i), (rc_f, out_f, err_f) = [_finish(p) for p in procs]
        assert (rc_a, rc_i, rc_f) == (0, 0, 0), (err_a, err_i, err_f)
        assert err_a == err_i == err_f == ""
        assert _strip(json.loads(out_a)) == reference
        assert "1797" in out_i.replace(",", "") and "1797" in out_f.replace(",", "")
        _cache_is_valid(path, reference)


_READ_WRITE = r"""
import json, sys, time, warnings
from pathlib import Path
import numpy as np
from nacscope.codes import CodeSet
from nacscope.codes import cache
role, path, n, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
warnings.simplefilter("error")  # a CacheWarning (unreadable sidecar, corrupt entry) counts as a failure
if role != "reader":
    for i in range(n):
        with CodeSet(path) as cs:
            assert cache.write_cached(cs, f"{role}.{i}", {"i": i}, {"v": i}, {"a": np.arange(4000) + i})
    print(json.dumps({"written": n}))
    sys.exit()
ok, failures, seen = 0, [], set()
while not stop.exists():
    try:
        with CodeSet(path) as cs:
            keys = set(cache.cached_keys(cs))
            assert seen <= keys, f"entries vanished: {sorted(seen - keys)}"
            for key in sorted(keys)[-4:]:
                i = int(key.split(".")[1])
                hit = cs.cached(key, {"i": i})
                assert hit is not None and hit["result"] == {"v": i}, key
                np.testing.assert_array_equal(hit["arrays"]["a"], np.arange(4000) + i)
            seen |= keys
        ok += 1
    except Exception as exc:
        failures.append(f"{type(exc).__name__}: {exc}"[:200])
print(json.dumps({"ok": ok, "failures": failures, "seen": len(seen)}))
"""


def test_readers_never_fail_while_two_writers_store_results(tmp_path, digits_codeset):
    """Two cache writers (the lock serialises them: no entry lost) and two readers in a tight loop."""
    path = _copy(digits_codeset, tmp_path / "c.h5")
    stop = tmp_path / "stop"
    script = tmp_path / "rw.py"
    script.write_text(_READ_WRITE)

    def start(role: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, str(script), role, str(path), "25", str(stop)], env=ENV,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    readers = [start("reader"), start("reader")]
    writers = [start("wa"), start("wb")]
    for w in writers:
        out, err = w.communicate(timeout=hang_guard())
        assert w.returncode == 0, err
    stop.touch()
    stats = []
    for r in readers:
        out, err = r.communicate(timeout=hang_guard())
        assert r.returncode == 0, err
        stats.append(json.loads(out))
    for s in stats:
        assert s["failures"] == [] and s["ok"] > 0, s
    with CodeSet(path) as cs:  # every entry of both writers survived the other's rewrites
        assert cache_mod.cached_keys(cs) == sorted([f"wa.{i}" for i in range(25)] + [f"wb.{i}" for i in range(25)])
        for i in (0, 24):
            assert cs.cached(f"wb.{i}", {"i": i})["result"] == {"v": i}


# -------------------------------------------------------------------------------------------------
# a file being dumped, a killed dump
# -------------------------------------------------------------------------------------------------
def _rows(partial: Path) -> int:
    """Rows every per-sample array of a ``.partial`` holds, read in this process; 0 if not readable yet."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with CodeSet(partial) as cs:
                return cs.n_samples
    except Exception:  # noqa: BLE001 - the writer may not have created the datasets yet
        return 0


def _dump_until_rows(out: Path) -> subprocess.Popen:
    """Start ``nacscope dump`` and return once its ``.partial`` holds rows (the dump still running)."""
    p = _start(*DUMP, "-o", out)
    deadline = time.monotonic() + hang_guard()
    while p.poll() is None and time.monotonic() < deadline and _rows(partial_path(out)) == 0:
        time.sleep(0.05)
    assert p.poll() is None, p.communicate()[1]
    return p


def _expected_codes(partial: Path, n: int) -> dict[str, int]:
    """Distinct patterns per layer of the first ``n`` rows, read with h5py (the independent reference)."""
    with h5py.File(partial, "r", swmr=True, locking=False) as f:
        return {name: len(np.unique(f["layers"][name]["bits"][:n], axis=0)) for name in f["layers"]}


def _check_partial_result(result: dict, n: int, distinct: dict[str, int], state: str) -> None:
    assert result["n_samples"] == n
    for name, block in result["layers"].items():
        assert block["n_samples"] == n and block["distinct_patterns"] == distinct[name], name
    for block in result["retrieval"].values():
        assert block["n_queries"] == n  # leave-one-out on the rows flushed, labels cut to the same length
    assert f"{state}: {n:,} of {DUMP_ROWS:,} rows" in result["notes"][0]


def test_analyze_of_a_dump_in_progress_then_of_the_killed_dump(tmp_path, digits_codeset):
    out = tmp_path / "d.h5"
    partial = partial_path(out)
    p = _dump_until_rows(out)
    p.send_signal(signal.SIGSTOP)  # freeze the writer: the rows on disk stay put while we look
    try:
        n = _rows(partial)
        assert 0 < n < DUMP_ROWS
        distinct = _expected_codes(partial, n)
        rc, stdout, err = _run("analyze", out, "--json")  # the final name falls back to the .partial
        assert rc == 0
        assert _warnings(err) == [f"warning: d.h5.partial: dump in progress: {n:,} of {DUMP_ROWS:,} rows; "
                                  "analysing the rows flushed so far"], err
        _check_partial_result(json.loads(stdout), n, distinct, "dump in progress")
        for args in (["inspect", "--no-tui", partial], ["info", partial]):
            rc, stdout, err = _run(*args)
            assert rc == 0 and len(_warnings(err)) == 1 and f"dump in progress: {n:,} of" in err, err
            assert f"{n:,}" in stdout or str(n) in stdout
    finally:
        p.kill()  # SIGKILL mid-dump (a stopped process dies too)
        p.communicate(timeout=hang_guard())
    assert partial.exists() and not out.exists()
    line = f"warning: d.h5.partial: interrupted dump: {n:,} of {DUMP_ROWS:,} rows; analysing the rows flushed so far"
    rc, stdout, err = _run("analyze", partial, "--json")
    assert rc == 0 and _warnings(err) == [line], err
    _check_partial_result(json.loads(stdout), n, distinct, "interrupted dump")
    full = _copy(digits_codeset, tmp_path / "full.h5")
    rc, stdout, err = _run("compare", partial, full, "--json")
    assert rc == 0 and _warnings(err) == [line], err
    res = json.loads(stdout)
    assert res["results"][0]["n_samples"] == n and res["results"][1]["n_samples"] == 1797
    assert "interrupted dump" in res["results"][0]["notes"][0]
    assert not any("interrupted" in note for note in res["results"][1]["notes"])
    rc, stdout, err = _run("report", partial, "-o", tmp_path / "rep", "--no-umap", "--no-plane")
    assert rc == 0 and _warnings(err) == [line], err
    summary = (tmp_path / "rep" / "summary.md").read_text()
    assert f"interrupted dump: {n:,} of {DUMP_ROWS:,} rows" in summary
    assert not cache_mod.cache_path(partial).exists()  # nothing cached for a file that is not finished


def test_analyze_while_a_dump_runs(tmp_path):
    """Analyses started while the dump appends: each one is labelled and consistent, or sees the finished file."""
    out = tmp_path / "d.h5"
    p = _dump_until_rows(out)
    caught = finished = 0
    while caught < 2:
        alive = p.poll() is None
        rc, stdout, err = _run("analyze", out, "--json")
        assert rc == 0, err
        result = json.loads(stdout)
        n = result["n_samples"]
        if n == DUMP_ROWS and not _warnings(err):
            finished += 1
            break
        caught += 1
        assert alive
        assert _warnings(err) == [f"warning: d.h5.partial: dump in progress: {n:,} of {DUMP_ROWS:,} rows; "
                                  "analysing the rows flushed so far"], err
        for block in result["layers"].values():
            assert block["n_samples"] == n
        for block in result["retrieval"].values():
            assert block["n_queries"] == n
    p.kill()
    p.communicate(timeout=hang_guard())
    assert caught >= 1


# -------------------------------------------------------------------------------------------------
# poisoned caches
# -------------------------------------------------------------------------------------------------
def _poison(side: Path, case: str) -> str:
    """Damage the sidecar; returns a fragment of the warning it must cause."""
    if case == "truncated sidecar":
        with open(side, "r+b") as fh:
            fh.truncate(side.stat().st_size // 2)
        return "is unreadable"
    with h5py.File(side, "r+") as f:
        entry = f["analysis/layer.fc1"]
        if case == "bad JSON":
            entry.attrs["result"] = "{not json"
        elif case == "valid JSON of the wrong shape":
            f["analysis/cumulative"].attrs["result"] = '{"fc1": 3}'
            return "corrupt cache entry analysis/cumulative"
        elif case == "missing arrays":
            for name in list(entry):
                del entry[name]
    return "corrupt cache entry analysis/layer.fc1"


@pytest.fixture(scope="module")
def cached_copy(tmp_path_factory, digits_codeset):
    """A copy of the digits code set with a full cache (analyses and retrieval) beside it."""
    from nacscope.analysis import analyze_codeset

    path = _copy(digits_codeset, tmp_path_factory.mktemp("cached") / "c.h5")
    with CodeSet(path) as cs:
        analyze_codeset(cs)
    return path


_CASES = ["bad JSON", "valid JSON of the wrong shape", "missing arrays", "truncated sidecar"]
# Every poison through analyze, and every command with two of them (report is the slow one).
_POISONINGS = ([("analyze", c) for c in _CASES] + [("inspect", c) for c in _CASES[2:]]
               + [("compare", c) for c in _CASES[:2]] + [("report", c) for c in _CASES[1:3]])


@pytest.mark.parametrize(("command", "case"), _POISONINGS)
def test_poisoned_cache_is_recomputed_with_one_warning(tmp_path, cached_copy, reference, case, command):
    path = _copy(cached_copy, tmp_path / "c.h5")
    side = cache_mod.cache_path(path)
    shutil.copyfile(cache_mod.cache_path(cached_copy), side)
    fragment = _poison(side, case)
    args = {"analyze": ["analyze", path, "--json"], "inspect": ["inspect", "--no-tui", path],
            "compare": ["compare", path, path, "--json"],
            "report": ["report", path, "-o", tmp_path / "rep", "--no-umap", "--no-plane"]}[command]
    rc, out, err = _run(*args)
    assert rc == 0, err
    lines = _warnings(err)
    assert len(lines) == 1 and fragment in lines[0] and ("recomput" in lines[0] or "rewritten" in lines[0]), err
    assert not [ln for ln in err.splitlines() if "Traceback" in ln or ln.startswith(("error", "  File"))], err
    if command == "analyze":
        assert _strip(json.loads(out)) == reference
    elif command == "compare":
        assert [_strip(r) for r in json.loads(out)["results"]] == [reference, reference]
    elif command == "report":
        assert (tmp_path / "rep" / "summary.md").is_file()
    else:
        assert "1797" in out.replace(",", "")
    # The recomputed entries replaced the poisoned ones: the next run reads them back without a word.
    rc, out, err = _run("analyze", path, "--json")
    assert rc == 0 and err == "" and _strip(json.loads(out)) == reference
