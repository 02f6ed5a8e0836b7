"""Usage errors (unknown command or option, missing argument, bad value) and OS errors: one line each."""

from __future__ import annotations

import errno
import os

import pytest
import typer
from typer.testing import CliRunner

from tests.helpers import assert_one_line_error, invoke

USAGE_CASES = [
    (["bogus"], "no such command 'bogus'", "nacscope"),
    (["--bogus"], "no such option: --bogus", "nacscope"),
    (["export"], "missing argument 'file'", "nacscope export"),
    (["export", "x.h5", "--bogus"], "no such option: --bogus", "nacscope export"),
    (["export", "x.h5", "-o"], "option '-o' requires an argument", "nacscope export"),
    (["dump", "m.pt"], "missing option '--dataset'", "nacscope dump"),
    (["train", "--bits", "abc"], "invalid value for '--bits'", "nacscope train"),
    (["train", "--sync-bn=3"], "does not take a value", "nacscope train"),
    (["analyze", "a.h5", "--nn-rows", "x"], "invalid value for '--nn-rows'", "nacscope analyze"),
    (["compare"], "missing argument 'files'", "nacscope compare"),
    (["report", "a.h5"], "missing option '--out'", "nacscope report"),
    (["regions", "--pairs"], "option '--pairs' requires an argument", "nacscope regions"),
    (["inspect", "--nope"], "no such option: --nope", "nacscope inspect"),
    (["info", "a.h5", "b.h5"], "unexpected extra argument", "nacscope info"),
]


@pytest.mark.parametrize("argv, message, command", USAGE_CASES, ids=[" ".join(c[0]) for c in USAGE_CASES])
def test_usage_error_is_one_line_with_a_hint(argv, message, command):
    r = invoke(*argv)
    assert_one_line_error(r, message, f"(see {command} --help)")
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert "Usage:" not in r.output


def test_help_is_still_the_full_usage():
    r = invoke("export", "--help")
    assert r.exit_code == 0 and "Usage:" in r.output and "--format" in r.output
    r = invoke()  # no command: the help, as before
    assert "Usage:" in r.output and "export" in r.output


def _raising(exc: BaseException) -> typer.Typer:
    from nacscope.cli._common import one_line_errors

    app = typer.Typer()

    @app.command()
    @one_line_errors
    def boom() -> None:
        raise exc

    return app


@pytest.mark.parametrize("exc, expected", [
    (OSError(errno.EROFS, os.strerror(errno.EROFS), "/ro/out.h5"), f"error: cannot write /ro/out.h5: {os.strerror(errno.EROFS)}"),
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/full/x.npz"), f"error: cannot write /full/x.npz: {os.strerror(errno.ENOSPC)}"),
    (IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), "/r/last.pt.partial", None, "/r/last.pt"),
     f"error: cannot write /r/last.pt: {os.strerror(errno.EISDIR)}"),  # os.replace(tmp, dst) names dst
    (OSError("Unable to synchronously create file (unable to open file)\nsecond line"),
     "error: cannot write output: Unable to synchronously create file (unable to open file)"),
    (PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/ro/run"), "error: permission denied: /ro/run"),
    (FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), "/no/such.h5"), "error: file not found: /no/such.h5"),
])
def test_every_os_error_is_one_line_naming_path_and_reason(exc, expected):
    r = CliRunner().invoke(_raising(exc), [])
    assert r.exit_code == 2, r.output
    assert r.output.strip() == expected
