"""Reading code sets: :class:`CodeSet` opens a file lazily; :func:`open_codeset` validates and repairs first."""

from __future__ import annotations

import fcntl
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import h5py
import numpy as np

from nacscope import __version__
from nacscope._files import PARTIAL_SUFFIX, partial_path
from nacscope.codes.bits import unpack_bits
from nacscope.codes.schema import FORMAT_NAME, FORMAT_VERSION
from nacscope.errors import CodeSetError


@dataclass(frozen=True)
class LayerInfo:
    """A layer as stored in a code set."""

    name: str
    units: int
    shape: tuple[int, ...]
    kind: str
    row_bytes: int
    nbytes_on_disk: int
    has_features: bool



class CodeSet:
    """A code set opened lazily: nothing is read until asked for.

    Args:
        path: the ``.h5`` file. If it does not exist but ``<path>.partial`` does (a dump in
            progress), that file is opened in SWMR mode.
        swmr: open in single-writer/multiple-reader mode to follow a file that is being written;
            call :meth:`refresh` to see new rows.
    """

    def __init__(self, path: str | os.PathLike, *, swmr: bool = False) -> None:
        p = Path(path)
        fallback = not p.exists() and partial_path(p).exists()
        if fallback:
            p, swmr = partial_path(p), True
        self.path = p
        self.partial = p.name.endswith(PARTIAL_SUFFIX)
        if self.partial:
            swmr = True
        if not p.exists():
            raise CodeSetError(f"file not found: {p}")
        if p.is_dir():
            raise CodeSetError(f"{p} is a directory, not a code set")
        if not p.is_file():
            raise CodeSetError(f"{p} is not a regular file")
        if not h5py.is_hdf5(p):
            raise CodeSetError(f"{p} is not an HDF5 file")
        try:
            self.f = _open_h5(p, swmr)
        except CodeSetError:
            if not (fallback and Path(path).is_file()):
                raise
            # The dump finished between looking and opening: open the finished file.
            p, swmr = Path(path), False
            self.path, self.partial = p, False
            self.f = _open_h5(p, swmr)
        self.swmr = swmr
        self._n: int | None = None
        try:
            self._check_header()
            self._n = self.rows_available() if not self.complete else None
        except CodeSetError:
            self.f.close()
            raise
        except Exception as exc:  # noqa: BLE001 - h5py on damaged metadata: KeyError, OSError, RuntimeError...
            self.f.close()
            raise CodeSetError(f"{p} is corrupt or unreadable as HDF5 ({_short(exc)})") from None
        except BaseException:
            self.f.close()
            raise
        if self.partial or not self.complete:
            warnings.warn(self.progress_note(), PartialFileWarning, stacklevel=2)

    def progress_note(self) -> str:
        """One line for a file that is not finished: "dump in progress" or "interrupted dump", rows so far."""
        expected = self.f.attrs.get("n_expected")
        of = f" of {int(expected):,}" if isinstance(expected, (int, np.integer)) else ""
        state = "dump in progress" if writer_alive(self.path) else "interrupted dump"
        return f"{self.path.name}: {state}: {self.n_samples:,}{of} rows; analysing the rows flushed so far"

    def _check_header(self) -> None:
        from nacscope.codes.validate import violations

        a = self.f.attrs
        fmt = a.get("format")
        fmt = fmt.decode(errors="replace") if isinstance(fmt, bytes) else fmt
        if not isinstance(fmt, str) or fmt != FORMAT_NAME:
            raise CodeSetError(f"{self.path} is an HDF5 file but not a nacscope code set (no format={FORMAT_NAME!r})")
        version = a.get("format_version", -1)
        if not isinstance(version, (int, np.integer)) or isinstance(version, (bool, np.bool_)):
            raise CodeSetError(f"{self.path}: invalid format_version {version!r}")
        if version > FORMAT_VERSION:
            raise CodeSetError(
                f"{self.path} is code-set format v{version}; this nacscope ({__version__}) reads up to "
                f"v{FORMAT_VERSION}: upgrade nacscope"
            )
        if version < 1:
            raise CodeSetError(f"{self.path}: invalid format_version {version}")
        problems = violations(self.f, first=True)
        if problems:
            raise CodeSetError(f"{self.path} is not a valid code set: {problems[0]} (see `nacscope info --check`)")
        # Walk every dataset's chunk index now (metadata only): damage there is one line at open, not a
        # failure in the middle of an analysis.
        self.f.visititems(lambda _name, obj: obj.id.get_storage_size() and None if isinstance(obj, h5py.Dataset) else None)

    # -- metadata -------------------------------------------------------------------------------
    @property
    def attrs(self) -> dict[str, Any]:
        """Root attributes (provenance), with JSON-valued ones decoded."""
        out: dict[str, Any] = {}
        for k, v in self.f.attrs.items():
            if isinstance(v, np.ndarray):  # an array attribute (or a hostile one where text is expected)
                v = [x.decode(errors="replace") if isinstance(x, bytes) else x for x in v.ravel().tolist()]
            if isinstance(v, bytes):
                v = v.decode(errors="replace")
            if isinstance(v, np.generic):
                v = v.item()
            if isinstance(v, str):  # h5py keeps undecodable bytes as surrogates, which no console can print
                v = v.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            if isinstance(v, str) and v[:1] in "{[":
                try:
                    v = json.loads(v)
                except ValueError:
                    pass
            out[k] = v
        return out

    @property
    def complete(self) -> bool:
        return bool(self.f.attrs.get("complete", False))

    @property
    def n_samples(self) -> int:
        """Rows: all of them in a finished file; in one being written, the rows every array had at open
        (or at the last :meth:`refresh`), so that every per-sample array is cut to the same length."""
        if self._n is not None:
            return self._n
        return int(self.f["samples"]["index"].shape[0])

    def __len__(self) -> int:
        return self.n_samples

    @property
    def layer_names(self) -> list[str]:
        """Layer names in the order they were written (forward order for dumps)."""
        g = self.f["layers"]
        return sorted(g.keys(), key=lambda n: int(g[n].attrs.get("order", 0)))

    def layer(self, name: str) -> LayerInfo:
        g = self._layer_group(name)
        units = int(g.attrs["units"])
        ds = g["bits"]
        return LayerInfo(
            name=name,
            units=units,
            shape=tuple(int(s) for s in g.attrs.get("shape", (units,))),
            kind=str(g.attrs.get("kind", "other")),
            row_bytes=int(ds.shape[1]),
            nbytes_on_disk=int(ds.id.get_storage_size()) + (int(g["features"].id.get_storage_size()) if "features" in g else 0),
            has_features="features" in g,
        )

    @property
    def layers(self) -> list[LayerInfo]:
        return [self.layer(n) for n in self.layer_names]

    def _layer_group(self, name: str) -> h5py.Group:
        if name not in self.f["layers"]:
            raise CodeSetError(f"no layer {name!r} in {self.path.name}; available: {', '.join(self.layer_names)}")
        return self.f["layers"][name]

    # -- rows ------------------------------------------------------------------------------------
    def packed(self, name: str, rows: slice | np.ndarray | None = None) -> np.ndarray:
        """Packed bits of a layer, (n, row_bytes) uint8. ``rows`` is a slice or sorted index array."""
        ds = self._layer_group(name)["bits"]
        return _zero_padding(_read(ds, rows, self.n_samples), int(self._layer_group(name).attrs["units"]))

    def bits(self, name: str, rows: slice | np.ndarray | None = None) -> np.ndarray:
        """Unpacked bits of a layer, (n, units) uint8 of 0/1."""
        return unpack_bits(self.packed(name, rows), self.layer(name).units)

    def iter_packed(self, name: str, batch_rows: int = 65536) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start_row, packed_block)`` over a layer, reading one block at a time."""
        ds = self._layer_group(name)["bits"]
        n, units = self.n_samples, int(self._layer_group(name).attrs["units"])
        for start in range(0, n, batch_rows):
            yield start, _zero_padding(_read(ds, slice(start, min(n, start + batch_rows)), n), units)

    def layer_features(self, name: str, rows=None) -> np.ndarray | None:
        g = self._layer_group(name)
        return _read(g["features"], rows, self.n_samples) if "features" in g else None

    @property
    def feature_names(self) -> list[str]:
        return list(self.f["features"].keys()) if "features" in self.f else []

    def features(self, name: str | None = None, rows=None) -> np.ndarray | None:
        """Stored features (float16) by name; the first one when ``name`` is None; None if absent."""
        names = self.feature_names
        if not names:
            return None
        if name is None:
            name = "h" if "h" in names else names[0]
        if name not in names:
            raise CodeSetError(f"no features {name!r}; available: {', '.join(names)}")
        return _read(self.f["features"][name], rows, self.n_samples)

    @property
    def sample_index(self) -> np.ndarray:
        return _read(self.f["samples"]["index"], None, self.n_samples)

    @property
    def label_kind(self) -> str | None:
        """``"class"``, ``"multihot"`` or None."""
        s = self.f["samples"]
        return str(s["labels"].attrs.get("kind", "class")) if "labels" in s else None

    def labels(self, rows=None) -> np.ndarray | None:
        s = self.f["samples"]
        return _read(s["labels"], rows, self.n_samples) if "labels" in s else None

    @property
    def class_names(self) -> list[str] | None:
        s = self.f["samples"]
        if "class_names" not in s:
            return None
        return [c.decode(errors="replace") if isinstance(c, bytes) else str(c) for c in _read(s["class_names"], None, len(s["class_names"]))]

    @property
    def query_mask(self) -> np.ndarray | None:
        s = self.f["samples"]
        return _read(s["is_query"], None, self.n_samples).astype(bool) if "is_query" in s else None

    @property
    def has_thumbnails(self) -> bool:
        return "thumbnails" in self.f["samples"]

    def thumbnails(self, rows=None) -> np.ndarray | None:
        s = self.f["samples"]
        return _read(s["thumbnails"], rows, self.n_samples) if "thumbnails" in s else None

    # -- following a file that grows ---------------------------------------------------------------
    def refresh(self) -> int:
        """Re-read dataset extents in SWMR mode; returns the number of rows now visible."""
        if not self.swmr:
            return self.n_samples
        def visit(_name, obj):
            if isinstance(obj, h5py.Dataset):
                obj.refresh()
        self.f["samples"].visititems(visit)
        self.f["layers"].visititems(visit)
        if "features" in self.f:
            self.f["features"].visititems(visit)
        # All arrays grow together, but a reader may catch the writer between two resizes:
        # report the rows every array already has.
        self._n = self.rows_available() if not self.complete else None
        return self.n_samples

    def rows_available(self) -> int:
        """Rows that every per-sample array already holds (a writer resizes them one after another)."""
        n = [self.f["samples"]["index"].shape[0]]
        n += [self.f["layers"][k]["bits"].shape[0] for k in self.f["layers"]]
        for k in ("labels", "is_query", "thumbnails"):
            if k in self.f["samples"]:
                n.append(self.f["samples"][k].shape[0])
        for k in self.f["layers"]:
            if "features" in self.f["layers"][k]:
                n.append(self.f["layers"][k]["features"].shape[0])
        if "features" in self.f:
            n += [self.f["features"][k].shape[0] for k in self.f["features"]]
        return int(min(n))

    # -- cache of analysis results ----------------------------------------------------------------------
    def cached(self, key: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """A cached result stored with exactly these params, else None (see ``nacscope.codes.cache``)."""
        from nacscope.codes.cache import read_cached

        return read_cached(self, key, params)

    def close(self) -> None:
        try:
            self.f.close()
        except Exception:
            pass

    def __enter__(self) -> "CodeSet":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CodeSet({str(self.path)!r}, n={self.n_samples}, layers={self.layer_names})"


def _zero_padding(packed: np.ndarray, units: int) -> np.ndarray:
    """Packed rows with the padding bits past ``units`` cleared (the spec says they are zero; a file that
    sets them would otherwise split equal codes into distinct patterns). ``info --check`` reports them."""
    if units % 8 and packed.size and np.any(packed[:, -1] & np.uint8((1 << (8 - units % 8)) - 1)):
        packed = packed.copy()
        packed[:, -1] &= np.uint8((0xFF << (8 - units % 8)) & 0xFF)
    return packed


def _read(ds: h5py.Dataset, rows, n: int) -> np.ndarray:
    """Rows of a per-sample array, never past row ``n`` (the rows every array holds).

    A read that HDF5 cannot do (a damaged chunk index, a truncated file) is one CodeSetError."""
    try:
        return _read_rows(ds, rows, n)
    except (OSError, KeyError, RuntimeError) as exc:
        raise CodeSetError(f"{ds.file.filename}: cannot read {ds.name} (corrupt file: {_short(exc)})") from None


def _read_rows(ds: h5py.Dataset, rows, n: int) -> np.ndarray:
    if rows is None:
        return ds[:n]
    if isinstance(rows, slice):
        return ds[: n][rows] if rows.stop is None or rows.stop > n else ds[rows]
    idx = np.asarray(rows)
    if idx.dtype == bool:
        idx = np.flatnonzero(idx)
    if idx.size == 0:
        return np.empty((0, *ds.shape[1:]), dtype=ds.dtype)
    # h5py fancy indexing needs increasing indices: read sorted unique, then reorder.
    uniq, inverse = np.unique(idx, return_inverse=True)
    if len(uniq) > 64 and (uniq[-1] - uniq[0]) < 4 * len(uniq):
        block = ds[int(uniq[0]) : int(uniq[-1]) + 1]
        return block[idx - uniq[0]]
    return ds[uniq][inverse]


class PartialFileWarning(UserWarning):
    """A code set that is still being written, or whose writer was interrupted, was opened."""


def writer_alive(path: str | os.PathLike) -> bool:
    """Whether a live writer holds ``path`` (it keeps an exclusive ``flock`` on the file while writing)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def _open_h5(p: Path, swmr: bool) -> h5py.File:
    """Open read-only; a finished file whose write flags a killed writer left set is repaired first."""
    from nacscope.codes.repair import clear_write_flags

    for attempt in range(40):
        try:
            return h5py.File(p, "r", swmr=swmr, locking=False)
        except OSError as exc:
            msg = _short(exc)
            if not p.exists():
                raise CodeSetError(f"{p} was removed or renamed while opening it (a dump that just finished?)") from None
            if "already open for write" not in msg:
                raise CodeSetError(f"{p} is corrupt or unreadable as HDF5 ({msg})") from None
        if not (p.name.endswith(PARTIAL_SUFFIX) and writer_alive(p)):
            break
        time.sleep(0.05)  # a live dump finishing: it reopens the file to mark it complete, then renames it
    if p.name.endswith(PARTIAL_SUFFIX):
        if writer_alive(p):
            raise CodeSetError(f"{p}: dump in progress holds the file open for writing; try again in a moment")
        raise CodeSetError(f"{p}: interrupted dump whose writer left the file open; dump again")
    try:
        cleared = clear_write_flags(p)
    except OSError:
        raise CodeSetError(f"{p} has write flags left set by a killed writer and is read-only here; "
                           f"repair it with `h5clear -s {p}`") from None
    try:
        f = h5py.File(p, "r", swmr=swmr, locking=False)
    except OSError as exc:
        raise CodeSetError(f"{p} is corrupt or unreadable as HDF5 ({_short(exc)})") from None
    if cleared:
        warnings.warn(f"{p}: cleared write flags left by a killed writer (as `h5clear -s`)", RepairWarning, stacklevel=3)
    return f


class RepairWarning(UserWarning):
    """A file was repaired on open (stale write flags cleared)."""


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def open_codeset(path: str | os.PathLike, *, swmr: bool = False) -> CodeSet:
    """Open a code set for reading (see :class:`CodeSet`)."""
    return CodeSet(path, swmr=swmr)
