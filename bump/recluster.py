"""Full re-cluster of every hit (:func:`recluster`), for reprocessing: hits quantised into micro-cells
(``recluster_cell_m`` and 16 heading sectors), quick shift on the micro-cells (each links to its nearest denser
neighbour within ``recluster_link_m`` in space and heading, embedded as (x, y, L cos h, L sin h); road-spanning
kinds on their axis, (x, y, L cos 2h, L sin 2h)), then duplicate clusters merged with the gate of
:mod:`bump.cluster`, and clusters absorbed where most of their hits would have joined a larger one. A cluster merges
across directions only when at least ``recluster_span_hits`` of its hits, and most, span the road: scattered hits
(GPS accuracy 10-20 m gives 25 m gates) would otherwise chain both directions' clusters through a hit or two that a
rough road made look like a speed bump. Last, a cluster holding two hits of one pass metres apart
(:func:`bump.cluster.same_pass_pairs`) from at least ``apart_passes`` trips is split in two: fixes seconds apart
share their error, so one pass measures the distance between two defects to a metre or two even when GPS blurs their
hits into one cloud (15 m fixes, defects 30 m apart). Linear in hits apart from k-d tree pair queries and a loop
over the clusters that are split.
"""

from __future__ import annotations

import numpy as np

from bump.cluster import (
    DefectParams,
    absorb_pairs,
    duplicate_pairs,
    mean_heading,
    merge_forest,
    nearest_per_row,
    pairs_within,
    robust_centres,
    same_pass_pairs,
)


def split_apart(labels: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, apart: tuple[np.ndarray, np.ndarray],
                trip_index: np.ndarray, min_passes: int, *, rounds: int = 3, iterations: int = 5) -> np.ndarray:
    """Split every cluster holding pairs of ``apart`` hits from at least ``min_passes`` trips in two (2-means
    seeded at its farthest such pair), up to ``rounds`` times (three defects chained need two splits); one trip's
    pair may be a stray hit, as one device's hits never confirm a defect. Returns labels 0..k-1."""
    a, b = apart
    labels = np.array(labels, dtype=np.int64)
    trip = np.asarray(trip_index, dtype=np.int64)
    for _ in range(rounds):
        bad = labels[a] == labels[b]
        if bad.any():                                      # clusters with pairs from enough distinct trips
            lab_trip = np.unique(np.column_stack([labels[a[bad]], trip[a[bad]]]), axis=0)
            lab, n_trips = np.unique(lab_trip[:, 0], return_counts=True)
            bad &= np.isin(labels[a], lab[n_trips >= min_passes])
        if not bad.any():
            break
        pa, pb = a[bad], b[bad]
        gap = np.hypot(x_m[pa] - x_m[pb], y_m[pa] - y_m[pb])
        order = np.argsort(-gap, kind="stable")
        lab_pair = labels[pa][order]
        _, first = np.unique(lab_pair, return_index=True)
        k = int(labels.max()) + 1
        for lab, s1, s2 in zip(lab_pair[first], pa[order][first], pb[order][first], strict=True):   # loop over
            members = np.flatnonzero(labels == lab)                                                # defects
            c1 = np.array([x_m[s1], y_m[s1]])
            c2 = np.array([x_m[s2], y_m[s2]])
            pts = np.column_stack([x_m[members], y_m[members]])
            second = np.zeros(members.size, dtype=bool)
            for _ in range(iterations):
                second = np.hypot(*(pts - c2).T) < np.hypot(*(pts - c1).T)
                if second.all() or not second.any():
                    break
                c1, c2 = pts[~second].mean(axis=0), pts[second].mean(axis=0)
            second[members == s1] = False                  # the seeds stay on their sides
            second[members == s2] = True
            labels[members[second]] = k
            k += 1
    return np.unique(labels, return_inverse=True)[1].ravel()


def _quick_shift(points: np.ndarray, counts: np.ndarray, link: float) -> np.ndarray:
    """Quick shift on weighted points: each links to its nearest neighbour of higher density within ``link``
    (Gaussian kernel, sigma link/2); roots are the modes. Returns a root label per point."""
    n = len(points)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    i, j, d = pairs_within(points, points, link)
    sigma = 0.5 * link
    density = np.bincount(i, counts[j] * np.exp(-0.5 * (d / sigma) ** 2), minlength=n)
    # strictly higher density, ties broken by index, so the links form a forest
    up = (density[j] > density[i]) | ((density[j] == density[i]) & (j > i))
    parent = nearest_per_row(i[up], j[up], d[up], n)
    parent = np.where(parent < 0, np.arange(n), parent)
    while True:
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            return parent
        parent = nxt


def recluster(x_m: np.ndarray, y_m: np.ndarray, heading_deg: np.ndarray, spans: np.ndarray, accuracy_m: np.ndarray,
              trip_index: np.ndarray, params: DefectParams, *, t_s: np.ndarray | None = None,
              merge_rounds: int = 2) -> np.ndarray:
    """Cluster labels 0..k-1 of all hits at once (see the module docstring). With the hits' times ``t_s`` [s],
    a cluster holding hits of one pass metres apart (:func:`same_pass_pairs`) from at least ``apart_passes`` trips
    is split (:func:`split_apart`)."""
    n = len(x_m)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    x = np.asarray(x_m, dtype=np.float64)
    y = np.asarray(y_m, dtype=np.float64)
    h = np.asarray(heading_deg, dtype=np.float64)
    sp = np.asarray(spans, dtype=bool)
    known = np.isfinite(h)
    # micro-cells: position cell, heading sector (16) and family (directional / spanning axis / unknown heading)
    q = params.recluster_cell_m
    fam = np.where(~known, 2, np.where(sp, 1, 0))
    hk = np.where(fam == 1, np.mod(2.0 * np.nan_to_num(h), 360.0), np.nan_to_num(h))
    sector = np.where(known, np.floor(np.mod(hk + 11.25, 360.0) / 22.5).astype(np.int64) % 16, 0)
    ix = np.floor(x / q).astype(np.int64)
    iy = np.floor(y / q).astype(np.int64)
    ix -= ix.min()
    iy -= iy.min()
    key = ((ix * (int(iy.max()) + 1) + iy) * 4 + fam) * 16 + sector
    _, micro, counts = np.unique(key, return_inverse=True, return_counts=True)
    micro = micro.ravel()
    m = counts.size
    cnt = counts.astype(np.float64)
    mx = np.bincount(micro, x, minlength=m) / cnt
    my = np.bincount(micro, y, minlength=m) / cnt
    rad = np.deg2rad(hk)
    mc = np.bincount(micro, np.where(known, np.cos(rad), 0.0), minlength=m)
    ms = np.bincount(micro, np.where(known, np.sin(rad), 0.0), minlength=m)
    norm = np.maximum(np.hypot(mc, ms), 1e-12)
    mfam = np.zeros(m, dtype=np.int64)
    mfam[micro] = fam
    lam = params.recluster_link_m
    emb = np.column_stack([mx, my, lam * mc / norm, lam * ms / norm])
    emb[mfam == 2, 2:] = 0.0
    # three families never link: offset them far apart
    emb[:, 0] += mfam * 1e7
    root = _quick_shift(emb, cnt, params.recluster_link_m)
    labels = np.unique(root, return_inverse=True)[1].ravel()[micro]
    for _ in range(merge_rounds):
        labels, changed = _merge_duplicates(labels, x, y, h, sp, accuracy_m, trip_index, params)
        if not changed:
            break
    for _ in range(merge_rounds):
        labels, changed = _absorb(labels, x, y, h, sp, accuracy_m, trip_index, params)
        if not changed:
            break
    if t_s is None:
        return labels
    apart = same_pass_pairs(trip_index, t_s, x, y, h, params)
    return split_apart(labels, x, y, apart, trip_index, params.apart_passes)


def spanning_labels(labels: np.ndarray, spans: np.ndarray, k: int, *, min_spanning: int = 1) -> np.ndarray:
    """Which of the ``k`` labels span the road (merge with either direction): most of their hits say so, and at
    least ``min_spanning`` do. The re-cluster asks for ``recluster_span_hits``: a hit or two read as a speed bump
    (a rough road lifts the body too) are a rumour, and scattered hits with large gates would otherwise chain both
    directions' clusters around them."""
    n_span = np.bincount(labels, np.asarray(spans).astype(np.float64), minlength=k)
    return (n_span > 0.5 * np.bincount(labels, minlength=k)) & (n_span >= min_spanning)


def _absorb(labels: np.ndarray, x: np.ndarray, y: np.ndarray, h: np.ndarray, sp: np.ndarray,
            accuracy_m: np.ndarray, trip_index: np.ndarray, params: DefectParams) -> tuple[np.ndarray, bool]:
    """Merge a cluster into a larger one when most of its hits would have joined that one (:func:`absorb_pairs`,
    the incremental rule): the re-cluster then agrees with incremental ingestion."""
    k = int(labels.max()) + 1
    c = robust_centres(labels, x, y, accuracy_m, trip_index, k, params, quick=True)
    spans_k = spanning_labels(labels, sp, k, min_spanning=params.recluster_span_hits)
    head_k = mean_heading(labels, h, np.ones(labels.size), k, spans_k)
    s_lab, d_lab, count = absorb_pairs(labels, x, y, h, accuracy_m, c.x_m, c.y_m, head_k, spans_k, c.uncertainty_m,
                                       c.n_hits, params)
    if s_lab.size == 0:
        return labels, False
    target = np.arange(k)
    order = np.argsort(-count, kind="stable")
    target[s_lab[order[::-1]]] = d_lab[order[::-1]]    # the most-voted target wins
    while True:
        nxt = target[target]
        if np.array_equal(nxt, target):
            break
        target = nxt
    return np.unique(target[labels], return_inverse=True)[1].ravel(), True


def _merge_duplicates(labels: np.ndarray, x: np.ndarray, y: np.ndarray, h: np.ndarray, sp: np.ndarray,
                      accuracy_m: np.ndarray, trip_index: np.ndarray, params: DefectParams
                      ) -> tuple[np.ndarray, bool]:
    k = int(labels.max()) + 1
    c = robust_centres(labels, x, y, accuracy_m, trip_index, k, params, quick=True)
    spans_k = spanning_labels(labels, sp, k, min_spanning=params.recluster_span_hits)
    head_k = mean_heading(labels, h, np.ones(labels.size), k, spans_k)
    i, j, d = duplicate_pairs(c.x_m, c.y_m, head_k, spans_k, c.uncertainty_m, params)
    if i.size == 0:
        return labels, False
    group = merge_forest(c.n_hits, i, j, d)
    return group[labels], True
