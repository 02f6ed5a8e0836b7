"""Bit packing of activation patterns: (N, units) {0,1} <-> (N, ceil(units/8)) uint8, big bit order."""

from __future__ import annotations

import numpy as np


def packed_width(units: int) -> int:
    """Bytes per row of packed bits for ``units`` units."""
    return (int(units) + 7) // 8


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack a (N, units) array of {0,1}/bool along units into (N, ceil(units/8)) uint8, big bit order."""
    return np.packbits(np.asarray(bits, dtype=bool), axis=1, bitorder="big")


def unpack_bits(packed: np.ndarray, units: int) -> np.ndarray:
    """Unpack (N, ceil(units/8)) uint8 into a (N, units) uint8 array of 0/1."""
    return np.unpackbits(np.asarray(packed, dtype=np.uint8), axis=1, count=units, bitorder="big")
