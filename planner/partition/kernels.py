"""Compiled inner loop of the local search (numba): one pass of single-area moves.

The pass visits the areas in a given order and moves each to the
neighbouring catchment that lowers the score most, if the move keeps both
catchments within [lo, hi] and the old one connected.  It works on flat
arrays (CSR adjacency, per-catchment totals, a district × catchment count
table) and does exactly the arithmetic of `Labelling.move_delta`, in the same
order, so it picks the same moves as the Python code would.
"""

from __future__ import annotations

import numpy as np
from numba import njit

FOUR_PI = 4.0 * np.pi


@njit(cache=True)
def shape_cost(perim: float, area: float, floor_weight: float, floor_x: float) -> float:
    """1/PP plus floor_weight per unit of 1/PP beyond floor_x (= 1 / PP_FLOOR)."""
    if area <= 0:
        return 0.0
    x = perim * perim / (FOUR_PI * area)
    excess = x - floor_x
    return x + floor_weight * excess if excess > 0 else x


@njit(cache=True)
def move_delta(
    u, b, indptr, indices, weights, perim, area, district, lab, pperim, parea, dcnt, dparts, w
) -> float:
    """Change of the score if area u moves to catchment b (w: split, floor, district, floor_x)."""
    a = lab[u]
    sa = 0.0
    sb = 0.0
    for j in range(indptr[u], indptr[u + 1]):
        lv = lab[indices[j]]
        if lv == a:
            sa += weights[j]
        elif lv == b:
            sb += weights[j]
    pa = pperim[a] - perim[u] + 2.0 * sa
    pb = pperim[b] + perim[u] - 2.0 * sb
    aa = parea[a] - area[u]
    ab = parea[b] + area[u]
    delta = (
        shape_cost(pa, aa, w[1], w[3])
        + shape_cost(pb, ab, w[1], w[3])
        - shape_cost(pperim[a], parea[a], w[1], w[3])
        - shape_cost(pperim[b], parea[b], w[1], w[3])
    )
    d = district[u]
    split = 0
    if dcnt[d, a] == 1:
        split -= 1
    if dcnt[d, b] == 0:
        split += 1
    if split != 0:
        parts = dparts[d]
        delta += w[2] * ((1 if parts + split > 1 else 0) - (1 if parts > 1 else 0))
    return delta + w[0] * split


@njit(cache=True)
def can_remove(u, indptr, indices, lab, size, mark, stack) -> bool:
    """True if catchment lab[u] stays connected and non-empty without u.

    `mark` (int array, all < 0 on entry and on exit) and `stack` are scratch.
    """
    a = lab[u]
    if size[a] <= 1:
        return False
    first = -1
    count = 0
    for j in range(indptr[u], indptr[u + 1]):
        v = indices[j]
        if lab[v] == a:
            if first < 0:
                first = v
            count += 1
    if count <= 1:
        return count == 1
    # Search the catchment without u from one neighbour until every neighbour is reached.
    need = 0
    for j in range(indptr[u], indptr[u + 1]):
        v = indices[j]
        if lab[v] == a and mark[v] != 1:
            mark[v] = 1  # a neighbour still to reach
            need += 1
    visited = []
    mark[u] = 2
    visited.append(u)
    mark[first] = 2
    visited.append(first)
    need -= 1
    top = 0
    stack[top] = first
    top += 1
    while top > 0 and need > 0:
        top -= 1
        x = stack[top]
        for j in range(indptr[x], indptr[x + 1]):
            y = indices[j]
            if lab[y] != a or mark[y] == 2:
                continue
            if mark[y] == 1:
                need -= 1
            mark[y] = 2
            visited.append(y)
            stack[top] = y
            top += 1
    for j in range(indptr[u], indptr[u + 1]):
        mark[indices[j]] = -1
    for x in visited:
        mark[x] = -1
    return need == 0


@njit(cache=True)
def apply_move(u, b, indptr, indices, weights, pop, perim, area, district, state) -> None:
    """Move area u to catchment b, keeping every total up to date."""
    lab, ppop, parea, pperim, size, dcnt, dparts = state
    a = lab[u]
    sa = 0.0
    sb = 0.0
    for j in range(indptr[u], indptr[u + 1]):
        lv = lab[indices[j]]
        if lv == a:
            sa += weights[j]
        elif lv == b:
            sb += weights[j]
    pperim[a] += -perim[u] + 2.0 * sa
    pperim[b] += perim[u] - 2.0 * sb
    parea[a] -= area[u]
    parea[b] += area[u]
    ppop[a] -= pop[u]
    ppop[b] += pop[u]
    size[a] -= 1
    size[b] += 1
    d = district[u]
    dcnt[d, a] -= 1
    if dcnt[d, a] == 0:
        dparts[d] -= 1
    if dcnt[d, b] == 0:
        dparts[d] += 1
    dcnt[d, b] += 1
    lab[u] = b


@njit(cache=True)
def improve_pass(order, lo, hi, indptr, indices, weights, pop, perim, area, district, state, w):
    """One pass of improving single moves in the given order; returns the number made."""
    lab, ppop, parea, pperim, size, dcnt, dparts = state
    n = len(lab)
    mark = np.full(n, -1, dtype=np.int64)
    stack = np.empty(n, dtype=np.int64)
    moves = 0
    for u in order:
        a = lab[u]
        pu = pop[u]
        if ppop[a] - pu < lo:
            continue
        best = -1e-9
        best_b = -1
        for j in range(indptr[u], indptr[u + 1]):
            b = lab[indices[j]]
            if b in (a, best_b) or ppop[b] + pu > hi:
                continue
            d = move_delta(
                u, b, indptr, indices, weights, perim, area, district, lab, pperim, parea, dcnt,
                dparts, w,
            )  # fmt: skip
            if d < best:
                best = d
                best_b = b
        if best_b >= 0 and can_remove(u, indptr, indices, lab, size, mark, stack):
            apply_move(u, best_b, indptr, indices, weights, pop, perim, area, district, state)
            moves += 1
    return moves
