"""Clearing the write flags a killed HDF5 writer leaves in a file's superblock (what ``h5clear -s`` does).

HDF5 >= 1.10 files (superblock version 2 or 3) record "open for writing" in a flags byte of the
superblock; a process killed while it held the file open for writing leaves the byte set and
every later open fails with "file is already open for write". The flags are one byte of the
superblock, protected by a Jenkins lookup3 checksum; clearing them rewrites those 48 bytes and
nothing else. Older nacscope versions wrote analysis caches into the code set itself, so a killed
``analyze`` could leave a finished file in this state.
"""

from __future__ import annotations

import os
from pathlib import Path

_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & 0xFFFFFFFF


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' ``hashlittle`` (lookup3.c), the checksum HDF5 uses for metadata."""
    m = 0xFFFFFFFF
    a = b = c = (0xDEADBEEF + len(data) + initval) & m
    i, n = 0, len(data)
    while n > 12:
        a = (a + int.from_bytes(data[i:i + 4], "little")) & m
        b = (b + int.from_bytes(data[i + 4:i + 8], "little")) & m
        c = (c + int.from_bytes(data[i + 8:i + 12], "little")) & m
        a = (a - c) & m; a ^= _rot(c, 4); c = (c + b) & m
        b = (b - a) & m; b ^= _rot(a, 6); a = (a + c) & m
        c = (c - b) & m; c ^= _rot(b, 8); b = (b + a) & m
        a = (a - c) & m; a ^= _rot(c, 16); c = (c + b) & m
        b = (b - a) & m; b ^= _rot(a, 19); a = (a + c) & m
        c = (c - b) & m; c ^= _rot(b, 4); b = (b + a) & m
        i += 12
        n -= 12
    if n == 0:
        return c
    tail = data[i:] + b"\0" * (12 - n)
    a = (a + int.from_bytes(tail[0:4], "little")) & m
    b = (b + int.from_bytes(tail[4:8], "little")) & m
    c = (c + int.from_bytes(tail[8:12], "little")) & m
    c ^= b; c = (c - _rot(b, 14)) & m
    a ^= c; a = (a - _rot(c, 11)) & m
    b ^= a; b = (b - _rot(a, 25)) & m
    c ^= b; c = (c - _rot(b, 16)) & m
    a ^= c; a = (a - _rot(c, 4)) & m
    b ^= a; b = (b - _rot(a, 14)) & m
    c ^= b; c = (c - _rot(b, 24)) & m
    return c


def _find_superblock(fh) -> int | None:
    size = os.fstat(fh.fileno()).st_size
    off = 0
    while off + 8 <= size:
        fh.seek(off)
        if fh.read(8) == _SIGNATURE:
            return off
        off = 512 if off == 0 else off * 2
    return None


def write_flags(path: str | os.PathLike) -> int | None:
    """The superblock's consistency flags (0 when clean), or None for superblocks without them."""
    with open(path, "rb") as fh:
        off = _find_superblock(fh)
        if off is None:
            return None
        fh.seek(off)
        head = fh.read(12)
    return head[11] if head[8] in (2, 3) else None


def clear_write_flags(path: str | os.PathLike) -> bool:
    """Clear the superblock's write flags in place (as ``h5clear -s PATH``); True if they were set.

    Only the flags byte and the superblock checksum change. Raises OSError if the file is read-only.
    """
    p = Path(path)
    with open(p, "r+b") as fh:
        off = _find_superblock(fh)
        if off is None:
            return False
        fh.seek(off)
        head = fh.read(12)
        if head[8] not in (2, 3) or head[11] == 0:
            return False
        size_o = head[9]
        body_len = 12 + 4 * size_o
        fh.seek(off)
        body = bytearray(fh.read(body_len + 4))
        if len(body) != body_len + 4 or lookup3(bytes(body[:body_len])) != int.from_bytes(body[body_len:], "little"):
            return False  # not a superblock we understand: leave it alone
        body[11] = 0
        body[body_len:] = lookup3(bytes(body[:body_len])).to_bytes(4, "little")
        fh.seek(off)
        fh.write(bytes(body))
        fh.flush()
        os.fsync(fh.fileno())
    return True
