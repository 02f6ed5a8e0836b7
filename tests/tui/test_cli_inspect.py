"""``nacscope inspect`` on the command line: the summary without a terminal, and bad input."""

from __future__ import annotations

import pytest

from nacscope.analysis import analyze_codeset
from nacscope.codes import CodeSet
from tests.helpers import invoke, write_bad_codeset


def test_summary_without_a_terminal_shows_the_engines_numbers(digits_file):
    res = invoke("inspect", digits_file)  # CliRunner's stdout is not a terminal
    assert res.exit_code == 0, res.output
    with CodeSet(digits_file) as cs:
        ref = analyze_codeset(cs)  # cached by the command: the same numbers
    for name, m in ref["layers"].items():
        line = next(l for l in res.output.splitlines() if l.strip().startswith(name + " "))
        cells = line.split()
        assert cells[3] == f"{m['distinct_patterns']:,}"
        assert cells[-1] == f"{ref['retrieval'][name]['map']:.4f}"
    assert "1,797" in res.output and "digits" in res.output


def test_no_tui_without_analysis(digits_file):
    res = invoke("inspect", digits_file, "--no-tui", "--no-analyze")
    assert res.exit_code == 0, res.output
    assert "code" in res.output and "\u2026" in res.output  # numbers not computed
    with CodeSet(digits_file) as cs:
        from nacscope.codes import cached_keys

        assert cached_keys(cs) == []


def _corrupt(tmp_path):
    p = tmp_path / "corrupt.h5"
    p.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8)
    return p


def _truncated(tmp_path):
    from tests.tui.conftest import write_digits_codeset

    return write_bad_codeset(tmp_path / "truncated.h5", "truncated", write_digits_codeset(tmp_path / "whole.h5"))


@pytest.mark.parametrize(
    "make,expect",
    [
        (lambda t: t / "missing.h5", "file not found"),
        (_corrupt, "corrupt"),
        (_truncated, "corrupt"),
        (lambda t: write_bad_codeset(t / "plain.h5", "not_codeset"), "not a nacscope code set"),
        (lambda t: write_bad_codeset(t / "notes.h5", "not_hdf5"), "not an HDF5 file"),
        (lambda t: t, "directory"),
    ],
)
def test_bad_files_give_one_line(tmp_path, make, expect):
    res = invoke("inspect", make(tmp_path))
    assert res.exit_code == 2
    out = res.output.strip()
    assert len(out.splitlines()) == 1
    assert expect in out


def test_unknown_layer_lists_the_available_ones(digits_file):
    res = invoke("inspect", digits_file, "--layer", "nope")
    assert res.exit_code == 2
    assert "available: fc1, fc2, code" in res.output


def test_run_inspect_refuses_bad_input(tmp_path, digits_file):
    from nacscope.errors import CodeSetError, OptionError
    from nacscope.tui import run_inspect

    with pytest.raises(CodeSetError):
        run_inspect(tmp_path / "missing.h5")
    with pytest.raises(OptionError):
        run_inspect(digits_file, layer="nope")
