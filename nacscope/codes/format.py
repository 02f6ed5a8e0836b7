"""The HDF5 code-set format, version 1 (specified in ``docs/format.md``).

A code set holds, for N samples, the activation patterns of one or more layers as row-packed bits
(``np.packbits`` along units, big bit order: unit ``j`` is bit ``7 - j % 8`` of byte ``j // 8``),
with labels, sample identity, optional features and thumbnails, provenance, and cached analyses.

Layout::

    /                      attrs: format, format_version, nacscope_version, created, complete,
                                  n_samples, command, dataset, split, checkpoint, checkpoint_sha256,
                                  config (JSON)
    /samples/index         int64 (N,)          index of each sample in its source dataset
    /samples/labels        int64 (N,) or uint8 (N, C) multi-hot   [optional]; attr kind
    /samples/class_names   str (C,)            [optional]
    /samples/is_query      bool (N,)           [optional] query/gallery split
    /samples/thumbnails    uint8 (N, H, W, C)  [optional]
    /layers/<name>/bits    uint8 (N, ceil(units/8)); attrs units, shape, kind, bitorder, order
    /layers/<name>/features float16 (N, units)  [optional]
    /features/<name>       float16 (N, F)      [optional] e.g. encoder features ``h``
    /analysis/<key>        cached analysis results (attrs params, result JSON, arrays)
    /projections/<name>    float32 (N, 2); attrs params

Writers stream rows in with bounded memory, under a temporary name (``<final>.partial``) in SWMR mode
so that a reader can follow the file while it grows, and rename to the final name on ``close()``.
"""


# The format's pieces live in one module each; this module keeps the names user code imports from it.
from nacscope._files import partial_path
from nacscope.codes.bits import pack_bits, packed_width, unpack_bits
from nacscope.codes.reader import CodeSet, LayerInfo, PartialFileWarning, RepairWarning, open_codeset, writer_alive
from nacscope.codes.schema import FORMAT_MINOR, FORMAT_NAME, FORMAT_VERSION, LAYER_KINDS, LIBVER
from nacscope.codes.writer import (
    BITS_COMPRESSION,
    CHUNK_BYTES,
    FEATURE_COMPRESSION,
    OTHER_COMPRESSION,
    CodeSetWriter,
    LayerSpec,
    check_name,
)

__all__ = [
    "BITS_COMPRESSION", "CHUNK_BYTES", "FEATURE_COMPRESSION", "FORMAT_MINOR", "FORMAT_NAME", "FORMAT_VERSION",
    "LAYER_KINDS", "LIBVER", "OTHER_COMPRESSION", "CodeSet", "CodeSetWriter", "LayerInfo", "LayerSpec",
    "PartialFileWarning", "RepairWarning", "check_name", "open_codeset", "pack_bits", "packed_width",
    "partial_path", "unpack_bits", "writer_alive",
]
