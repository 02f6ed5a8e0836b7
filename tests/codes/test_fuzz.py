"""Fuzz: hundreds of deterministic mutations of one valid code set through every reading command.

Each mutated file (``fuzz_cases.all_cases``: wrong ranks, dtypes, widths and lengths of every
dataset, missing and extra members, attributes of the wrong type or absurd values, groups replaced by
datasets, external links, external storage and virtual datasets, truncations, flipped superblock
bytes, seeded random corruption, poisoned cache sidecars) goes through info, info --check,
analyze (without and with the cache), export, inspect --no-tui, compare and report, in-process.
Every command either exits 0 with results equal to what plain h5py reads from the file
(``fuzz_oracle``), or exits 2 with exactly one ``error:`` line; never a traceback, never a
multi-line warning, never a byte of a file outside the code set, and the code set is never changed.

The default run takes every 4th case through the core commands; ``-m slow`` runs the full matrix.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.codes.fuzz_cases import SECRET, Case, all_cases, build_base, copy_base
from tests.codes.fuzz_oracle import Reference, reference

CASES = all_cases()
DEFAULT_CASES = CASES[::4]
CORE = ("info", "check", "analyze", "analyze-cached", "export", "inspect")
HEAVY = ("compare", "report")
runner = CliRunner()


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """The valid code set, and its sidecar cache as ``analyze`` writes it."""
    path = build_base(tmp_path_factory.mktemp("fuzzbase") / "base.h5")
    r = _invoke(["analyze", path, "--json"])
    assert r.exit_code == 0, r.output
    assert path.with_name(path.name + ".cache").is_file()
    return path


def _invoke(args) -> "Run":
    from nacscope.cli import app

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = runner.invoke(app, [str(a) for a in args])
    printed = [line[len("warning: "):] for line in r.output.splitlines() if line.startswith("warning: ")]
    return Run(r, [str(w.message) for w in caught] + printed)  # the CLI prints warnings as one line each


class Run:
    def __init__(self, result, warned: list[str]) -> None:
        self.r, self.warned = result, warned
        self.exit_code, self.stdout, self.stderr, self.output = result.exit_code, result.stdout, result.stderr, result.output

    def assert_clean(self, what: str) -> None:
        """No traceback, no exception other than the exit, warnings one line each, no foreign bytes."""
        assert "Traceback" not in self.output, f"{what}: {self.output}"
        assert self.r.exception is None or isinstance(self.r.exception, SystemExit), \
            f"{what}: {type(self.r.exception).__name__}: {self.r.exception}"
        for w in self.warned:
            assert "\n" not in w.strip(), f"{what}: multi-line warning {w!r}"
        assert SECRET[:10].decode() not in self.output, f"{what}: printed bytes of a file outside the code set"

    def assert_refused(self, what: str) -> None:
        assert self.exit_code == 2, f"{what}: exit {self.exit_code}, expected 2\n{self.output}"
        lines = [ln for ln in self.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{what}: not one error line: {self.stderr!r}"
        assert not self.stdout.strip(), f"{what}: refused but printed {self.stdout!r}"


def _sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else None


def _commands(path: Path, out: Path, which: tuple[str, ...], layer: str) -> dict[str, list]:
    table = {
        "info": [["info", path]],
        "check": [["info", path, "--check"]],
        "analyze": [["analyze", path, "--json", "--no-cache"]],
        "analyze-cached": [["analyze", path, "--json"], ["analyze", path, "--json"]],
        "export": [["export", path, "-o", out / "x.npz", "--layer", layer]],
        "inspect": [["inspect", path, "--no-tui"]],
        "compare": [["compare", path, path, "--json", "--no-cache"]],
        "report": [["report", path, "-o", out / "rep", "--no-umap", "--no-plane", "--no-cache"]],
    }
    return {k: table[k] for k in which}


def run_case(case: Case, base: Path, tmp_path: Path, which: tuple[str, ...]) -> str:
    """Run the commands on the mutated file; return "refused" or "accepted" (after checking either)."""
    work = tmp_path / "w"
    work.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    path = copy_base(base, work, case.with_cache)
    case.mutate(path)
    before = _sha(path)
    runs: dict[str, list[Run]] = {}
    for key, argvs in _commands(path, out, which, "code").items():
        runs[key] = [_invoke(a) for a in argvs]
        for i, run in enumerate(runs[key]):
            run.assert_clean(f"{case.name}: {key}[{i}]")
    if case.name != "bytes.stale-write-flags":  # the one repair a reader makes: clearing stale write flags
        assert _sha(path) == before, f"{case.name}: a reading command changed the code set"
    opened = runs["info"][0].exit_code == 0
    if case.expect == "refuse":
        assert not opened, f"{case.name}: a malformed file was accepted\n{runs['info'][0].output}"
    if case.expect == "accept":
        assert opened, f"{case.name}: a valid file was refused: {runs['info'][0].output}"
    ref = _reference_or_none(path) if opened else None
    for key, rs in runs.items():
        for i, run in enumerate(rs):
            what = f"{case.name}: {key}[{i}]"
            if key == "check":
                _check_check(run, what, opened)
            elif run.exit_code == 0 and opened:
                assert ref is not None, f"{what}: accepted a file plain h5py cannot read"
                _check_result(key, run, ref, out, what, runs)
            else:
                if case.expect == "accept" and not (key == "export" and ref is not None and not ref.complete):  # export waits for the end
                    raise AssertionError(f"{what}: refused an acceptable file\n{run.output}")
                run.assert_refused(what)
    if case.name.startswith("cache.") and case.with_cache and "analyze-cached" in runs:
        assert any("cache" in w for r in runs["analyze-cached"] for w in r.warned) or case.name in _SILENT_CACHE \
            or case.name.startswith("cache.flip-"), \
            f"{case.name}: a poisoned cache was ignored without a warning"
    return "accepted" if opened else "refused"


# Sidecars that do not belong to the file (or are not there at all) are ignored without a word; a
# flipped byte may land where nothing is read (cache.flip-*): only the results are checked there.
_SILENT_CACHE = {"cache.codeset-attr-array", "cache.format-attr-array", "cache.directory", "cache.dangling-symlink",
                 "cache.params-int", "cache.n_samples-string", "cache.analysis-dataset"}


def _reference_or_none(path: Path) -> Reference | None:
    try:
        return reference(path)
    except Exception:  # noqa: BLE001 - the caller fails if a command accepted what h5py cannot read
        return None


def _check_check(run: Run, what: str, opened: bool) -> None:
    """``info --check``: exit 0 "valid", or exit 1 listing violations (one per line); 2 only where info is."""
    if run.exit_code == 0:
        assert opened and "valid" in run.stdout, what
    elif run.exit_code == 1:
        assert any(ln.startswith("x ") for ln in run.stdout.splitlines()), f"{what}: {run.output}"
    else:
        run.assert_refused(what)


def _check_result(key: str, run: Run, ref: Reference, out: Path, what: str, runs: dict) -> None:
    if key in ("info", "inspect"):
        for name in ref.layers:
            assert name in run.stdout, f"{what}: layer {name} missing"
        assert f"{ref.n:,}" in run.stdout, f"{what}: {ref.n} samples not shown"
    elif key in ("analyze", "analyze-cached"):
        res = json.loads(run.stdout)
        _check_analysis(res, ref, what)
        if key == "analyze-cached" and runs["analyze"][0].exit_code == 0:
            assert res == json.loads(runs["analyze"][0].stdout), f"{what}: cached results differ from recomputed"
    elif key == "export":
        z = np.load(out / "x.npz")
        assert "code" in ref.layers
        np.testing.assert_array_equal(z["codes"], ref.bits["code"], err_msg=what)
        np.testing.assert_array_equal(z["index"], ref.index, err_msg=what)
        if ref.labels is not None:
            np.testing.assert_array_equal(z["labels"], ref.labels, err_msg=what)
        if ref.is_query is not None:
            np.testing.assert_array_equal(z["is_query"], ref.is_query, err_msg=what)
        assert SECRET[:10] not in (out / "x.npz").read_bytes()
    elif key == "compare":
        res = json.loads(run.stdout)
        for r in res["results"]:
            _check_analysis(r, ref, what)
    elif key == "report":
        summary = (out / "rep" / "summary.md").read_text()
        for name in ref.layers:
            assert name in summary, f"{what}: layer {name} not in summary.md"


def _check_analysis(res: dict, ref: Reference, what: str) -> None:
    assert res["n_samples"] == ref.n, what
    assert list(res["layers"]) == ref.layers, what
    for name in ref.layers:
        L = res["layers"][name]
        assert L["n_bits"] == ref.units[name], what
        assert L["distinct_patterns"] == ref.distinct[name], f"{what}: {name} distinct {L['distinct_patterns']} != {ref.distinct[name]}"
    assert res["split"] == ref.split, what
    for name, m in ref.maps.items():
        assert res["retrieval"][name]["map"] == pytest.approx(m, abs=1e-9), f"{what}: {name} mAP"


@pytest.mark.parametrize("case", DEFAULT_CASES, ids=[c.name for c in DEFAULT_CASES])
def test_mutation_core_commands(case, base, tmp_path, record_property):
    record_property("outcome", run_case(case, base, tmp_path, ("info", "check", "analyze", "export")))


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_mutation_every_command(case, base, tmp_path, record_property):
    # report (a folder of figures per file) on every third case: all of them took 15 min of CI on 2 cores
    commands = ("info",) + CORE[1:] + (HEAVY if CASES.index(case) % 3 == 0 else HEAVY[:1])
    record_property("outcome", run_case(case, base, tmp_path, commands))


def test_the_base_file_passes_every_command(base, tmp_path):
    """The oracle agrees with nacscope on the unmutated file (so a mismatch elsewhere is the mutation's)."""
    ref = reference(base)
    assert ref.n == 200 and ref.layers == ["pix", "code"] and ref.split == "query"
    assert 0 < ref.distinct["code"] < ref.distinct["pix"] <= 200
    ok = Case("base", "accept", lambda p: None, with_cache=True)
    assert run_case(ok, base, tmp_path, ("info", "check") + CORE[2:] + HEAVY) == "accepted"


def test_the_table_is_big_enough():
    assert len(CASES) >= 300 and len(DEFAULT_CASES) >= 100
    assert {c.expect for c in CASES} == {"refuse", "accept", "either"}
