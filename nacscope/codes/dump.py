"""Streaming dump of ReLU activation patterns into a code set.

Pipeline (bounded memory whatever N and the number of layers):

1. the main thread takes one batch of uint8 images, moves it to the device, normalises it, runs the
   model once with :class:`~nacscope.codes.capture.SiteRecorder`, and packs each site's bits
   ``1[pre-activation > 0]`` *on the device* (only 1/8 of the bits cross to the host, copied into
   pinned memory without waiting; a CUDA event tells the writer when a batch has arrived);
2. the packed rows, labels, indices, features ``h`` (float16) and thumbnails go into a queue of at
   most ``queue_depth`` batches;
3. a writer thread gathers them into blocks of ``write_block_rows`` and appends each block to a
   :class:`~nacscope.codes.format.CodeSetWriter` (``<out>.partial``, SWMR, flushed after every
   append so a reader can follow) while the next batches compute.

Any error or Ctrl-C aborts: the writer thread stops and the partial file is removed; the final name
is only ever created by the rename in ``CodeSetWriter.close`` once the file is complete (code sets
are opened without HDF5 file locks, so a reader following the dump does not block that close).

Under ``torchrun`` (``WORLD_SIZE > 1``) each rank dumps a block of rows (:mod:`nacscope.codes.shards`).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nacscope.choices import PRECISIONS  # noqa: F401 (re-exported)
from nacscope.codes.capture import Site, SiteRecorder, pack_bits_torch
from nacscope.codes.format import CodeSetWriter, LayerSpec, packed_width
from nacscope.errors import CodeSetError, OptionError
from nacscope.progress import Progress

_STOP = object()
#: Longest a batch waits in memory before it is appended (a reader following a slow dump sees rows this often).
WRITE_EVERY_S = 2.0


@dataclass
class DumpInput:
    """The samples to dump.

    Attributes:
        images: uint8 (N, C, H, W): anything with ``len()`` whose slices ``images[a:b]`` give a
            tensor or array (a tensor in memory, a memmap, a lazy generator).
        normalize: uint8 (B, C, H, W) tensor on the device -> float32 model input.
        labels: (N,) ints or None. indices: (N,) source indices (default ``arange``).
        class_names: names of the label values.
        is_query: (N,) bool query/gallery split, or None.
    """

    images: Any
    normalize: Callable[[torch.Tensor], torch.Tensor]
    labels: Any = None
    indices: Any = None
    class_names: Sequence[str] | None = None
    is_query: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class DumpStats:
    """What a dump did."""

    path: Path
    n_samples: int
    layers: list[str]
    seconds: float
    bytes_on_disk: int
    extra: dict = field(default_factory=dict)

    @property
    def samples_per_s(self) -> float:
        return self.n_samples / max(self.seconds, 1e-9)


def thumbnail_shape(images_shape: Sequence[int], max_side: int) -> tuple[int, int, int]:
    """(H, W, C) of the stored thumbnails: the image itself when small, else shrunk to ``max_side``."""
    _, c, h, w = (int(s) for s in images_shape)
    scale = min(1.0, max_side / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale)), c


def _thumbnails(x: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """uint8 (B, C, H, W) -> uint8 (B, h, w, C)."""
    h, w, _ = shape
    if x.shape[-2:] != (h, w):
        x = F.interpolate(x.float(), size=(h, w), mode="area").round().clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1)


def projected_bytes(n: int, sites: Sequence[Site], feature_dim: int | None = 0) -> int:
    """Uncompressed size of the bits (and float16 features) of ``n`` samples."""
    return int(n) * (sum(packed_width(s.units) for s in sites) + 2 * int(feature_dim or 0))


def layer_specs(sites: Sequence[Site]) -> list[LayerSpec]:
    return [LayerSpec(s.name, s.units, s.shape, kind="code" if s.kind == "code" else "relu") for s in sites]


class _Writer(threading.Thread):
    """Appends queued batches to the code set; records the first error instead of dying silently.

    Batches are coalesced into blocks of at least ``block_rows`` rows before each append: the
    code set's per-sample arrays are chunked and compressed, and every append recompresses the
    chunk it ends in, so fewer, larger appends cost much less (``benchmarks/dump_throughput.py``:
    ~48 ms per 512-row append with features vs ~6 ms per 512 rows in 4,096-row blocks). A slow dump
    also appends whenever ``every_s`` seconds have passed since the last append, so that a reader
    (``inspect``, ``analyze`` of the ``.partial``) and a killed dump's file hold the rows done so far.
    """

    def __init__(self, writer: CodeSetWriter, depth: int, block_rows: int = 4096, every_s: float = WRITE_EVERY_S):
        super().__init__(name="nacscope-dump-writer", daemon=True)
        self.writer = writer
        self.q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self.error: BaseException | None = None
        self.rows = 0
        self.cancelled = False
        self.block_rows = max(1, int(block_rows))
        self.pending: list[tuple[dict, dict]] = []
        self.pending_rows = 0
        self.every_s = float(every_s)
        self.last_write = time.monotonic()

    def _write_pending(self) -> None:
        if not self.pending:
            return
        items, self.pending, self.pending_rows = self.pending, [], 0
        if len(items) == 1:
            bits, kw = items[0]
        else:
            bits = {k: np.concatenate([b[k] for b, _ in items]) for k in items[0][0]}
            kw = {}
            for key, value in items[0][1].items():
                if isinstance(value, dict):
                    kw[key] = {k: np.concatenate([it[1][key][k] for it in items]) for k in value}
                else:
                    kw[key] = np.concatenate([it[1][key] for it in items])
        self.writer.append(bits, packed=True, **kw)
        self.rows += len(kw["index"])
        self.last_write = time.monotonic()

    def run(self) -> None:
        while True:
            item = self.q.get()
            if item is _STOP:
                if self.error is None and not self.cancelled:
                    try:
                        self._write_pending()
                    except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                        self.error = exc
                return
            if self.error is not None or self.cancelled:
                continue  # drain after a failure so the producer never blocks
            try:
                ready, bits, kw = item
                if ready is not None:
                    ready.synchronize()  # device-to-host copies of this batch are done
                item = ({k: _host_numpy(v) for k, v in bits.items()},
                        {k: ({kk: _host_numpy(vv) for kk, vv in v.items()} if isinstance(v, dict) else _host_numpy(v))
                         for k, v in kw.items()})
                self.pending.append(item)
                self.pending_rows += len(item[1]["index"])
                if self.pending_rows >= self.block_rows or time.monotonic() - self.last_write >= self.every_s:
                    self._write_pending()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                self.error = exc

    def put(self, item) -> None:
        self.check()
        self.q.put(item)

    def check(self) -> None:
        if self.error is not None:
            exc = self.error
            if isinstance(exc, OSError):
                raise CodeSetError(f"writing {self.writer.tmp} failed ({exc.strerror or exc}); is the disk full?") from None
            raise exc

    def cancel(self) -> None:
        """Stop writing: drop queued batches and wait for the batch being written, if any."""
        self.cancelled = True
        while True:
            try:
                self.q.get_nowait()
            except queue.Empty:
                break
        self.q.put(_STOP)
        self.join(timeout=60)

    def finish(self) -> None:
        self.q.put(_STOP)
        self.join()
        self.check()


def _to_host(t: torch.Tensor) -> torch.Tensor:
    """Start copying ``t`` to pinned host memory without waiting (CPU tensors are returned as they are)."""
    if t.device.type == "cpu":
        return t
    out = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
    out.copy_(t, non_blocking=True)
    return out


def _host_numpy(a) -> np.ndarray:
    return a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def _to_numpy(a) -> np.ndarray:
    return a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def dump_codes(
    model: nn.Module,
    data: DumpInput,
    out: str | os.PathLike,
    sites: Sequence[Site],
    *,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    features: bool = True,
    thumbnails: int | None = 32,
    precision: str = "fp32",
    attrs: Mapping[str, Any] | None = None,
    force: bool = False,
    queue_depth: int = 2,
    progress: Progress | None = None,
    rows: tuple[int, int] | None = None,
    write_block_rows: int = 4096,
) -> DumpStats:
    """Dump the bits of ``sites`` for every sample of ``data`` into the code set ``out``.

    Args:
        model: the network; put in eval mode (BatchNorm running statistics) for the dump.
        data: the samples (see :class:`DumpInput`).
        out: the final file name; written as ``<out>.partial`` and renamed when complete.
        sites: selected sites from :func:`~nacscope.codes.capture.list_sites`.
        batch_size: samples per forward pass.
        device: where the model runs.
        features: also store the encoder features ``h`` (float16) of a NAC model.
        thumbnails: max side of the stored thumbnails, or None for none.
        precision: ``fp32`` (default, exact) or ``bf16`` (autocast; flips signs of near-zero
            pre-activations; recorded in the file).
        attrs: provenance attributes for the file root.
        force: overwrite an existing ``out``.
        queue_depth: batches that may wait for the writer (memory bound).
        progress: :data:`nacscope.progress.Progress`, ``progress(done, total, "dumping")`` after each batch is queued.
        rows: ``(start, stop)``: dump only these rows (used for multi-process shards).
        write_block_rows: rows gathered before each append to the file (a reader following the
            file sees rows in steps of this size); memory holds at most this plus ``queue_depth`` batches.

    Returns:
        :class:`DumpStats`.

    Raises:
        OptionError: bad batch size or precision. CodeSetError: the output exists or cannot be written.
    """
    if batch_size < 1:
        raise OptionError(f"must be >= 1, got {batch_size}", option="batch_size")
    if precision not in PRECISIONS:
        raise OptionError(f"must be one of {', '.join(PRECISIONS)}, got {precision!r}", option="precision")
    if not sites:
        raise OptionError("no layers selected")
    device = torch.device(device)
    n_all = len(data)
    start, stop = rows if rows is not None else (0, n_all)
    if n_all == 0 or stop <= start and rows is None:
        raise OptionError("the dataset has no samples to dump")
    model = model.eval().to(device)
    example = data.images[0:1]
    img_shape = tuple(_to_numpy(example).shape)
    recorder_out: dict[str, torch.Tensor] = {}

    def on_site(site: Site, z: torch.Tensor) -> None:
        recorder_out[site.name] = pack_bits_torch((z > 0).reshape(len(z), -1))  # (B, W) uint8 on device

    recorder = SiteRecorder(model, sites, on_site)
    # One probe forward tells whether features exist and their width.
    with torch.no_grad():
        h_probe, _ = recorder.forward(data.normalize(torch.as_tensor(_to_numpy(example)).to(device)))
    feat_dim = int(h_probe.shape[1]) if (features and h_probe is not None) else None
    thumb = thumbnail_shape(img_shape, thumbnails) if thumbnails else None
    labels_kind = None if data.labels is None else ("multihot" if data.labels.ndim == 2 else "class")
    meta = {"precision": precision, "batch_size": batch_size, "sites": [s.name for s in sites]}
    writer = CodeSetWriter(
        out,
        layer_specs(sites),
        label_kind=labels_kind,
        n_label_columns=int(data.labels.shape[1]) if labels_kind == "multihot" else None,
        class_names=list(data.class_names) if (data.class_names and labels_kind) else None,
        has_query_mask=data.is_query is not None,
        features={"h": feat_dim} if feat_dim else None,
        thumbnail_shape=thumb,
        attrs={**meta, **(attrs or {})},
        force=force,
        expected_rows=stop - start,  # readers of the .partial say "N of M rows"
    )
    worker = _Writer(writer, queue_depth, write_block_rows)
    worker.start()
    t0 = time.perf_counter()
    autocast = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16) if precision == "bf16" else _nullcontext()
    )
    try:
        with torch.no_grad(), autocast:
            for a in range(start, stop, batch_size):
                b = min(stop, a + batch_size)
                xb = torch.as_tensor(_to_numpy(data.images[a:b])).to(device, non_blocking=True)  # (B, C, H, W) uint8
                recorder_out.clear()
                h, _ = recorder.forward(data.normalize(xb))
                kw: dict[str, Any] = {
                    "index": _to_numpy(data.indices[a:b]) if data.indices is not None else np.arange(a, b),
                }
                if labels_kind:
                    kw["labels"] = _to_numpy(data.labels[a:b])
                if data.is_query is not None:
                    kw["is_query"] = np.asarray(data.is_query[a:b], dtype=bool)
                if thumb is not None:
                    kw["thumbnails"] = _to_host(_thumbnails(xb, thumb))
                if feat_dim:
                    kw["features"] = {"h": _to_host(h.to(torch.float16))}
                bits = {name: _to_host(t) for name, t in recorder_out.items()}
                ready = None
                if device.type == "cuda":  # the copies above are asynchronous: the writer waits on this
                    ready = torch.cuda.Event()
                    ready.record()
                worker.put((ready, bits, kw))
                if progress is not None:
                    progress(b - start, stop - start, "dumping")
        worker.finish()
        seconds = time.perf_counter() - t0
        path = writer.close(extra_attrs={"dump_seconds": round(seconds, 3)})
    except BaseException:
        worker.cancel()
        writer.abort()
        raise
    return DumpStats(path, worker.rows, [s.name for s in sites], seconds, file_size(path))


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def file_size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0

