"""Activation codes: the HDF5 code-set format, its cache, validation, and activation capture.

The capture and dump API (:mod:`nacscope.codes.capture`, :mod:`nacscope.codes.dump`) needs torch, so it
is imported on first use (module ``__getattr__``): ``import nacscope.codes`` stays torch-free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nacscope._lazy import lazy_exports

from nacscope.codes.cache import cached_keys, read_projection, write_cached, write_projection
from nacscope.codes.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    CodeSet,
    CodeSetWriter,
    LayerInfo,
    LayerSpec,
    open_codeset,
    pack_bits,
    packed_width,
    partial_path,
    unpack_bits,
)
from nacscope.data.protocols import PAPER_SEED, queries_per_class, query_mask

if TYPE_CHECKING:
    from nacscope.codes.capture import (
        Site,
        capture_bits,
        capture_preactivations,
        default_sites,
        list_sites,
        select_sites,
    )
    from nacscope.codes.dump import DumpInput, DumpStats, dump_codes
    from nacscope.codes.shards import dump_distributed, merge_shards
    from nacscope.codes.sources import load_inputs, load_network

#: Names imported on first access, from the module that defines them (these modules import torch).
_LAZY = {
    **dict.fromkeys(
        ("Site", "list_sites", "select_sites", "default_sites", "capture_bits", "capture_preactivations"),
        "nacscope.codes.capture",
    ),
    **dict.fromkeys(("dump_codes", "DumpInput", "DumpStats"), "nacscope.codes.dump"),
    **dict.fromkeys(("merge_shards", "dump_distributed"), "nacscope.codes.shards"),
    **dict.fromkeys(("load_inputs", "load_network"), "nacscope.codes.sources"),
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)


__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "PAPER_SEED",
    "CodeSet",
    "CodeSetWriter",
    "DumpInput",
    "DumpStats",
    "LayerInfo",
    "LayerSpec",
    "Site",
    "cached_keys",
    "capture_bits",
    "capture_preactivations",
    "default_sites",
    "dump_codes",
    "list_sites",
    "load_inputs",
    "load_network",
    "dump_distributed",
    "merge_shards",
    "open_codeset",
    "pack_bits",
    "packed_width",
    "partial_path",
    "queries_per_class",
    "query_mask",
    "read_projection",
    "select_sites",
    "unpack_bits",
    "write_cached",
    "write_projection",
]
