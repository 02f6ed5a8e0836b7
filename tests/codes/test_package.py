"""``nacscope.codes``: its capture/dump API is re-exported lazily, so importing the package stays torch-free."""

from __future__ import annotations

import importlib

import pytest

import nacscope.codes
from tests.helpers import modules_loaded_by

LAZY = [(name, "nacscope.codes.capture") for name in
        ("Site", "list_sites", "select_sites", "default_sites", "capture_bits", "capture_preactivations")]
LAZY += [(name, "nacscope.codes.dump") for name in ("dump_codes", "DumpInput", "DumpStats")]
LAZY += [(name, "nacscope.codes.shards") for name in ("merge_shards", "dump_distributed")]


def test_import_is_torch_free():
    assert modules_loaded_by("import nacscope.codes", ["torch"]) == []
    # The check can fail: touching a lazy name does import torch.
    assert modules_loaded_by("import nacscope.codes; nacscope.codes.Site", ["torch"]) == ["torch"]


@pytest.mark.parametrize("name, module", LAZY)
def test_lazy_name_is_the_defining_modules_object(name, module):
    assert getattr(nacscope.codes, name) is getattr(importlib.import_module(module), name)
    assert name in nacscope.codes.__all__ and name in dir(nacscope.codes)


def test_every_public_name_resolves():
    for name in nacscope.codes.__all__:
        assert getattr(nacscope.codes, name) is not None, name
    from nacscope.codes.protocols import PAPER_SEED, queries_per_class, query_mask

    assert (nacscope.codes.PAPER_SEED, nacscope.codes.query_mask, nacscope.codes.queries_per_class) == (
        PAPER_SEED, query_mask, queries_per_class)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        nacscope.codes.nope  # noqa: B018
