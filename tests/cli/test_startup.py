"""The command line starts fast: importing it loads no heavy library (commands import them when run)."""

from __future__ import annotations

import pytest

from tests.helpers import invoke, modules_loaded_by

HEAVY = ["torch", "torchvision", "numpy", "h5py", "textual", "umap", "sklearn", "matplotlib", "numba", "scipy",
         "faiss", "pyarrow", "timm"]


def test_import_cli_loads_no_heavy_library():
    assert modules_loaded_by("import nacscope.cli", HEAVY) == []
    # The check can fail: a library module does load them.
    assert "numpy" in modules_loaded_by("import nacscope.cli; import nacscope.codes", HEAVY)


@pytest.mark.parametrize("args", [["--help"], ["dump", "--help"], ["inspect", "--help"]])
def test_help_loads_no_heavy_library(args):
    assert modules_loaded_by(f"from typer.testing import CliRunner\nfrom nacscope.cli import app\n"
                             f"r = CliRunner().invoke(app, {args!r})\nassert r.exit_code == 0, r.output",
                             HEAVY) == []
    assert invoke(*args).exit_code == 0
