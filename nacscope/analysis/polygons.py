"""Convex polygons in the plane: area, centroid, splitting along a line, and the graph of a partition.

A polygon is a ``(n, 2)`` float64 array of its vertices in counter-clockwise order. Splitting uses a
tolerance: a vertex whose signed distance to the line is within ``eps`` lies on it (it goes to both
sides, and no new vertex is made next to it), so near-degenerate cuts neither create needle vertices
nor flip sides by rounding.
"""

from __future__ import annotations

import numpy as np


def area(poly: np.ndarray) -> float:
    """Signed area (positive for counter-clockwise vertices) by the shoelace formula."""
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def areas(polys: list[np.ndarray]) -> np.ndarray:
    """(F,) unsigned areas of many polygons."""
    return np.array([abs(area(p)) for p in polys], dtype=np.float64)


def centroid(poly: np.ndarray) -> np.ndarray:
    """(2,) area centroid of a non-degenerate polygon (the vertex mean when the area vanishes)."""
    x, y = poly[:, 0], poly[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y  # (n,)
    a = cross.sum() / 2
    if abs(a) < 1e-300:
        return poly.mean(0)
    return np.array([((x + xn) * cross).sum(), ((y + yn) * cross).sum()]) / (6 * a)


def box(u_min: float, u_max: float, v_min: float, v_max: float) -> np.ndarray:
    """The rectangle ``[u_min, u_max] x [v_min, v_max]`` as a counter-clockwise polygon (4, 2)."""
    return np.array([[u_min, v_min], [u_max, v_min], [u_max, v_max], [u_min, v_max]], dtype=np.float64)


def check_convex(poly: np.ndarray) -> np.ndarray:
    """``poly`` as a counter-clockwise float64 (n, 2) array; ValueError unless convex with positive area."""
    p = np.asarray(poly, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or len(p) < 3:
        raise ValueError(f"a region is an (n >= 3, 2) array of vertices, got shape {p.shape}")
    if area(p) < 0:
        p = p[::-1].copy()
    e = np.roll(p, -1, 0) - p  # (n, 2) edges
    turn = e[:, 0] * np.roll(e, -1, 0)[:, 1] - e[:, 1] * np.roll(e, -1, 0)[:, 0]
    if area(p) <= 0 or (turn < -1e-12 * np.abs(e).max() ** 2).any():
        raise ValueError("the region must be a convex polygon with positive area")
    return p


def split(poly: np.ndarray, s: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """The parts of ``poly`` where the affine function with vertex values ``s`` is >= 0 and <= 0.

    Args:
        poly: (n, 2) convex polygon.
        s: (n,) the function at the vertices; it must take both signs beyond ``eps``.
        eps: values within ``eps`` of 0 count as 0 (the vertex lies on the line).

    Returns:
        ``(positive, negative)`` polygons, both convex and counter-clockwise.
    """
    s = np.where(np.abs(s) <= eps, 0.0, s)
    pos, neg = [], []
    n = len(poly)
    for i in range(n):
        j = (i + 1) % n
        si, sj = s[i], s[j]
        if si >= 0:
            pos.append(poly[i])
        if si <= 0:
            neg.append(poly[i])
        if si * sj < 0:
            t = si / (si - sj)
            q = poly[i] + t * (poly[j] - poly[i])
            pos.append(q)
            neg.append(q)
    return np.array(pos), np.array(neg)


def graph_counts(polys: list[np.ndarray], snap: float) -> tuple[int, int]:
    """Vertices and edges of the planar graph formed by a partition into polygons.

    Vertices closer than ``snap`` are one vertex (faces computed from different affine maps meet at
    points equal only up to rounding). An edge is a pair of consecutive vertices of a face, counted
    once however many faces share it.

    Returns:
        ``(V, E)``.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    if not polys:
        return 0, 0
    pts = np.concatenate(polys)  # (N, 2)
    pairs = cKDTree(pts).query_pairs(snap, output_type="ndarray")  # (K, 2)
    g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(pts), len(pts)))
    n_vertices, label = connected_components(g, directed=False)
    starts = np.cumsum([0] + [len(p) for p in polys[:-1]])
    edges = []
    for a, p in zip(starts, polys):
        ids = label[a : a + len(p)]
        nxt = np.roll(ids, -1)
        keep = ids != nxt
        edges.append(np.stack([np.minimum(ids, nxt)[keep], np.maximum(ids, nxt)[keep]], 1))
    e = np.unique(np.concatenate(edges), axis=0)
    return int(n_vertices), int(len(e))
