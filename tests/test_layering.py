"""The package's import structure: no cycles between modules, and private names stay private.

The layer order itself (faces -> engines -> codes -> nets/data -> leaves) is import-linter's contract in
``pyproject.toml``, run by ``.ci/run`` as ``lint-imports``; these two rules are not expressible there.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nacscope"


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative: the components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = set()
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.add(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    out.append(comp)
    return out


def test_strongly_connected_finds_a_cycle():
    # The checker itself: a 3-cycle and a separate chain.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _strongly_connected(graph) == [{"a", "b", "c"}]


def test_no_import_cycles_between_modules():
    g = grimp.build_graph("nacscope", exclude_type_checking_imports=True)
    graph = {m: {i for i in g.find_modules_directly_imported_by(m) if i.startswith("nacscope")} for m in g.modules}
    # A package's __init__ re-exporting its submodules is not a cycle of concepts.
    for m, deps in graph.items():
        deps.difference_update({d for d in deps if m.startswith(d + ".")})
    assert _strongly_connected(graph) == []


def _private_imports(path: Path) -> list[str]:
    """``from nacscope.x import _name`` lines of one file (names private to another module)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nacscope"):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    target = f"{node.module}.{alias.name}"
                    # A private *module* may be used inside its own package (e.g. analysis._kernels).
                    parent = node.module
                    if module.startswith(parent + ".") or module == parent:
                        if (PACKAGE.parent / Path(*target.split("."))).with_suffix(".py").exists():
                            continue
                    found.append(f"{module}:{node.lineno} imports {target}")
    return found


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_private_names_stay_private(path):
    assert _private_imports(path) == []
