"""The TUI's view of one code set: cached reads and calls into ``nacscope.analysis``.

Everything the screens show comes from here, and every number comes from ``nacscope.analysis``
(this module holds no metric of its own: it reads the file, caches what it read, and forwards).
All file access goes through one lock, because analysis functions run in worker threads and may
briefly reopen the file read-write to cache their results.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from nacscope.codes.format import CodeSet, LayerInfo, partial_path
from nacscope.errors import CodeSetError, quiet_library_warnings
from nacscope.progress import Progress


#: Thumbnails are read from the file in blocks of this many rows (and kept, LRU, in memory).
THUMB_BLOCK = 512
THUMB_BLOCKS_KEPT = 64


class Busy(Exception):
    """The file is in use by a long computation; try again shortly."""


class Session:
    """An open code set and what the TUI has read or computed from it.

    Args:
        path: the code set (``X.h5``; ``X.h5.partial`` while ``dump`` writes it is followed).
    """

    def __init__(self, path: str | Path) -> None:
        self.cs = _open(path)
        self.requested_path = Path(path)
        self.lock = threading.RLock()
        self._thumbs: OrderedDict[int, np.ndarray] = OrderedDict()
        self._packed: dict[str, np.ndarray] = {}
        self._collisions: dict[str, Any] = {}
        self.summary: dict[str, Any] | None = None
        self._load_metadata()

    # -- metadata (read once, refreshed while following) -----------------------------------------
    def _load_metadata(self) -> None:
        cs = self.cs
        with self.lock:
            self.layers: list[LayerInfo] = cs.layers
            self.layer_names = [l.name for l in self.layers]
            self.attrs = cs.attrs
            self.n = cs.rows_available() if cs.swmr else cs.n_samples
            self.label_kind = cs.label_kind
            labels = cs.labels(slice(0, self.n))
            self.labels = labels
            self.class_names = cs.class_names
            qm = cs.query_mask
            self.query_mask = None if qm is None else qm[: self.n]
            self.has_thumbnails = cs.has_thumbnails

    @property
    def path(self) -> Path:
        return self.cs.path

    @property
    def following(self) -> bool:
        """True while the file is still being written (opened as ``.partial`` in SWMR mode)."""
        return self.cs.swmr

    @property
    def complete(self) -> bool:
        return self.cs.complete

    def layer(self, name: str) -> LayerInfo:
        for info in self.layers:
            if info.name == name:
                return info
        raise CodeSetError(f"no layer {name!r}; available: {', '.join(self.layer_names)}")

    def refresh(self) -> tuple[int, bool]:
        """Follow a growing file: returns (rows now visible, whether the writer has finished).

        When the writer has closed and renamed the file, the final file is reopened.
        """
        with self.lock:
            if not self.cs.swmr:
                return self.n, True
            final = self.requested_path if not self.requested_path.name.endswith(".partial") else Path(
                str(self.requested_path)[: -len(".partial")]
            )
            if not partial_path(final).exists() and final.exists():
                self.cs.close()
                self.cs = CodeSet(final)
                self._reset_caches()
                self._load_metadata()
                return self.n, True
            n = self.cs.refresh()
            if n != self.n:
                self._reset_caches()
                self._load_metadata()
            return self.n, False

    def _reset_caches(self) -> None:
        self._thumbs.clear()
        self._packed.clear()
        self._collisions.clear()
        self.summary = None

    def close(self) -> None:
        with self.lock:
            self.cs.close()

    # -- samples ---------------------------------------------------------------------------------
    def label_of(self, row: int) -> Any:
        """The label of a row: an int, a list of ints (multi-hot), or None."""
        if self.labels is None:
            return None
        lab = self.labels[row]
        return [int(i) for i in np.flatnonzero(lab)] if self.label_kind == "multihot" else int(lab)

    def label_text(self, row: int) -> str:
        lab = self.label_of(row)
        if lab is None:
            return "-"
        names = self.class_names
        if isinstance(lab, list):
            return ",".join(names[i] if names and i < len(names) else str(i) for i in lab) or "(none)"
        return names[lab] if names and 0 <= lab < len(names) else str(lab)

    def thumbnail(self, row: int, *, wait: bool = True) -> np.ndarray | None:
        """The stored thumbnail of a row, (H, W, C) uint8; None without thumbnails.

        Raises:
            Busy: if ``wait`` is False and a long computation holds the file.
        """
        if not self.has_thumbnails or not 0 <= row < self.n:
            return None
        b = row // THUMB_BLOCK
        block = self._thumbs.get(b)
        if block is None:
            if not self.lock.acquire(blocking=wait):
                raise Busy()
            try:
                stop = min(self.n, (b + 1) * THUMB_BLOCK)
                block = self.cs.thumbnails(slice(b * THUMB_BLOCK, stop))
            finally:
                self.lock.release()
            self._thumbs[b] = block
            while len(self._thumbs) > THUMB_BLOCKS_KEPT:
                self._thumbs.popitem(last=False)
        self._thumbs.move_to_end(b)
        return block[row - b * THUMB_BLOCK]

    def packed(self, layer: str) -> np.ndarray:
        """All packed bits of a layer, (N, row_bytes) uint8, read once."""
        arr = self._packed.get(layer)
        if arr is None:
            with self.lock:
                arr = self.cs.packed(layer, slice(0, self.n))
            self._packed[layer] = arr
        return arr

    def bits_text(self, layer: str, row: int) -> str:
        """A row's code as a string of 0/1 (unit order)."""
        from nacscope.codes.format import unpack_bits

        bits = unpack_bits(self.packed(layer)[row : row + 1], self.layer(layer).units)[0]
        return "".join("1" if b else "0" for b in bits)

    # -- analyses: every number below is computed by nacscope.analysis ------------------------------
    def analyze(self, progress: Progress | None = None, *, use_cache: bool = True) -> dict[str, Any]:
        """``nacscope.analysis.analyze_codeset`` on the whole file (cached in the file by the engine)."""
        from nacscope.analysis import analyze_codeset

        with self.lock:
            result = analyze_codeset(self.cs, None, use_cache=use_cache, progress=progress)
        self.summary = result
        return result

    def _memory_view(self) -> "_InMemoryCodes":
        return _InMemoryCodes(self)

    def neighbours(self, layer: str, row: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``retrieval.neighbours``: the k nearest rows (itself excluded) and their Hamming distances."""
        from nacscope.analysis.knn import neighbours

        return neighbours(self._memory_view(), layer, int(row), int(k))  # type: ignore[arg-type]

    def relevant(self, row: int, rows: np.ndarray) -> np.ndarray | None:
        """``retrieval.relevance`` of ``rows`` to the query ``row`` (None without labels)."""
        from nacscope.analysis.metrics import relevance

        if self.labels is None:
            return None
        return relevance(self.labels[[int(row)]], self.labels[np.asarray(rows, dtype=np.int64)])[0]

    def query_gallery(self, row: int) -> tuple[np.ndarray, str]:
        """The gallery a query is ranked against, as in ``analysis.retrieval.codeset_retrieval``:
        the gallery rows for a query of a split file, every other sample otherwise."""
        mask = self.query_mask
        if mask is not None and mask.any() and (~mask).any() and mask[row]:
            return np.flatnonzero(~mask), "gallery"
        return np.delete(np.arange(self.n), int(row)), "all other samples"

    def query_ap(self, layer: str, row: int, R: int = 1000) -> dict[str, Any] | None:
        """One query's AP, AP@R and tie-aware AP from ``retrieval.retrieval_metrics`` (None without labels)."""
        from nacscope.analysis.retrieval import retrieval_metrics

        if self.labels is None:
            return None
        gallery, what = self.query_gallery(row)
        packed = self.packed(layer)
        res = retrieval_metrics(packed[[row]], packed[gallery], self.labels[[row]], self.labels[gallery],
                                n_bits=self.layer(layer).units, R=R)
        return {"ap": float(res.ap[0]), "ap_at_r": float(res.ap_at_r[0]), "R": res.R,
                "tie_aware_ap": float(res.tie_ap[0]), "n_relevant": int(res.n_relevant[0]), "gallery": what,
                "n_gallery": int(len(gallery))}

    def collisions(self, layer: str) -> Any:
        """``collisions.collision_groups`` of a layer (kept in memory per layer)."""
        from nacscope.analysis.collisions import collision_groups

        rep = self._collisions.get(layer)
        if rep is None:
            rep = collision_groups(self.packed(layer), self.labels)
            self._collisions[layer] = rep
        return rep

    def near_collisions(self, layer: str, radius: int, progress: Progress | None = None) -> dict[str, Any]:
        """``collisions.near_collisions`` of a layer within a Hamming radius (pairs, samples)."""
        from nacscope.analysis.collisions import near_collisions

        return near_collisions(self.packed(layer), int(radius), progress=progress)

    def near_pairs(self, layer: str, radius: int, progress: Progress | None = None) -> np.ndarray:
        """``collisions.near_collision_pairs``: (P, 3) rows (i, j, distance) within ``radius``, nearest first."""
        from nacscope.analysis.collisions import near_collision_pairs

        return near_collision_pairs(self.packed(layer), int(radius), progress=progress)

    def export_rows(self, out: str | Path, rows: np.ndarray, layer: str, *, force: bool = False) -> list[Path]:
        """``export.subset.export_selection``: ``rows`` to ``.npz``/``.csv`` or a new code set (``.h5``).

        Raises:
            Busy: while a long computation holds the file.
        """
        from nacscope.export.subset import export_selection

        if not self.lock.acquire(blocking=False):
            raise Busy()
        try:
            return export_selection(self.cs, out, rows, layer=layer, force=force)
        finally:
            self.lock.release()

    def projection(self, layer: str) -> tuple[np.ndarray, dict[str, Any]] | None:
        """The stored UMAP projection of a layer, ``(coords (N, 2), info)``, or None if absent."""
        from nacscope.analysis.projection import projection_name
        from nacscope.codes.cache import projection_attrs, read_projection

        name = projection_name(layer)
        with self.lock:
            coords = read_projection(self.cs, name)
            if coords is None:
                return None
            attrs = projection_attrs(self.cs, name) or {}
            tw = attrs.get("trustworthiness")
            params = attrs.get("params")
        return coords, {"name": name, "params": params, "trustworthiness": None if tw is None else float(tw)}

    def compute_projection(self, layer: str, progress: Progress | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """``projection.umap_projection`` of a layer's bits (the engine stores it in the file)."""
        from nacscope.analysis.projection import umap_projection

        with self.lock:
            coords, info = umap_projection(self.cs, layer, use_cache=not self.following, progress=progress)
        return np.asarray(coords), info

    def _network_and_inputs(self, rows: list[int]):
        """The file's network (rebuilt from its ``model_source`` and verified on stored rows) and the inputs."""
        from nacscope.codes.sources import rebuild

        with self.lock:
            return rebuild(self.cs, rows)

    def _sites(self, model, x, layer: str):
        """The sites that define the regions up to the file's layer ``layer`` (``capture.sites_through``)."""
        from nacscope.codes.capture import list_sites, sites_through

        return sites_through(list_sites(model.eval(), x[:1]), layer)

    def segment(self, layer: str, a: int, b: int, progress: Progress | None = None) -> dict[str, Any]:
        """Linear regions crossed on the input segment between samples a and b (``analysis.segments``):
        exact walk and dense-sampling lower bound, over the ReLU sites up to ``layer`` (every ReLU site,
        then the code's sign, for the code layer).

        ``progress`` is passed on to the exact walk (the part of the segment walked), so raising from it
        cancels the walk part-way."""
        from nacscope.analysis.segments import count_regions_dense, count_regions_exact

        if progress:
            progress(0, 3, "loading the network and the two inputs")
        with quiet_library_warnings():
            model, x = self._network_and_inputs([a, b])
            sites = self._sites(model, x, layer)
            exact = count_regions_exact(model, x[:1], x[1:2], sites=sites, progress=progress)
            if progress:
                progress(2, 3, "dense sampling (1,000 points)")
            dense = count_regions_dense(model, x[:1], x[1:2], n=1000, sites=sites)
        if progress:
            progress(3, 3, "done")
        return {"regions_exact": int(exact.regions[0]), "regions_dense_1000": int(dense[0]),
                "forward_passes": int(exact.steps[0]) if exact.steps is not None else None,
                "sites": len(sites)}

    def plane(self, layer: str, a: int, b: int, c: int, progress: Progress | None = None,
              resolution: int = 96) -> dict[str, Any]:
        """The exact partition of the input plane through samples a, b, c
        (``analysis.partition.exact_plane_partition``, the sites up to ``layer`` as for :meth:`segment`),
        with a picture of the polygon edges rasterised into ``resolution`` x ``resolution`` cells: edges
        dark, faces light, v upwards, the anchors red. ``progress`` goes to the partition (raising from
        it cancels)."""
        from nacscope.analysis.partition import exact_plane_partition
        from nacscope.analysis.partition_plot import edge_raster

        with quiet_library_warnings():
            if progress:
                progress(0, 0, "loading the network and the three inputs")
            model, x = self._network_and_inputs([a, b, c])
            sites = self._sites(model, x, layer)
            res = exact_plane_partition(model, x, sites=sites, progress=progress)
        edges = edge_raster(res, resolution, resolution)  # (R, R), row 0 = top
        image = np.where(edges[..., None], np.uint8(40), np.uint8(225)).repeat(3, 2)  # (R, R, 3)
        lo, hi = res.region.min(0), res.region.max(0)
        for u, v in res.anchors_uv:
            j = min(int((u - lo[0]) / (hi[0] - lo[0]) * resolution), resolution - 1)
            i = min(int((1 - (v - lo[1]) / (hi[1] - lo[1])) * resolution), resolution - 1)
            image[i, j] = (255, 0, 0)
        return {"regions": res.n_faces, "method": "exact", "vertices": res.n_vertices, "edges": res.n_edges,
                "sites": len(sites), "anchor_regions": [int(r) for r in res.anchor_faces], "image": image}


def _open(path: str | Path) -> CodeSet:
    """Open a code set (a file still being written opens in SWMR mode, without a file lock)."""
    return CodeSet(path)


class _InMemoryCodes:
    """The part of the CodeSet interface ``retrieval.neighbours`` reads, served from memory.

    Lets the engine's own function answer neighbour queries without re-reading the layer from disk
    on every key press.
    """

    def __init__(self, session: Session) -> None:
        self._s = session

    @property
    def n_samples(self) -> int:
        return self._s.n

    def packed(self, name: str, rows=None) -> np.ndarray:
        arr = self._s.packed(name)
        return arr if rows is None else arr[rows]

    def layer(self, name: str):
        return self._s.layer(name)
