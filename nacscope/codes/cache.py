"""Analysis results cached inside a code set, keyed by the parameters that produced them.

``/analysis/<key>`` is a group with attributes ``params`` (canonical JSON), ``result`` (JSON),
``created`` and ``nacscope_version``, and one dataset per stored array. ``/projections/<name>``
is a float32 (N, 2) dataset with the same ``params`` attribute. A result is reused only when its
stored params equal the requested ones exactly; anything else is recomputed and replaces it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import signal
import threading
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import h5py
import numpy as np

from nacscope import __version__
from nacscope.errors import CodeSetError

if TYPE_CHECKING:
    from nacscope.codes.format import CodeSet


def canonical_params(params: Mapping[str, Any]) -> str:
    """Parameters as canonical JSON (sorted keys, no spaces): the cache's key material."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def read_cached(cs: "CodeSet", key: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return ``{"result": ..., "arrays": {name: ndarray}}`` if ``key`` was stored with ``params``."""
    g = cs.f.get("analysis")
    if g is None or key not in g:
        return None
    entry = g[key]
    if entry.attrs.get("params") != canonical_params(params):
        return None
    if entry.attrs.get("n_samples", -1) != cs.n_samples:
        return None
    return {
        "result": json.loads(entry.attrs.get("result", "null")),
        "arrays": {name: entry[name][()] for name in entry.keys()},
    }


def can_write(cs: "CodeSet") -> bool:
    """Whether results can be cached in this file (complete, not followed via SWMR, writable)."""
    return cs.complete and not cs.swmr and os.access(cs.path, os.W_OK)


@contextlib.contextmanager
def _reopened_for_writing(cs: "CodeSet", what: str) -> Iterator[h5py.File]:
    """Reopen ``cs`` read-write for one small update, then read-only again.

    Ctrl-C is held back until the update is written and the file closed, so an interrupt cannot
    leave the file half-updated (the existing rows are never touched by cache writes).
    """
    path = cs.path
    cs.f.close()
    try:
        with _sigint_deferred(), h5py.File(path, "r+", locking=False) as f:
            yield f
    except OSError as exc:
        raise CodeSetError(f"cannot {what} in {path}: {exc}") from None
    finally:
        cs.f = h5py.File(path, "r", locking=False)


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Delay SIGINT until the block ends (only possible in the main thread; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list = []
    previous = signal.signal(signal.SIGINT, lambda *a: caught.append(a))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt


def write_cached(
    cs: "CodeSet",
    key: str,
    params: Mapping[str, Any],
    result: Any,
    arrays: Mapping[str, np.ndarray] | None = None,
) -> bool:
    """Store a result in the file (replacing an older one under ``key``); False if not writable.

    The code set is briefly reopened read-write and then read-only again; arrays the caller holds
    from the file stay valid (they are numpy copies).
    """
    if not can_write(cs):
        return False
    payload = json.dumps(result, default=_json_default)
    n_samples = cs.n_samples
    with _reopened_for_writing(cs, "cache results") as f:
        g = f.require_group("analysis")
        if key in g:
            del g[key]
        entry = g.create_group(key)
        for name, arr in (arrays or {}).items():
            arr = np.asarray(arr)
            kw = {"compression": "gzip", "compression_opts": 4} if arr.size > 1024 else {}
            entry.create_dataset(name, data=arr, **kw)
        entry.attrs["params"] = canonical_params(params)
        entry.attrs["result"] = payload
        entry.attrs["n_samples"] = n_samples
        entry.attrs["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        entry.attrs["nacscope_version"] = __version__
    return True


def cached_keys(cs: "CodeSet") -> list[str]:
    """Keys of the cached analyses in a code set."""
    g = cs.f.get("analysis")
    return sorted(g.keys()) if g is not None else []


def read_projection(cs: "CodeSet", name: str, params: Mapping[str, Any] | None = None) -> np.ndarray | None:
    """A stored (N, 2) projection, or None if absent (or stored with other params)."""
    g = cs.f.get("projections")
    if g is None or name not in g:
        return None
    ds = g[name]
    if params is not None and ds.attrs.get("params") != canonical_params(params):
        return None
    if ds.shape[0] != cs.n_samples:
        return None
    return ds[()]


def write_projection(cs: "CodeSet", name: str, coords: np.ndarray, params: Mapping[str, Any], **attrs: Any) -> bool:
    """Store an (N, 2) projection under ``/projections/<name>``; False if the file is not writable."""
    coords = np.asarray(coords, dtype=np.float32)
    if coords.shape != (cs.n_samples, 2):
        raise CodeSetError(f"projection must be ({cs.n_samples}, 2), got {coords.shape}")
    if not can_write(cs):
        return False
    with _reopened_for_writing(cs, "store projection") as f:
        g = f.require_group("projections")
        if name in g:
            del g[name]
        ds = g.create_dataset(name, data=coords)
        ds.attrs["params"] = canonical_params(params)
        for k, v in attrs.items():
            ds.attrs[k] = v if isinstance(v, (int, float, str)) else json.dumps(v, default=_json_default)
    return True
