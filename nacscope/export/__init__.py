"""Export one layer of a code set to other tools' formats: npz, npy, parquet, csv, faiss.

Every format carries the codes of one layer (unpacked 0/1 bytes, or packed with ``np.packbits``
big bit order, exactly as in the code set), and where the format allows, the sample indices, the
labels and the query/gallery split:

============  =====================================================================================
``npz``       arrays ``codes`` (N, D) uint8 0/1 or (N, ceil(D/8)) packed, ``index`` (N,) int64,
              ``labels`` (N,) int64 or (N, C) uint8 multi-hot, ``is_query`` (N,) bool, and the
              scalars ``units`` and ``packed``.
``npy``       ``OUT.npy`` holds the codes; ``OUT.index.npy``, ``OUT.labels.npy`` and
              ``OUT.is_query.npy`` are written beside it (the inputs ``nacscope import-codes`` takes).
``parquet``   one row per sample: ``index``, ``label`` (or ``labels``, a fixed-size list of C
              uint8 for multi-hot), ``is_query``, and ``code``: fixed-size binary (packed) or a
              fixed-size list of D uint8 (unpacked). Schema metadata: layer, units, bitorder.
``csv``       header ``index,label,is_query,code``; ``code`` is the packed row as a hex string
              (2 hex digits per byte, unit 0 is the most significant bit of the first byte);
              multi-hot labels are the active label indices joined by ``;``.
``faiss``     a ``faiss.IndexBinaryFlat`` over the packed rows (dimension ``8 * ceil(D/8)``: the
              zero padding bits leave Hamming distances unchanged), loadable with
              ``faiss.read_index_binary``; ids are row numbers of the export, and
              ``OUT.rows.npz`` beside it maps them to ``index``, ``labels``, ``is_query``.
============  =====================================================================================

Outputs are streamed block by block (bounded memory whatever N), written under ``<name>.partial``
and renamed into place only when complete; an existing output is refused unless ``force``.
"""

from __future__ import annotations

import importlib
import os
import warnings
import zipfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from nacscope._files import atomic_write, check_output
from nacscope.codes.format import CodeSet, unpack_bits
from nacscope.codes.reader import PartialFileWarning
from nacscope.codes.inputs import codeset_files
from nacscope.errors import CodeSetError, OptionError
from nacscope.progress import Progress

FORMATS = ("npz", "npy", "parquet", "csv", "faiss")
ROW_SELECTIONS = ("all", "query", "gallery")
#: Suffixes from which the format is inferred when none is given.
SUFFIX_FORMATS = {".npz": "npz", ".npy": "npy", ".parquet": "parquet", ".pq": "parquet", ".csv": "csv",
                  ".faiss": "faiss", ".index": "faiss"}
#: Bytes of unpacked codes (one byte per unit) converted and written per block: bounds peak memory.
BLOCK_BYTES = 8 << 20
_EXTRAS = {"faiss": ("faiss", "faiss-cpu", "faiss"), "parquet": ("pyarrow", "pyarrow", "parquet")}



def require_optional(fmt: str):
    """Import the optional library a format needs, or raise a one-line error saying how to get it."""
    module, package, extra = _EXTRAS[fmt]
    try:
        return importlib.import_module(module)
    except ImportError:
        # No square brackets in the message (`nacscope[extra]`): the CLI prints errors as rich markup.
        raise OptionError(
            f"--format {fmt} needs the optional package {package!r}: pip install {package} "
            f"(or install nacscope with its extra {extra!r})"
        ) from None


def infer_format(out: str | os.PathLike, fmt: str | None) -> str:
    """The export format: ``fmt`` if given (validated), else from the suffix of ``out``."""
    if fmt is not None:
        f = fmt.lower().strip()
        if f not in FORMATS:
            raise OptionError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
        return f
    suffix = Path(out).suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        raise OptionError(f"cannot tell the format from {Path(out).name!r}: pass --format {'|'.join(FORMATS)}")
    return SUFFIX_FORMATS[suffix]


def choose_layer(cs: CodeSet, layer: str | None) -> str:
    """``layer`` if it exists; by default the ``code`` layer, or the only layer."""
    names = cs.layer_names
    if layer is not None:
        cs.layer(layer)  # raises CodeSetError listing the available layers
        return layer
    if "code" in names:
        return "code"
    if len(names) == 1:
        return names[0]
    raise OptionError(f"{cs.path.name} has several layers; pass --layer, one of: {', '.join(names)}")


def output_paths(out: str | os.PathLike, fmt: str, cs: CodeSet) -> dict[str, Path]:
    """Every file an export writes: ``{"main": OUT, <sidecar role>: path, ...}``."""
    out = Path(out)
    paths = {"main": out}
    if fmt == "npy":
        stem = out.with_suffix("") if out.suffix.lower() == ".npy" else out
        paths["index"] = stem.with_name(stem.name + ".index.npy")
        if cs.label_kind is not None:
            paths["labels"] = stem.with_name(stem.name + ".labels.npy")
        if cs.query_mask is not None:
            paths["is_query"] = stem.with_name(stem.name + ".is_query.npy")
    elif fmt == "faiss":
        paths["rows"] = out.with_name(out.name + ".rows.npz")
    return paths


@dataclass
class _Rows:
    """The selected rows of a code set, read block by block."""

    cs: CodeSet
    layer: str
    rows: np.ndarray | None  # sorted row numbers, or None for all rows

    @property
    def n(self) -> int:
        return self.cs.n_samples if self.rows is None else int(len(self.rows))

    def blocks(self, block_rows: int | None = None) -> Iterator[tuple[slice | np.ndarray, np.ndarray]]:
        """Yield ``(selector, packed block)`` where the selector reads the same rows of other arrays."""
        if block_rows is None:
            block_rows = int(np.clip(BLOCK_BYTES // self.cs.layer(self.layer).units, 256, 65536))
        for start in range(0, self.n, block_rows):
            stop = min(self.n, start + block_rows)
            sel = slice(start, stop) if self.rows is None else self.rows[start:stop]
            yield sel, self.cs.packed(self.layer, sel)

    def sample_array(self, name: str) -> np.ndarray | None:
        """index / labels / is_query of the selected rows (small per-sample arrays, read whole)."""
        if name == "index":
            arr = self.cs.sample_index
        elif name == "labels":
            arr = self.cs.labels()
        else:
            arr = self.cs.query_mask
        if arr is None:
            return None
        return arr if self.rows is None else arr[self.rows]


def export_codes(
    codeset: str | os.PathLike,
    out: str | os.PathLike,
    *,
    fmt: str | None = None,
    layer: str | None = None,
    packed: bool = False,
    rows: str = "all",
    force: bool = False,
    progress: Progress | None = None,
) -> list[Path]:
    """Export one layer of a code set; returns the paths written (the main file first).

    Args:
        codeset: the ``.h5`` code set.
        out: the output file.
        fmt: one of :data:`FORMATS`; inferred from the suffix of ``out`` when None.
        layer: the layer; by default ``code`` or the only layer.
        packed: store packed bytes instead of one 0/1 byte per unit (npz, npy, parquet; csv and
            faiss always store packed rows).
        rows: ``all``, or only the ``query`` / ``gallery`` rows of the file's split.
        force: overwrite existing outputs.
        progress: :data:`nacscope.progress.Progress`, ``(rows_done, rows_total, "exporting rows")`` after each block.
    """
    fmt = infer_format(out, fmt)
    if rows not in ROW_SELECTIONS:
        raise OptionError(f"unknown row selection {rows!r}: choose one of {', '.join(ROW_SELECTIONS)}")
    if fmt in _EXTRAS:
        require_optional(fmt)
    with warnings.catch_warnings():  # an unfinished file is refused just below: no "rows flushed so far" note first
        warnings.simplefilter("ignore", PartialFileWarning)
        opened = CodeSet(codeset)
    with opened as cs:
        if not cs.complete:
            raise CodeSetError(f"{cs.path} is not complete (being written or interrupted); export it when done")
        name = choose_layer(cs, layer)
        selected = _select_rows(cs, rows)
        _check_outputs(output_paths(out, fmt, cs).values(), force, codeset_files(codeset))
        if (cs.n_samples if selected is None else len(selected)) == 0:
            raise OptionError(f"no {rows} rows to export in {cs.path.name}")
        return write_rows(cs, out, fmt=fmt, layer=name, rows=selected, packed=packed, force=force, progress=progress)


def write_rows(cs: CodeSet, out: str | os.PathLike, *, fmt: str, layer: str, rows: np.ndarray | None,
               packed: bool = False, force: bool = False, progress: Progress | None = None) -> list[Path]:
    """Write ``rows`` (sorted row numbers; None: all) of ``layer`` of an open code set as ``fmt``."""
    if fmt in _EXTRAS:
        require_optional(fmt)
    paths = output_paths(out, fmt, cs)
    _check_outputs(paths.values(), force, codeset_files(cs.path))
    units = cs.layer(layer).units
    writer = {"npz": _write_npz, "npy": _write_npy, "parquet": _write_parquet, "csv": _write_csv,
              "faiss": _write_faiss}[fmt]
    with ExitStack() as stack:  # every output renamed when all are written; none on failure
        tmps = {role: stack.enter_context(atomic_write(p)) for role, p in paths.items()}
        writer(_Rows(cs, layer, rows), units, tmps, packed, progress)
    return list(paths.values())


# -- helpers ------------------------------------------------------------------------------------------
def _select_rows(cs: CodeSet, rows: str) -> np.ndarray | None:
    if rows == "all":
        return None
    mask = cs.query_mask
    if mask is None:
        raise OptionError(f"--rows {rows}: {cs.path.name} has no query/gallery split; use --rows all")
    return np.flatnonzero(mask if rows == "query" else ~mask)


def _check_outputs(paths: Sequence[Path], force: bool, inputs: Sequence[Path]) -> None:
    """Every output refused before any work if it is an input (the code set or its sidecar) or unsafe."""
    for p in paths:
        check_output(p, force=force, inputs=inputs)


def _codes_block(block: np.ndarray, units: int, packed: bool) -> np.ndarray:
    return block if packed else unpack_bits(block, units)  # (B, W) packed or (B, D) 0/1


def _codes_shape(n: int, units: int, packed: bool) -> tuple[int, int]:
    return (n, (units + 7) // 8 if packed else units)


class _NpyStream:
    """Write one ``.npy`` array block by block into an open binary file (bounded memory).

    numpy has no streaming ``.npy`` writer; the header is ``np.lib.format``'s own, the data rows
    follow in C order, which is all the format is.
    """

    def __init__(self, fh, shape: tuple[int, ...], dtype) -> None:
        self.fh = fh
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.rows = 0
        np.lib.format.write_array_header_2_0(
            fh, {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": shape}
        )

    def write(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype=self.dtype)
        assert block.shape[1:] == self.shape[1:], (block.shape, self.shape)
        self.fh.write(block.data)  # no copy
        self.rows += len(block)

    def done(self) -> None:
        if self.rows != self.shape[0]:
            raise CodeSetError(f"export wrote {self.rows} rows but expected {self.shape[0]}")


def _stream_array(write_file: Callable, blocks: Iterator[np.ndarray], shape, dtype) -> None:
    with write_file() as fh:
        s = _NpyStream(fh, shape, dtype)
        for b in blocks:
            s.write(b)
        s.done()


def _code_blocks(src: _Rows, units: int, packed: bool, progress: Progress | None) -> Iterator[np.ndarray]:
    done = 0
    for _, block in src.blocks():
        yield _codes_block(block, units, packed)
        done += len(block)
        if progress is not None:
            progress(done, src.n, "exporting rows")


def _small_arrays(src: _Rows) -> dict[str, np.ndarray]:
    out = {}
    for name in ("index", "labels", "is_query"):
        arr = src.sample_array(name)
        if arr is not None:
            out[name] = arr
    return out


# -- writers ------------------------------------------------------------------------------------------
def _write_npz(src: _Rows, units: int, tmps: dict[str, Path], packed: bool, progress: Progress | None) -> None:
    # Deflate at level 1: unpacked 0/1 bytes shrink ~8x at little cost; np.load reads it as usual.
    with zipfile.ZipFile(tmps["main"], "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1,
                         allowZip64=True) as z:
        def open_member(name: str):
            return lambda: z.open(f"{name}.npy", "w", force_zip64=True)

        _stream_array(open_member("codes"), _code_blocks(src, units, packed, progress),
                      _codes_shape(src.n, units, packed), np.uint8)
        extras = {**_small_arrays(src), "units": np.array(units, dtype=np.int64), "packed": np.array(packed)}
        for name, arr in extras.items():
            with z.open(f"{name}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asarray(arr), allow_pickle=False)


def _write_npy(src: _Rows, units: int, tmps: dict[str, Path], packed: bool, progress: Progress | None) -> None:
    _stream_array(lambda: open(tmps["main"], "wb"), _code_blocks(src, units, packed, progress),
                  _codes_shape(src.n, units, packed), np.uint8)
    for name, arr in _small_arrays(src).items():
        if name in tmps:
            with open(tmps[name], "wb") as fh:
                np.lib.format.write_array(fh, np.asarray(arr), allow_pickle=False)


def _write_parquet(src: _Rows, units: int, tmps: dict[str, Path], packed: bool, progress: Progress | None) -> None:
    pa = require_optional("parquet")
    import pyarrow.parquet as pq

    small = _small_arrays(src)
    labels = small.get("labels")
    width = (units + 7) // 8
    fields = [pa.field("index", pa.int64())]
    if labels is not None:
        fields.append(pa.field("label", pa.int64()) if labels.ndim == 1
                      else pa.field("labels", pa.list_(pa.uint8(), labels.shape[1])))
    if "is_query" in small:
        fields.append(pa.field("is_query", pa.bool_()))
    fields.append(pa.field("code", pa.binary(width) if packed else pa.list_(pa.uint8(), units)))
    meta = {"nacscope.layer": src.layer, "nacscope.units": str(units), "nacscope.bitorder": "big",
            "nacscope.packed": str(bool(packed)).lower()}
    schema = pa.schema(fields, metadata=meta)
    done = 0
    with pq.ParquetWriter(tmps["main"], schema) as w:
        for sel, block in src.blocks():
            b = len(block)
            s = slice(done, done + b)
            cols = [pa.array(small["index"][s], pa.int64())]
            if labels is not None:
                cols.append(pa.array(labels[s], pa.int64()) if labels.ndim == 1
                            else _fixed_list(pa, labels[s].astype(np.uint8), labels.shape[1]))
            if "is_query" in small:
                cols.append(pa.array(small["is_query"][s], pa.bool_()))
            if packed:
                cols.append(pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), b, [None, pa.py_buffer(
                    np.ascontiguousarray(block).tobytes())]))
            else:
                cols.append(_fixed_list(pa, unpack_bits(block, units), units))
            w.write_table(pa.Table.from_arrays(cols, schema=schema))
            done += b
            if progress is not None:
                progress(done, src.n, "exporting rows")


def _fixed_list(pa, matrix: np.ndarray, width: int):
    """A (B, width) uint8 matrix as an Arrow fixed-size list column, without a Python loop."""
    flat = pa.array(np.ascontiguousarray(matrix, dtype=np.uint8).reshape(-1), pa.uint8())
    return pa.FixedSizeListArray.from_arrays(flat, width)


def hex_rows(packed: np.ndarray) -> list[str]:
    """Packed rows (B, W) uint8 as B hex strings of 2W digits (most significant bit of byte 0 first)."""
    w = packed.shape[1] * 2
    s = np.ascontiguousarray(packed).tobytes().hex()
    return [s[i : i + w] for i in range(0, len(s), w)]


def _write_csv(src: _Rows, units: int, tmps: dict[str, Path], packed: bool, progress: Progress | None) -> None:
    small = _small_arrays(src)
    labels = small.get("labels")
    header = ["index"]
    if labels is not None:
        header.append("label" if labels.ndim == 1 else "labels")
    if "is_query" in small:
        header.append("is_query")
    header.append("code")
    done = 0
    with open(tmps["main"], "w", encoding="ascii", newline="\n") as fh:
        fh.write(f"# nacscope export: layer={src.layer} units={units} code=hex of packed bits, big bit order\n")
        fh.write(",".join(header) + "\n")
        for _, block in src.blocks():
            b = len(block)
            cols: list[list[str]] = [[str(v) for v in small["index"][done : done + b].tolist()]]
            if labels is not None:
                lab = labels[done : done + b]
                cols.append([str(v) for v in lab.tolist()] if lab.ndim == 1
                            else [";".join(map(str, np.flatnonzero(r).tolist())) for r in lab])
            if "is_query" in small:
                cols.append(["1" if v else "0" for v in small["is_query"][done : done + b].tolist()])
            cols.append(hex_rows(block))
            fh.write("".join(",".join(r) + "\n" for r in zip(*cols)))
            done += b
            if progress is not None:
                progress(done, src.n, "exporting rows")


def _write_faiss(src: _Rows, units: int, tmps: dict[str, Path], packed: bool, progress: Progress | None) -> None:
    faiss = require_optional("faiss")
    width = (units + 7) // 8
    index = faiss.IndexBinaryFlat(8 * width)
    done = 0
    for _, block in src.blocks():
        index.add(np.ascontiguousarray(block, dtype=np.uint8))  # (B, width) packed rows
        done += len(block)
        if progress is not None:
            progress(done, src.n, "exporting rows")
    faiss.write_index_binary(index, str(tmps["main"]))
    with open(tmps["rows"], "wb") as fh:
        np.savez(fh, **_small_arrays(src), units=np.array(units, dtype=np.int64))


__all__ = ["FORMATS", "ROW_SELECTIONS", "SUFFIX_FORMATS", "choose_layer", "export_codes", "hex_rows", "infer_format",
           "output_paths", "require_optional", "write_rows"]
