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


def planar_graph(polys: list[np.ndarray], snap: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The planar graph formed by a partition into polygons.

    Vertices closer than ``snap`` are one vertex (faces computed from different affine maps meet at
    points equal only up to rounding). An edge is a pair of consecutive vertices of a face; a vertex
    within ``snap`` of the inside of a face's side splits that side (a T-junction: a cut made in one
    face ends on the side of a neighbour that kept it whole, see :mod:`nacscope.analysis.cutting`).

    Returns:
        ``(points, edges, uses)``: (V, 2) one position per vertex, (E, 2) vertex ids of each distinct
        edge (smaller id first) and (E,) how many faces have it (2 inside a partition, 1 on its
        boundary; other counts mean faces that overlap or leave a gap).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    if not polys:
        return np.zeros((0, 2)), np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    pts = np.concatenate(polys)  # (N, 2)
    pairs = cKDTree(pts).query_pairs(snap, output_type="ndarray")  # (K, 2)
    g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(pts), len(pts)))
    n_vertices, label = connected_components(g, directed=False)
    points = np.empty((n_vertices, 2))
    points[label] = pts
    lens = np.fromiter(map(len, polys), np.int64, len(polys))
    ends = np.cumsum(lens)  # (F,) one past each face's last vertex
    nxt = np.arange(1, len(pts) + 1)  # (N,) the next vertex of the same face
    nxt[ends - 1] = ends - lens
    e = np.stack([label, label[nxt]], 1)  # (N, 2) every side of every face
    e = e[e[:, 0] != e[:, 1]]
    e = _split_t_junctions(points, e, snap)
    e, uses = np.unique(np.sort(e, 1), axis=0, return_counts=True)
    return points, e, uses


def _split_t_junctions(points: np.ndarray, sides: np.ndarray, snap: float) -> np.ndarray:
    """(S', 2) the sides (S, 2) with every vertex lying inside one (within ``snap``) made an end point."""
    from itertools import chain

    from scipy.spatial import cKDTree

    p, q = points[sides[:, 0]], points[sides[:, 1]]  # (S, 2)
    d = q - p
    length = np.linalg.norm(d, axis=1)  # (S,)
    near = cKDTree(points).query_ball_point((p + q) / 2, length / 2 + snap)
    n_near = np.fromiter(map(len, near), np.int64, len(near))
    cand = np.fromiter(chain.from_iterable(near), np.int64, int(n_near.sum()))  # (C,) vertex ids
    side = np.repeat(np.arange(len(sides)), n_near)  # (C,) their side
    r = points[cand] - p[side]  # (C, 2)
    t = (r * d[side]).sum(1) / length[side] ** 2
    dist = np.abs(r[:, 0] * d[side, 1] - r[:, 1] * d[side, 0]) / length[side]
    on = (dist <= snap) & (t > 0) & (t < 1) & (cand != sides[side, 0]) & (cand != sides[side, 1])
    if not on.any():
        return sides
    split = np.zeros(len(sides), bool)
    split[side[on]] = True
    out = [sides[~split]]
    for k in np.flatnonzero(split):
        m = on & (side == k)
        inner = cand[m][np.argsort(t[m])]
        path = np.concatenate([[sides[k, 0]], inner, [sides[k, 1]]])
        out.append(np.stack([path[:-1], path[1:]], 1))
    return np.concatenate(out)


def graph_counts(polys: list[np.ndarray], snap: float) -> tuple[int, int]:
    """``(V, E)`` of the planar graph of a partition (see :func:`planar_graph`)."""
    points, e, _ = planar_graph(polys, snap)
    return len(points), len(e)
