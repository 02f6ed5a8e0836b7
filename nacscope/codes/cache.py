"""Analysis results cached beside a code set, keyed by the parameters that produced them.

A finished code set is never opened for writing: caches live in a sidecar HDF5 file
``<code set>.cache`` (same folder) that is rewritten whole under a unique temporary name
and renamed over the old one, so a kill at any moment leaves the code set untouched and the
sidecar either old or new, never half-written (``benchmarks/cache_write.py`` measured the
options; see ``docs/format.md``). Writers take an exclusive lock on ``<code set>.cache.lock``;
readers need none (a rename never shows them a half-written file).

Inside the sidecar, ``/analysis/<key>`` is a group with attributes ``params`` (canonical JSON),
``result`` (JSON), ``n_samples``, ``created``, ``nacscope_version`` and ``digest`` (SHA-256 of the
result and arrays), and one dataset per stored array; ``/projections/<name>`` is a float32 (N, 2)
dataset with the same ``params`` and ``digest`` attributes. An entry whose digest does not match
what is read back (a poisoned or damaged entry), and a sidecar that cannot be read at all, are
ignored with one warning line and recomputed; a write that cannot take the lock in time, or fails,
leaves the result uncached with one warning line: a cache never makes an analysis fail. The
root attribute ``codeset`` identifies the code set the results belong to; a sidecar of another
file (a code set replaced under the same name) is ignored. Caches that older versions wrote
inside the code set itself are still read.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import h5py
import numpy as np

from nacscope import __version__
from nacscope.codes.lockfile import FileLock
from nacscope.errors import CodeSetError

if TYPE_CHECKING:
    from nacscope.codes.format import CodeSet

CACHE_SUFFIX = ".cache"
CACHE_FORMAT = "nacscope.cache"


class CacheWarning(UserWarning):
    """A cache entry could not be used (corrupt, unreadable) or stored; it is recomputed."""


def _warn(message: str) -> None:
    """A :class:`CacheWarning` (the CLI prints each distinct message once per command)."""
    warnings.warn(message, CacheWarning, stacklevel=4)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


def digest(result_text: str, arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of a cached entry: its result JSON and every array's name, dtype, shape and bytes."""
    h = hashlib.sha256(result_text.encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"\0{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def cache_path(codeset_path: str | os.PathLike) -> Path:
    """The sidecar holding the cached results of a code set: ``<name>.cache`` in its folder."""
    p = Path(codeset_path)
    return p.with_name(p.name + CACHE_SUFFIX)


def canonical_params(params: Mapping[str, Any]) -> str:
    """Parameters as canonical JSON (sorted keys, no spaces): the cache's key material."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def fingerprint(cs: "CodeSet") -> str:
    """What ties a sidecar to one code set: creation time, rows, layers and size of the file."""
    created = cs.f.attrs.get("created", "")
    created = created.decode() if isinstance(created, bytes) else str(created)
    return json.dumps(
        {"created": created, "n_samples": cs.n_samples, "layers": cs.layer_names, "size": os.path.getsize(cs.path)},
        sort_keys=True,
    )


def _open_sidecar(cs: "CodeSet") -> h5py.File | None:
    """The sidecar opened read-only if it belongs to ``cs``; None if absent or of another file."""
    side = cache_path(cs.path)
    for attempt in range(5):  # a rename in flight can make one open fail; retry briefly
        if not side.is_file():
            return None
        try:
            f = h5py.File(side, "r", locking=False)
        except OSError:
            time.sleep(0.05 * (attempt + 1))
            continue
        try:
            if _text(f.attrs.get("format")) == CACHE_FORMAT and _text(f.attrs.get("codeset")) == fingerprint(cs):
                return f
        except Exception:  # noqa: BLE001 - a damaged sidecar is ignored, never fatal
            break
        f.close()
        return None
    _warn(f"cache {side} is unreadable; ignoring it (it is rewritten with the next result)")
    return None


def _lookup(cs: "CodeSet", group: str, name: str, read: Callable[[Any], Any]) -> Any:
    """``read(member)`` of ``/<group>/<name>`` from the sidecar, else from the code set; None if absent.

    A member that cannot be read is reported in one warning line and treated as absent.
    """
    side = _open_sidecar(cs)
    sources = ([side] if side is not None else []) + [cs.f]
    try:
        for f in sources:
            try:
                g = f.get(group)
                if not isinstance(g, h5py.Group) or name not in g:
                    continue
                return read(g[name])
            except Exception as exc:  # noqa: BLE001 - a poisoned entry must never be fatal
                where = cache_path(cs.path) if f is side else cs.path
                _warn(f"ignoring corrupt cache entry {group}/{name} in {where} ({_short(exc)}); recomputing")
                return None
        return None
    finally:
        if side is not None:
            side.close()


def read_cached(cs: "CodeSet", key: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return ``{"result": ..., "arrays": {name: ndarray}}`` if ``key`` was stored with ``params``."""
    want = canonical_params(params)

    def read(entry):
        if not isinstance(entry, h5py.Group):
            raise ValueError("not a group")
        _check_self_contained(entry)
        if _text(entry.attrs.get("params")) != want or int(entry.attrs.get("n_samples", -1)) != cs.n_samples:
            return None
        stored = _text(entry.attrs.get("digest"))
        if stored is None:
            return None  # written before entries carried a digest: recomputed
        text = _text(entry.attrs["result"])
        arrays = {name: entry[name][()] for name in entry.keys()}
        if digest(text or "", arrays) != stored:
            raise ValueError("checksum mismatch: result or arrays damaged")
        return {"result": json.loads(text or ""), "arrays": arrays}

    return _lookup(cs, "analysis", key, read)


def _check_self_contained(obj: h5py.Group | h5py.Dataset) -> None:
    """Raise ValueError if a cache entry reads anything from outside its file (like code sets, see validate)."""
    objs = [obj]
    if isinstance(obj, h5py.Group):
        for name in obj:
            if isinstance(obj.get(name, getlink=True), h5py.ExternalLink):
                raise ValueError(f"{name}: external link")
            objs.append(obj[name])
    for o in objs:
        if isinstance(o, h5py.Dataset) and (o.external or o.is_virtual):
            raise ValueError(f"{o.name}: data stored outside the file")


def _is_self_contained(group: h5py.Group, name: str) -> bool:
    try:
        if isinstance(group.get(name, getlink=True), h5py.ExternalLink):
            return False
        _check_self_contained(group[name])
        return True
    except Exception:  # noqa: BLE001 - a damaged entry is dropped, then recomputed when asked for
        return False


def _member_names(cs: "CodeSet", group: str) -> list[str]:
    """Names under ``/<group>`` of the sidecar and (older files) of the code set; a damaged group counts as empty."""
    names: set[str] = set()
    side = _open_sidecar(cs)
    try:
        for f in ([side] if side is not None else []) + [cs.f]:
            try:
                g = f.get(group)
                if isinstance(g, h5py.Group):
                    names.update(g.keys())
            except Exception:  # noqa: BLE001 - listed as absent; reading an entry warns
                pass
    finally:
        if side is not None:
            side.close()
    return sorted(names)


def _text(v: Any) -> str | None:
    if isinstance(v, bytes):
        return v.decode()
    return v if isinstance(v, str) or v is None else str(v)


def can_write(cs: "CodeSet") -> bool:
    """Whether results can be cached for this file (complete, not followed via SWMR, folder writable)."""
    folder = cs.path.parent if str(cs.path.parent) else Path(".")
    return cs.complete and not cs.swmr and os.access(folder, os.W_OK)


def _rewrite_sidecar(cs: "CodeSet", group: str, name: str, write: Callable[[h5py.Group], None]) -> bool:
    """Write a new sidecar holding the old one's members plus ``write``'s, and rename it into place.

    A second writer waits for the first (an exclusive lock); if it cannot write (lock held too
    long, disk full, folder read-only) the result stays uncached: one warning line and False.
    """
    side = cache_path(cs.path)
    try:
        with FileLock(side.with_name(side.name + ".lock")):
            _rewrite_locked(cs, side, group, name, write)
        return True
    except (CodeSetError, OSError) as exc:
        reason = str(exc) if isinstance(exc, CodeSetError) else (exc.strerror or _short(exc))
        _warn(f"result not cached in {side} ({reason})")
        return False


def _copy_members(old: h5py.File | None, f: h5py.File, group: str, name: str) -> None:
    """Copy the old sidecar's entries into ``f`` (all but ``group/name``); unreadable ones are dropped."""
    for gname in ("analysis", "projections"):
        g = f.create_group(gname)
        try:
            src = old.get(gname) if old is not None else None
            members = list(src) if isinstance(src, h5py.Group) else []
        except Exception:  # noqa: BLE001 - a damaged sidecar loses its entries, nothing else
            continue
        for member in members:
            if gname == group and member == name:
                continue
            try:
                if not _is_self_contained(src, member):  # an external link or dataset is never copied
                    continue
                src.copy(member, g)
            except Exception:  # noqa: BLE001
                if member in g:
                    del g[member]


def _rewrite_locked(cs: "CodeSet", side: Path, group: str, name: str, write: Callable[[h5py.Group], None]) -> None:
    from nacscope.codes.schema import LIBVER

    fp = fingerprint(cs)
    for stale in side.parent.glob(f".{side.name}.*.tmp"):  # left by a killed writer (we hold the lock)
        stale.unlink(missing_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{side.name}.", suffix=".tmp", dir=side.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        old = _open_sidecar(cs)
        try:
            with h5py.File(tmp, "w", libver=LIBVER, locking=False) as f:
                f.attrs["format"] = CACHE_FORMAT
                f.attrs["format_version"] = 1
                f.attrs["codeset"] = fp
                _copy_members(old, f, group, name)
                write(f[group])
        finally:
            if old is not None:
                old.close()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, side)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_cached(
    cs: "CodeSet",
    key: str,
    params: Mapping[str, Any],
    result: Any,
    arrays: Mapping[str, np.ndarray] | None = None,
) -> bool:
    """Store a result in the sidecar (replacing an older one under ``key``); False if not writable."""
    if not can_write(cs):
        return False
    payload = json.dumps(result, default=_json_default)
    n_samples = cs.n_samples
    stored = {name: np.asarray(arr) for name, arr in (arrays or {}).items()}

    def write(g: h5py.Group) -> None:
        entry = g.create_group(key)
        for name, arr in stored.items():
            kw = {"compression": "gzip", "compression_opts": 4} if arr.size > 1024 else {}
            entry.create_dataset(name, data=arr, **kw)
        entry.attrs["digest"] = digest(payload, stored)
        entry.attrs["params"] = canonical_params(params)
        entry.attrs["result"] = payload
        entry.attrs["n_samples"] = n_samples
        entry.attrs["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        entry.attrs["nacscope_version"] = __version__

    return _rewrite_sidecar(cs, "analysis", key, write)


def cached_keys(cs: "CodeSet") -> list[str]:
    """Keys of the cached analyses of a code set (sidecar and, for older files, in the file)."""
    return _member_names(cs, "analysis")


def read_projection(cs: "CodeSet", name: str, params: Mapping[str, Any] | None = None) -> np.ndarray | None:
    """A stored (N, 2) projection, or None if absent (or stored with other params)."""
    def read(ds):
        if not isinstance(ds, h5py.Dataset):
            raise ValueError("not a dataset")
        _check_self_contained(ds)
        if params is not None and _text(ds.attrs.get("params")) != canonical_params(params):
            return None
        if ds.shape != (cs.n_samples, 2):
            return None
        return _checked_coords(ds)

    return _lookup(cs, "projections", name, read)


def write_projection(cs: "CodeSet", name: str, coords: np.ndarray, params: Mapping[str, Any], **attrs: Any) -> bool:
    """Store an (N, 2) projection under ``/projections/<name>`` of the sidecar; False if not writable."""
    coords = np.asarray(coords, dtype=np.float32)
    if coords.shape != (cs.n_samples, 2):
        raise CodeSetError(f"projection must be ({cs.n_samples}, 2), got {coords.shape}")
    if not can_write(cs):
        return False

    def write(g: h5py.Group) -> None:
        ds = g.create_dataset(name, data=coords)
        ds.attrs["params"] = canonical_params(params)
        for k, v in attrs.items():
            ds.attrs[k] = v if isinstance(v, (int, float, str)) else json.dumps(v, default=_json_default)
        ds.attrs["digest"] = digest(_projection_text(ds), {"coords": coords})

    return _rewrite_sidecar(cs, "projections", name, write)


def _attr_values(ds: h5py.Dataset) -> dict[str, Any]:
    return {k: (v.item() if isinstance(v, np.generic) else _text(v) if isinstance(v, bytes) else v)
            for k, v in ds.attrs.items()}


def _projection_text(ds: h5py.Dataset) -> str:
    """What a projection's digest covers besides its coordinates: every attribute but the digest."""
    return canonical_params({k: v for k, v in _attr_values(ds).items() if k != "digest"})


def _checked_coords(ds: h5py.Dataset) -> np.ndarray:
    """A projection's coordinates, checked against its digest (absent in older sidecars: accepted,
    as recomputing a UMAP is slow)."""
    coords = ds[()]
    stored = _text(ds.attrs.get("digest"))
    if stored is not None and digest(_projection_text(ds), {"coords": coords}) != stored:
        raise ValueError("checksum mismatch: coordinates or attributes damaged")
    return coords


def projection_attrs(cs: "CodeSet", name: str) -> dict[str, Any] | None:
    """Attributes (``params``, ``trustworthiness``, ...) of a stored projection, or None if absent."""
    def read(ds):
        if not isinstance(ds, h5py.Dataset):
            raise ValueError("not a dataset")
        _checked_coords(ds)
        return {k: v for k, v in _attr_values(ds).items() if k != "digest"}

    return _lookup(cs, "projections", name, read)


def projection_names(cs: "CodeSet") -> list[str]:
    """Names of the stored projections (sidecar and, for older files, in the file)."""
    return _member_names(cs, "projections")
