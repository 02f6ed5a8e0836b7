"""Results cached in a code set: keys, the algorithm version, and compute-or-read.

Shared by every analysis that stores its result in the file (``engine``, ``probes``, ``projection``).
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any, Callable

from nacscope.errors import CodeSetError

if TYPE_CHECKING:
    from nacscope.codes.format import CodeSet

#: Bumped whenever a computation changes, so that older cached results are recomputed.
ALGORITHM_VERSION = 2  # 2: retrieval blocks gained map_skip_no_relevant, queries_without_relevant


def cache_key(prefix: str, name: str) -> str:
    """A cache key for a layer: its name with characters outside ``[A-Za-z0-9._-]`` replaced (plus a hash)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    if safe != name:
        safe += "-" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{prefix}.{safe}"


def cached_or_compute(cs: "CodeSet", key: str, params: dict, use_cache: bool, compute: Callable[[], tuple[Any, dict]]):
    """(result, arrays) from the cache when stored with these params, else computed and stored."""
    from nacscope.codes.cache import read_cached, write_cached

    if use_cache:
        hit = read_cached(cs, key, params)
        if hit is not None:
            return hit["result"], hit["arrays"]
    result, arrays = compute()
    if use_cache:
        try:
            write_cached(cs, key, params, result, arrays)
        except CodeSetError:
            pass  # e.g. another process holds the file open: the result is valid, only not stored
    return result, arrays
