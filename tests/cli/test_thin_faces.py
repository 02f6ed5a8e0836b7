"""Every command is a thin face: it parses, calls the library, renders (at most 40 lines of body)."""

from __future__ import annotations

import ast
from pathlib import Path

import nacscope.cli
import pytest

CLI = Path(nacscope.cli.__file__).parent
MAX_BODY = 40


def commands() -> list[tuple[str, ast.FunctionDef]]:
    """Every function decorated with ``@app.command`` in the CLI package."""
    found = []
    for path in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "command" for d in node.decorator_list
            ):
                found.append((f"{path.name}:{node.name}", node))
    return found


def test_the_cli_has_its_commands():
    names = {name.split(":")[1] for name, _ in commands()}
    assert {"dump_cmd", "train_cmd", "regions_cmd", "demo_cmd", "compare", "analyze", "report"} <= names


@pytest.mark.parametrize("name, node", commands(), ids=[n for n, _ in commands()])
def test_command_body_is_short(name, node):
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):  # the docstring
        first = node.body[1] if len(node.body) > 1 else first
    lines = node.end_lineno - first.lineno + 1
    assert lines <= MAX_BODY, f"{name}: {lines} lines; move the work into the library"
