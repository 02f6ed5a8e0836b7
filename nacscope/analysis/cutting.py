"""Compiled (numba) kernels of the exact partition: many convex polygons cut by many lines at once.

Polygons are stored flat: ``verts`` (V, 2) float64, counter-clockwise per polygon, and ``offs``
(P + 1,) int64 with polygon ``i`` at ``verts[offs[i]:offs[i + 1]]``. The rules are those of
:func:`nacscope.analysis.polygons.split` (a vertex within ``eps`` of a line lies on it; a cut that
leaves a piece of area below ``min_area`` is not made).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _area_c(p):
    n = p.shape[0]
    a = 0.0
    cx = 0.0
    cy = 0.0
    for i in range(n):
        j = (i + 1) % n
        cr = p[i, 0] * p[j, 1] - p[j, 0] * p[i, 1]
        a += cr
        cx += (p[i, 0] + p[j, 0]) * cr
        cy += (p[i, 1] + p[j, 1]) * cr
    a *= 0.5
    if abs(a) < 1e-300:
        return a, p[:, 0].mean(), p[:, 1].mean()
    return a, cx / (6 * a), cy / (6 * a)


@njit(cache=True)
def centroids(verts, offs):
    """(P, 2) area centroids and (P,) areas of flat polygons."""
    p = offs.shape[0] - 1
    out = np.empty((p, 2))
    ar = np.empty(p)
    for i in range(p):
        a, cx, cy = _area_c(verts[offs[i] : offs[i + 1]])
        out[i, 0] = cx
        out[i, 1] = cy
        ar[i] = abs(a)
    return out, ar


@njit(cache=True)
def _split(p, s, eps):
    n = p.shape[0]
    pos = np.empty((n + 2, 2))
    neg = np.empty((n + 2, 2))
    npos = 0
    nneg = 0
    for i in range(n):
        j = (i + 1) % n
        si = s[i] if abs(s[i]) > eps else 0.0
        sj = s[j] if abs(s[j]) > eps else 0.0
        if si >= 0:
            pos[npos] = p[i]
            npos += 1
        if si <= 0:
            neg[nneg] = p[i]
            nneg += 1
        if si * sj < 0:
            t = si / (si - sj)
            qx = p[i, 0] + t * (p[j, 0] - p[i, 0])
            qy = p[i, 1] + t * (p[j, 1] - p[i, 1])
            pos[npos, 0] = qx
            pos[npos, 1] = qy
            neg[nneg, 0] = qx
            neg[nneg, 1] = qy
            npos += 1
            nneg += 1
    return pos[:npos].copy(), neg[:nneg].copy()


@njit(cache=True)
def cut_all(verts, offs, z0, gu, gv, cents, eps_s, min_area):
    """Cut every polygon ``i`` by the zero lines of ``z0[i] + gu[i] (u - cu) + gv[i] (v - cv)`` (each (B, U)).

    Returns:
        ``(verts, offs, bits, parent)`` of the pieces: flat polygons, (P, U) bool patterns (signs at
        each piece's centroid) and (P,) the index of the polygon each piece came from.
    """
    b, u = z0.shape
    out_v = []
    out_bits = []
    out_parent = []
    for i in range(b):
        poly = verts[offs[i] : offs[i + 1]].copy()
        cu, cv = cents[i, 0], cents[i, 1]
        pieces = [poly]
        for j in range(u):
            g = np.sqrt(gu[i, j] ** 2 + gv[i, j] ** 2)
            eps = eps_s * g
            if g == 0.0:
                continue
            new = []
            for p in pieces:
                s = z0[i, j] + (p[:, 0] - cu) * gu[i, j] + (p[:, 1] - cv) * gv[i, j]
                if s.max() <= eps or s.min() >= -eps:
                    new.append(p)
                    continue
                a, c = _split(p, s, eps)
                if a.shape[0] < 3 or c.shape[0] < 3:
                    new.append(p)
                    continue
                aa = abs(_area_c(a)[0])
                ac = abs(_area_c(c)[0])
                if aa < min_area or ac < min_area:
                    new.append(p)
                else:
                    new.append(a)
                    new.append(c)
            pieces = new
        for p in pieces:
            _, x, y = _area_c(p)
            bits = np.empty(u, np.bool_)
            for j in range(u):
                bits[j] = z0[i, j] + (x - cu) * gu[i, j] + (y - cv) * gv[i, j] > 0
            out_v.append(p)
            out_bits.append(bits)
            out_parent.append(i)
    n = len(out_v)
    new_offs = np.zeros(n + 1, np.int64)
    for k in range(n):
        new_offs[k + 1] = new_offs[k] + out_v[k].shape[0]
    nv = np.empty((new_offs[n], 2))
    bits_arr = np.empty((n, u), np.bool_)
    parent = np.empty(n, np.int64)
    for k in range(n):
        nv[new_offs[k] : new_offs[k + 1]] = out_v[k]
        bits_arr[k] = out_bits[k]
        parent[k] = out_parent[k]
    return nv, new_offs, bits_arr, parent


@njit(cache=True)
def face_of(verts, offs, qu, qv):
    """Index of the first polygon whose closed interior holds ``(qu, qv)`` (-1 if none)."""
    for i in range(offs.shape[0] - 1):
        p = verts[offs[i] : offs[i + 1]]
        n = p.shape[0]
        inside = True
        for k in range(n):
            m = (k + 1) % n
            ex, ey = p[m, 0] - p[k, 0], p[m, 1] - p[k, 1]
            if ex * (qv - p[k, 1]) - ey * (qu - p[k, 0]) < -1e-12:
                inside = False
                break
        if inside:
            return i
    return -1
