"""Results cached in a code set: keys, the algorithm version, and compute-or-read.

Shared by every analysis that stores its result in the file (``engine``, ``probes``, ``projection``).
"""

from __future__ import annotations

import hashlib
import re
import warnings
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import numpy as np

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


def well_formed(result: Any, arrays: Mapping[str, Any], keys: Iterable[str] = (),
                array_rows: Mapping[str, int | None] | None = None) -> bool:
    """Whether a cached entry has the shape its reader needs: ``result`` a dict with every one of ``keys``,
    and each array of ``array_rows`` present, at least 1-D, with that many rows (None: any)."""
    if not isinstance(result, dict) or any(k not in result for k in keys):
        return False
    for name, rows in (array_rows or {}).items():
        a = arrays.get(name)
        if not isinstance(a, np.ndarray) or a.ndim < 1 or a.dtype.kind not in "biuf" or (rows is not None and len(a) != rows):
            return False
    return True


def cached_or_compute(cs: "CodeSet", key: str, params: dict, use_cache: bool, compute: Callable[[], tuple[Any, dict]],
                      check: Callable[[Any, dict], bool] | None = None):
    """(result, arrays) from the cache when stored with these params, else computed and stored.

    ``check(result, arrays)`` says whether a cached entry is usable (see :func:`well_formed`); one that
    is not (a damaged or hand-edited cache) is reported in one warning line and recomputed.
    """
    from nacscope.codes.cache import CacheWarning, read_cached, write_cached

    if use_cache:
        hit = read_cached(cs, key, params)
        if hit is not None:
            if check is None or check(hit["result"], hit["arrays"]):
                return hit["result"], hit["arrays"]
            warnings.warn(f"ignoring corrupt cache entry analysis/{key} of {cs.path.name} (members missing or "
                          f"malformed); recomputing", CacheWarning, stacklevel=2)
    result, arrays = compute()
    if use_cache:
        try:
            write_cached(cs, key, params, result, arrays)
        except CodeSetError:
            pass  # e.g. another process holds the file open: the result is valid, only not stored
    return result, arrays
