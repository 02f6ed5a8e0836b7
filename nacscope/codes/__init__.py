"""Activation codes: the HDF5 code-set format, its cache, validation, and activation capture."""

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

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "CodeSet",
    "CodeSetWriter",
    "LayerInfo",
    "LayerSpec",
    "cached_keys",
    "open_codeset",
    "pack_bits",
    "packed_width",
    "partial_path",
    "read_projection",
    "unpack_bits",
    "write_cached",
    "write_projection",
]
