"""Compiled (numba) kernels for ranking a gallery by Hamming distance without sorting.

Why hand-written: a full ranking with stable ties needs, for every (query, gallery) pair, only the
item's distance bucket and how many items of that bucket came before it in gallery order. A
counting sort does that in O(G + D) per query with two passes over the gallery, where numpy needs
(Q, G) temporaries for distances, a radix argsort, a gather of relevance and a cumsum
(``benchmarks/retrieval.py`` measures both against the float-dot + argsort baseline and faiss).
numba is already a dependency of umap-learn; kernels are compiled on first use and cached on disk.
Popcount is LLVM's ``ctpop`` (one POPCNT instruction on x86-64).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic


@intrinsic
def _popcount64(typingctx, x):
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@njit(cache=True, inline="always")
def _distance(qw, i, gw, j, dot):
    s = 0
    if dot:
        for w in range(qw.shape[1]):
            s += _popcount64(qw[i, w] & gw[j, w])
    else:
        for w in range(qw.shape[1]):
            s += _popcount64(qw[i, w] ^ gw[j, w])
    return s


@njit(cache=True)
def _rank_one(i, qw, gw, ql, gl, qm, gm, multihot, dot, me, n_bits, R, ks, knn_k,
              ap, ap_r, hits_k, top, kc, krc, hc, hrc, key, rel_b, rel_ord, rel_rord, cnt, rcnt, start, relstart,
              seen):  # pragma: no cover - compiled
    """One query of :func:`rank_metrics`; the trailing arrays are scratch space reused across queries."""
    n_g = gw.shape[0]
    nk = n_bits + 2
    cnt[:] = 0
    rcnt[:] = 0
    m = 0
    for j in range(n_g):
        r = False
        if multihot:
            for w in range(qm.shape[1]):
                if qm[i, w] & gm[j, w]:
                    r = True
                    break
        else:
            r = ql[i] == gl[j]
        if dot:
            k = n_bits - _distance(qw, i, gw, j, True)
            h = _distance(qw, i, gw, j, False)
        else:
            k = _distance(qw, i, gw, j, False)
            h = k
        if j == me:
            k = n_bits + 1
            h = n_bits + 1
            r = False
        key[j] = k
        if r:
            rel_b[m] = k
            rel_ord[m] = cnt[k]
            rel_rord[m] = rcnt[k]
            rcnt[k] += 1
            m += 1
        cnt[k] += 1
        if dot:
            hc[i, h] += 1
            if r:
                hrc[i, h] += 1
    c = 0
    rc = 0
    for b in range(nk):
        start[b] = c
        relstart[b] = rc
        c += cnt[b]
        rc += rcnt[b]
        kc[i, b] = cnt[b]
        krc[i, b] = rcnt[b]
    s_ap = 0.0
    s_apr = 0.0
    n_r = 0
    for t in range(m):  # relevant items, in gallery order
        b = rel_b[t]
        pos = start[b] + rel_ord[t] + 1  # 1-based rank: closer groups first, then gallery order
        p = (relstart[b] + rel_rord[t] + 1) / pos
        s_ap += p
        if pos <= R:
            s_apr += p
            n_r += 1
        for u in range(ks.shape[0]):
            if pos <= ks[u]:
                hits_k[i, u] += 1
    ap[i] = s_ap / m if m > 0 else 0.0
    ap_r[i] = s_apr / n_r if n_r > 0 else 0.0
    # The knn_k first items lie in the groups up to the one holding rank knn_k.
    last = 0
    while last < nk - 1 and start[last] + cnt[last] < knn_k:
        last += 1
    seen[:] = 0
    for j in range(n_g):
        b = key[j]
        if b <= last:
            pos = start[b] + seen[b]
            seen[b] += 1
            if pos < knn_k:
                top[i, pos] = j


@njit(parallel=True, cache=True)
def rank_metrics(qw, gw, ql, gl, qm, gm, multihot, dot, self_offset, n_bits, R, ks, knn_k,
                 ap, ap_r, hits_k, top, kc, krc, hc, hrc):  # pragma: no cover - compiled
    """Per query: AP (full and top R), hits in the top k, the top knn_k rows, and histograms.

    One pass over the gallery computes each item's key (distance), its ordinal among the items of
    equal key seen so far (its place inside that tie group, in gallery order) and the histogram; the
    rank of a relevant item is then ``items in closer groups + ordinal``, computed for the relevant
    items only; a last light pass over the keys collects the knn_k first items.

    Args (arrays are filled in place, rows = queries):
        qw, gw: (Q, W), (G, W) uint64 code words.
        ql, gl: (Q,), (G,) int64 class labels (unused if multihot).
        qm, gm: (Q, LW), (G, LW) uint64 label words (multi-hot; relevant = any common bit).
        dot: rank by n_bits - common ones instead of Hamming distance.
        self_offset: >= 0 for leave-one-out: query i is gallery row i + self_offset (never retrieved).
        ap, ap_r: (Q,) float64 AP over the whole ranking and over the top R.
        hits_k: (Q, len(ks)) int64 relevant items in the top ks[u].
        top: (Q, knn_k) int64 the first knn_k gallery rows of the ranking.
        kc, krc: (Q, n_bits + 2) int64 items / relevant items per ranking key.
        hc, hrc: the same per Hamming distance (only filled when dot; else pass kc, krc again).
    """
    n_q, n_g = qw.shape[0], gw.shape[0]
    nk = n_bits + 2
    n_chunks = min(n_q, 64)
    for ch in prange(n_chunks):
        # Scratch per chunk of queries, not per query: large per-query allocations cost page faults.
        key = np.empty(n_g, np.int32)
        rel_b = np.empty(n_g, np.int32)  # key of the m-th relevant item
        rel_ord = np.empty(n_g, np.int32)  # its ordinal among all items of that key
        rel_rord = np.empty(n_g, np.int32)  # its ordinal among the relevant items of that key
        cnt, rcnt = np.empty(nk, np.int64), np.empty(nk, np.int64)
        start, relstart, seen = np.empty(nk, np.int64), np.empty(nk, np.int64), np.empty(nk, np.int64)
        for i in range(ch * n_q // n_chunks, (ch + 1) * n_q // n_chunks):
            me = i + self_offset if self_offset >= 0 else -1
            _rank_one(i, qw, gw, ql, gl, qm, gm, multihot, dot, me, n_bits, R, ks, knn_k, ap, ap_r, hits_k, top,
                      kc, krc, hc, hrc, key, rel_b, rel_ord, rel_rord, cnt, rcnt, start, relstart, seen)


@njit(parallel=True, cache=True)
def topk(qw, gw, k, self_offset, n_bits, idx, dist):  # pragma: no cover - compiled
    """The k nearest gallery rows per query by Hamming distance, ties by row (counting sort)."""
    n_q, n_g = qw.shape[0], gw.shape[0]
    nk = n_bits + 2
    n_chunks = min(n_q, 64)
    for ch in prange(n_chunks):
        d = np.empty(n_g, np.int32)
        cnt = np.empty(nk, np.int64)
        start = np.empty(nk, np.int64)
        for i in range(ch * n_q // n_chunks, (ch + 1) * n_q // n_chunks):
            me = i + self_offset if self_offset >= 0 else -1
            cnt[:] = 0
            for j in range(n_g):
                h = _distance(qw, i, gw, j, False)
                if j == me:
                    h = n_bits + 1
                d[j] = h
                cnt[h] += 1
            c = 0
            last = -1
            for b in range(nk):
                start[b] = c
                c += cnt[b]
                if last < 0 and c >= k:
                    last = b  # the group holding rank k: nothing beyond it is needed
            for j in range(n_g):
                b = d[j]
                if b <= last:
                    pos = start[b]
                    if pos < k:
                        idx[i, pos] = j
                        dist[i, pos] = b
                    start[b] = pos + 1


@njit(parallel=True, cache=True)
def neighbour_counts(qw, gw, rows, radii, nn, within):  # pragma: no cover - compiled
    """Distance to the nearest other row, and rows within each radius, for the rows ``rows`` of gw."""
    for t in prange(rows.shape[0]):
        i = rows[t]
        best = 1 << 62
        for j in range(gw.shape[0]):
            if j == i:
                continue
            h = 0
            for w in range(gw.shape[1]):
                h += _popcount64(qw[t, w] ^ gw[j, w])
            if h < best:
                best = h
            for r in range(radii.shape[0]):
                if h <= radii[r]:
                    within[r, t] += 1
        nn[t] = best if gw.shape[0] > 1 else -1
