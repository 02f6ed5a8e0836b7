"""Writing code sets: :class:`CodeSetWriter` streams rows into a new file (format in :mod:`nacscope.codes.format`)."""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np

from nacscope import __version__
from nacscope._files import check_output, create_exclusive, partial_path
from nacscope.codes.bits import pack_bits, packed_width
from nacscope.codes.schema import FORMAT_MINOR, FORMAT_NAME, FORMAT_VERSION, LAYER_KINDS, LIBVER
from nacscope.errors import CodeSetError, OptionError

_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-\[\]:#]+$")

#: Target size of one chunk of packed bits, in bytes (rows per chunk = this / row bytes).
CHUNK_BYTES = 1 << 18
# Every nacscope open of a code set passes ``locking=False``: a SWMR reader (``inspect`` following a
# dump) holding HDF5's file lock would make the writer's final reopen fail, and HDF5 refuses to open
# one file twice in a process with different locking flags. Atomic renames, not locks, keep writers
# from clobbering finished files.
#: Compression of the bit matrices: none. ``benchmarks/codeset_io.py`` measured gzip and lzf on
#: 60,000 x 4,096 bits: they save at most 10% on sparse activation bits, grow uniform bits by 27%
#: (chunks rewritten while appending), and make random row reads 8x slower.
BITS_COMPRESSION: dict[str, Any] = {}
#: Per-sample arrays (indices, labels, features, thumbnails) are stored plain too: h5py compresses
#: while holding the GIL, which stalled the forward loop of a dump to 0.31 of the bare forward pass
#: with gzip-4 and 0.80 with gzip-1 on indices and labels, against 0.89 plain
#: (``benchmarks/dump_throughput.py``, see RESULTS.md). Plain files also need no HDF5 filter at all.
OTHER_COMPRESSION: dict[str, Any] = {}
FEATURE_COMPRESSION: dict[str, Any] = {}


def _rows_per_chunk(row_bytes: int, expected_rows: int | None = None) -> int:
    """Rows per chunk: about ``CHUNK_BYTES``, at most 65,536, and no more than the rows expected."""
    rows = max(1, min(65536, CHUNK_BYTES // max(1, row_bytes)))
    if expected_rows is not None and expected_rows > 0:
        rows = min(rows, int(expected_rows))
    return int(rows)


def check_name(name: str, what: str = "layer") -> str:
    if not name or not _NAME_RE.match(name):
        raise OptionError(f"invalid {what} name {name!r}: use letters, digits and _ . - [ ] : #")
    return name


@dataclass(frozen=True)
class LayerSpec:
    """What a writer needs to know about a layer before rows arrive."""

    name: str
    units: int
    shape: tuple[int, ...] = ()
    kind: str = "relu"
    features: bool = False  # also store float16 values of the layer (e.g. pre-activations)

    def __post_init__(self) -> None:
        check_name(self.name)
        if int(self.units) < 1:
            raise OptionError(f"layer {self.name!r}: units must be >= 1, got {self.units}")
        if self.kind not in LAYER_KINDS:
            raise OptionError(f"layer {self.name!r}: kind must be one of {LAYER_KINDS}")
        shape = tuple(int(s) for s in self.shape) or (int(self.units),)
        if int(np.prod(shape)) != int(self.units):
            raise OptionError(f"layer {self.name!r}: shape {shape} does not hold {self.units} units")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "units", int(self.units))



def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class CodeSetWriter:
    """Stream rows into a new code set; the file appears under its final name only on ``close()``.

    Everything the file will hold is declared up front (layers, features, label kind, thumbnails),
    the datasets are created, and the file switches to SWMR mode: a reader opened with
    ``CodeSet(partial_path(path), swmr=True)`` sees every row flushed so far.

    Example::

        with CodeSetWriter("codes.h5", [LayerSpec("code", 64, kind="code")], label_kind="class") as w:
            w.append({"code": bits}, labels=y, index=idx)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        layers: Sequence[LayerSpec],
        *,
        label_kind: str | None = None,  # None | "class" | "multihot"
        n_label_columns: int | None = None,  # C for multi-hot labels
        class_names: Sequence[str] | None = None,
        has_query_mask: bool = False,
        features: Mapping[str, int] | None = None,  # name -> F, stored float16 under /features
        thumbnail_shape: tuple[int, int, int] | None = None,  # (H, W, C)
        attrs: Mapping[str, Any] | None = None,
        force: bool = False,
        flush_every: int = 1,
        expected_rows: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.tmp = partial_path(self.path)
        if not layers:
            raise OptionError("a code set needs at least one layer")
        names = [s.name for s in layers]
        if len(set(names)) != len(names):
            raise OptionError(f"duplicate layer names: {names}")
        check_output(self.path, force=force, error=CodeSetError)
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not os.access(parent, os.W_OK):
            raise CodeSetError(f"output directory {parent} is not writable")
        if label_kind not in (None, "class", "multihot"):
            raise OptionError(f"label_kind must be None, 'class' or 'multihot', got {label_kind!r}")
        if label_kind == "multihot" and not n_label_columns:
            raise OptionError("multi-hot labels need n_label_columns")
        self.layers = list(layers)
        self.label_kind = label_kind
        self.has_query_mask = has_query_mask
        self.features = dict(features or {})
        self.thumbnail_shape = thumbnail_shape
        self.flush_every = max(1, int(flush_every))
        # Chunks no larger than the data: without a hint, small chunks (4,096 rows) keep small files small.
        self.n_expected = int(expected_rows) if expected_rows else None
        self.expected_rows = self.n_expected or 4096
        self.n = 0
        self._appends = 0
        self._closed = False
        self.tmp.unlink(missing_ok=True)
        try:
            self.f = h5py.File(create_exclusive(self.tmp), "w", libver=LIBVER, locking=False)
        except OSError as exc:
            raise CodeSetError(f"cannot create {self.tmp}: {exc}") from None
        # Readers tell "dump in progress" from "interrupted dump" by this lock (released on exit, even kill -9).
        self._lock_fd = os.open(self.tmp, os.O_RDONLY)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            self._create(attrs or {}, n_label_columns, class_names)
            self.f.swmr_mode = True
        except BaseException:
            self.abort()
            raise

    # -- layout -------------------------------------------------------------------------------
    def _create(self, attrs: Mapping[str, Any], n_label_columns: int | None, class_names) -> None:
        f = self.f
        er = self.expected_rows
        root = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "nacscope_version": __version__,
            "created": _now(),
            "complete": False,
            "n_samples": -1,
            "format_minor": FORMAT_MINOR,
        }
        if self.n_expected is not None:
            root["n_expected"] = self.n_expected
        for key, value in {**root, **attrs}.items():
            f.attrs[key] = _attr_value(value)
        s = f.create_group("samples")
        s.create_dataset("index", (0,), maxshape=(None,), dtype="int64", chunks=(_rows_per_chunk(8, er),), **OTHER_COMPRESSION)
        if self.label_kind == "class":
            lab = s.create_dataset("labels", (0,), maxshape=(None,), dtype="int64", chunks=(_rows_per_chunk(8, er),), **OTHER_COMPRESSION)
            lab.attrs["kind"] = "class"
        elif self.label_kind == "multihot":
            c = int(n_label_columns)  # type: ignore[arg-type]
            lab = s.create_dataset(
                "labels", (0, c), maxshape=(None, c), dtype="uint8", chunks=(_rows_per_chunk(c, er), c), **OTHER_COMPRESSION
            )
            lab.attrs["kind"] = "multihot"
        if class_names is not None:
            s.create_dataset("class_names", data=np.array([str(c) for c in class_names], dtype=h5py.string_dtype()))
        if self.has_query_mask:
            s.create_dataset("is_query", (0,), maxshape=(None,), dtype="bool", chunks=(_rows_per_chunk(8, er),), **OTHER_COMPRESSION)
        if self.thumbnail_shape is not None:
            h, w, c = (int(v) for v in self.thumbnail_shape)
            s.create_dataset(
                "thumbnails",
                (0, h, w, c),
                maxshape=(None, h, w, c),
                dtype="uint8",
                chunks=(_rows_per_chunk(h * w * c, er), h, w, c),
                **FEATURE_COMPRESSION,
            )
        g = f.create_group("layers")
        for i, spec in enumerate(self.layers):
            lg = g.create_group(spec.name)
            wb = packed_width(spec.units)
            lg.create_dataset(
                "bits", (0, wb), maxshape=(None, wb), dtype="uint8", chunks=(_rows_per_chunk(wb, er), wb), **BITS_COMPRESSION
            )
            if spec.features:
                lg.create_dataset(
                    "features",
                    (0, spec.units),
                    maxshape=(None, spec.units),
                    dtype="float16",
                    chunks=(_rows_per_chunk(2 * spec.units, er), spec.units),
                    **FEATURE_COMPRESSION,
                )
            lg.attrs["units"] = spec.units
            lg.attrs["shape"] = np.array(spec.shape, dtype="int64")
            lg.attrs["kind"] = spec.kind
            lg.attrs["bitorder"] = "big"
            lg.attrs["order"] = i
        fg = f.create_group("features")
        for name, dim in self.features.items():
            check_name(name, "feature")
            fg.create_dataset(
                name, (0, int(dim)), maxshape=(None, int(dim)), dtype="float16",
                chunks=(_rows_per_chunk(2 * int(dim), er), int(dim)), **FEATURE_COMPRESSION,
            )

    # -- rows -------------------------------------------------------------------------------
    def append(
        self,
        bits: Mapping[str, np.ndarray],
        *,
        packed: bool = False,
        labels: np.ndarray | None = None,
        index: np.ndarray | None = None,
        is_query: np.ndarray | None = None,
        thumbnails: np.ndarray | None = None,
        features: Mapping[str, np.ndarray] | None = None,
        layer_features: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Append a batch of rows.

        Args:
            bits: layer name -> (B, units) bool/{0,1} array, or (B, row_bytes) uint8 if ``packed``.
            labels: (B,) ints, or (B, C) multi-hot, as declared.
            index: (B,) source-dataset indices; defaults to the running row number.
            is_query: (B,) bool, required when the writer was created with ``has_query_mask``.
            thumbnails: (B, H, W, C) uint8.
            features: name -> (B, F) floats (stored float16).
            layer_features: layer name -> (B, units) floats for layers declared with ``features``.
        """
        if self._closed:
            raise CodeSetError("writer is closed")
        missing = {s.name for s in self.layers} - set(bits)
        extra = set(bits) - {s.name for s in self.layers}
        if missing or extra:
            raise OptionError(f"append: layers missing {sorted(missing)} / unknown {sorted(extra)}")
        rows: list[tuple[h5py.Dataset, np.ndarray]] = []
        b = None
        for spec in self.layers:
            arr = np.asarray(bits[spec.name])
            if packed:
                if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != packed_width(spec.units):
                    raise OptionError(f"layer {spec.name!r}: packed rows must be uint8 (B, {packed_width(spec.units)})")
                # Padding bits beyond `units` must be zero.
                pad = packed_width(spec.units) * 8 - spec.units
                if pad and arr.size and np.any(arr[:, -1] & np.uint8((1 << pad) - 1)):
                    raise OptionError(f"layer {spec.name!r}: padding bits of packed rows must be zero")
            else:
                arr = arr.reshape(len(arr), -1)
                if arr.shape[1] != spec.units:
                    raise OptionError(f"layer {spec.name!r}: expected {spec.units} units, got {arr.shape[1]}")
                arr = pack_bits(arr)
            b = len(arr) if b is None else b
            if len(arr) != b:
                raise OptionError("append: all arrays of a batch need the same number of rows")
            rows.append((self.f["layers"][spec.name]["bits"], arr))
        assert b is not None
        s = self.f["samples"]
        idx = np.arange(self.n, self.n + b) if index is None else np.asarray(index, dtype=np.int64)
        rows.append((s["index"], idx))
        if self.label_kind is not None:
            if labels is None:
                raise OptionError("append: this code set has labels; pass labels=")
            lab = np.asarray(labels)
            rows.append((s["labels"], lab.astype(np.uint8 if self.label_kind == "multihot" else np.int64)))
        if self.has_query_mask:
            if is_query is None:
                raise OptionError("append: this code set has a query mask; pass is_query=")
            rows.append((s["is_query"], np.asarray(is_query, dtype=bool)))
        if self.thumbnail_shape is not None:
            if thumbnails is None:
                raise OptionError("append: this code set has thumbnails; pass thumbnails=")
            rows.append((s["thumbnails"], np.asarray(thumbnails, dtype=np.uint8)))
        feats = dict(features or {})
        if set(feats) != set(self.features):
            raise OptionError(f"append: features must be exactly {sorted(self.features)}")
        for name, arr in feats.items():
            rows.append((self.f["features"][name], np.asarray(arr, dtype=np.float16)))
        lf = dict(layer_features or {})
        for spec in self.layers:
            if spec.features:
                if spec.name not in lf:
                    raise OptionError(f"append: layer {spec.name!r} stores features; pass layer_features=")
                rows.append((self.f["layers"][spec.name]["features"], np.asarray(lf[spec.name], dtype=np.float16).reshape(b, -1)))
        for ds, arr in rows:
            if len(arr) != b or arr.shape[1:] != ds.shape[1:]:
                raise OptionError(f"append: {ds.name} expects rows of shape {ds.shape[1:]}, got {arr.shape}")
        for ds, arr in rows:
            ds.resize(self.n + b, axis=0)
            ds[self.n : self.n + b] = arr
        self.n += b
        self._appends += 1
        if self._appends % self.flush_every == 0:
            self.f.flush()

    # -- end ----------------------------------------------------------------------------------
    def close(self, extra_attrs: Mapping[str, Any] | None = None) -> Path:
        """Finish the file: record the sample count, mark it complete, and rename it into place."""
        if self._closed:
            return self.path
        try:
            self.f.close()
            # Attributes cannot be written in SWMR mode: reopen normally to finish.
            with h5py.File(self.tmp, "r+", locking=False) as f:
                f.attrs["n_samples"] = self.n
                f.attrs["complete"] = True
                for key, value in (extra_attrs or {}).items():
                    f.attrs[key] = _attr_value(value)
            os.replace(self.tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self._unlock()
        return self.path

    def abort(self) -> None:
        """Drop the file being written; the final name is never touched."""
        self._closed = True
        try:
            self.f.close()
        except Exception:
            pass
        self.tmp.unlink(missing_ok=True)
        self._unlock()

    def _unlock(self) -> None:
        if getattr(self, "_lock_fd", -1) >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> "CodeSetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _attr_value(value: Any) -> Any:
    """HDF5 attributes hold scalars, strings and arrays; anything else is stored as JSON text."""
    if value is None:
        return ""
    if isinstance(value, (str, bool, int, float, np.integer, np.floating, np.bool_)):
        return value
    if isinstance(value, np.ndarray):
        return value
    return json.dumps(value, sort_keys=True, default=str)

