"""Compiled search for the best grouping of a small graph's nodes into k connected groups.

The la_aligned starts (`starts.whole_district_start`, `own.own_district_starts`)
group the nodes of a coarse graph, in which each node is a whole district
piece, into catchments.  Such a graph has at most `MAX_NODES` nodes, so a
set of nodes is one 64-bit mask and the search runs compiled (numba).

The search is depth-first and exhaustive up to a step budget: the lowest
unassigned node starts the next group; each connected set of unassigned
nodes around it whose population lies in [lo, hi] is tried, in a fixed order
(a set grows by its frontier, neighbours in ascending order; the frontier's
earlier nodes are banned from later branches, so each set comes once); a
branch is cut when a connected piece of the unassigned nodes cannot hold a
whole number of groups.  Every complete grouping found before the budget
runs out is scored by the objective's cost (Σ shape cost + split and
district weights, `Objective.cost`, in the same arithmetic order), and the
first of the lowest scores wins.  Populations are whole numbers of people,
so sums of them do not depend on the order they are added in.
"""

from __future__ import annotations

import math

import numpy as np

from planner.partition.graph import RegionGraph
from planner.partition.jit import compiled
from planner.partition.kernels import shape_cost
from planner.partition.objective import Objective, Weights

MAX_NODES = 40
EPS = 1e-6

ONE = np.uint64(1)
ZERO = np.uint64(0)


@compiled
def _bit(i):
    return np.uint64(1) << np.uint64(i)


@compiled
def _lowest(mask):
    """Index of the lowest set bit of a non-zero mask."""
    i = 0
    while not (mask >> np.uint64(i)) & np.uint64(1):
        i += 1
    return i


@compiled
def _mask_pop(mask, pop, n):
    total = 0.0
    for u in range(n):
        if (mask >> np.uint64(u)) & np.uint64(1):
            total += pop[u]
    return total


@compiled
def _pieces_fit(free, nbrmask, pop, n, lo, hi):
    """Whether each connected piece of the free nodes could hold a whole number of groups."""
    seen = np.uint64(0)
    for s in range(n):
        b = _bit(s)
        if not (free & b) or (seen & b):
            continue
        comp = b
        edge = b
        while edge:
            grow = np.uint64(0)
            for x in range(n):
                if (edge >> np.uint64(x)) & np.uint64(1):
                    grow |= nbrmask[x]
            edge = grow & free & ~comp
            comp |= edge
        seen |= comp
        comp_pop = _mask_pop(comp, pop, n)
        j_min = math.ceil(comp_pop / hi - 1e-9)
        if j_min * lo > comp_pop + 1e-6:
            return False
    return True


@compiled
def _cost(label, k, area, perim, district, n_districts, ea, eb, elen, w):
    """Objective.cost of a complete grouping, term by term in the same order."""
    parea = np.zeros(k)
    pperim = np.zeros(k)
    inner = np.zeros(k)
    n = len(label)
    for u in range(n):
        parea[label[u]] += area[u]
    for u in range(n):
        pperim[label[u]] += perim[u]
    for e in range(len(ea)):
        p = label[ea[e]]
        if p == label[eb[e]]:
            inner[p] += elen[e]
    shape = 0.0
    for p in range(k):
        shape += shape_cost(pperim[p] - 2.0 * inner[p], parea[p], w[1], w[3])
    held = np.zeros((n_districts, k), dtype=np.bool_)
    for u in range(n):
        held[district[u], label[u]] = True
    fragments = 0
    splits = 0
    for d in range(n_districts):
        parts = 0
        for p in range(k):
            if held[d, p]:
                parts += 1
        if parts > 0:
            fragments += parts - 1
        if parts > 1:
            splits += 1
    return shape + w[0] * fragments + w[2] * splits


@compiled
def _groups_from(root, free, lo, hi, pop, nbrmask, n, budget, steps, out, nout):
    """Append to `out` every connected set of free nodes around root within [lo, hi].

    The order is that of a recursive growth (see the module docstring); each
    set grown counts one step, and growth stops once `steps` passes the
    budget.  Returns (steps, nout).
    """
    front = np.empty((n + 1, n), dtype=np.int64)
    flen = np.zeros(n + 1, dtype=np.int64)
    ban = np.zeros(n + 1, dtype=np.uint64)
    pre = np.zeros(n + 1, dtype=np.uint64)
    mem = np.zeros(n + 1, dtype=np.uint64)
    tot = np.zeros(n + 1)
    pos = np.zeros(n + 1, dtype=np.int64)
    if steps > budget:
        return steps, nout
    steps += 1
    mem[0] = _bit(root)
    tot[0] = pop[root]
    length = 0
    for y in range(n):
        if (nbrmask[root] >> np.uint64(y)) & np.uint64(1) and (free >> np.uint64(y)) & np.uint64(1):
            front[0, length] = y
            length += 1
    flen[0] = length
    if tot[0] >= lo - EPS:
        out[nout] = mem[0]
        nout += 1
    d = 0
    while d >= 0:
        i = pos[d]
        if i >= flen[d]:
            d -= 1
            continue
        pos[d] = i + 1
        v = front[d, i]
        banned = ban[d] | pre[d]
        pre[d] |= _bit(v)
        if tot[d] + pop[v] > hi + EPS:
            continue
        c = d + 1
        length = 0
        inside = np.uint64(0)
        for j in range(i + 1, flen[d]):
            x = front[d, j]
            if not (banned & _bit(x)):
                front[c, length] = x
                length += 1
                inside |= _bit(x)
        fresh = nbrmask[v] & free & ~_bit(v) & ~mem[d] & ~banned & ~inside
        for y in range(n):
            if (fresh >> np.uint64(y)) & np.uint64(1):
                front[c, length] = y
                length += 1
        if steps > budget:
            continue
        steps += 1
        flen[c] = length
        mem[c] = mem[d] | _bit(v)
        tot[c] = tot[d] + pop[v]
        ban[c] = banned
        pre[c] = np.uint64(0)
        pos[c] = 0
        if tot[c] >= lo - EPS:
            out[nout] = mem[c]
            nout += 1
        d = c
    return steps, nout


@compiled
def search_groupings(
    k, lo, hi, budget, pop, nbrmask, area, perim, district, n_districts, ea, eb, elen, w
):
    """Labels 0..k-1 of the best grouping found (see the module docstring); -1s if none."""
    n = len(pop)
    label = np.full(n, -1, dtype=np.int64)
    best = np.full(n, -1, dtype=np.int64)
    best_cost = np.inf
    out = np.empty(budget + 2, dtype=np.uint64)
    nout = 0
    steps = 0
    start = np.zeros(k + 1, dtype=np.int64)
    end = np.zeros(k + 1, dtype=np.int64)
    at = np.zeros(k + 1, dtype=np.int64)
    free = np.uint64(0)
    for u in range(n):
        free |= _bit(u)
    group = 0
    enter = True
    while True:
        if enter:
            enter = False
            if steps > budget:
                break  # nothing more is grown or scored
            descend = False
            if group == k:
                if free == 0:
                    cost = _cost(label, k, area, perim, district, n_districts, ea, eb, elen, w)
                    if cost < best_cost:
                        best_cost = cost
                        best[:] = label
            elif free != 0:
                total = _mask_pop(free, pop, n)
                groups = k - group
                if groups * lo - EPS <= total <= groups * hi + EPS:
                    start[group] = nout
                    steps, nout = _groups_from(
                        _lowest(free), free, lo, hi, pop, nbrmask, n, budget, steps, out, nout
                    )
                    end[group] = nout
                    at[group] = start[group]
                    descend = True
            if not descend:
                if group == 0:
                    break
                group -= 1
                free = _release(out[at[group] - 1], free, label, n)
                continue
        if at[group] >= end[group]:
            nout = start[group]
            if group == 0:
                break
            group -= 1
            free = _release(out[at[group] - 1], free, label, n)
            continue
        members = out[at[group]]
        at[group] += 1
        for u in range(n):
            if (members >> np.uint64(u)) & np.uint64(1):
                label[u] = group
        free &= ~members
        if _pieces_fit(free, nbrmask, pop, n, lo, hi) and (free != 0 or group + 1 == k):
            group += 1
            enter = True
            continue
        free = _release(members, free, label, n)
    return best


@compiled
def _release(members, free, label, n):
    """Unassign `members`; the free mask with them back."""
    for u in range(n):
        if (members >> np.uint64(u)) & np.uint64(1):
            label[u] = -1
    return free | members


def best_grouping(
    g: RegionGraph, k: int, lo: float, hi: float, objective: Objective, budget: int
) -> np.ndarray | None:
    """Labels 0..k-1 of the best grouping of g's nodes into k connected groups in [lo, hi].

    None when g has more than MAX_NODES nodes or no grouping was found within
    `budget` steps (see the module docstring).
    """
    n = g.n
    if n > MAX_NODES:
        return None
    real = g.a != g.b
    nbrmask = np.zeros(n, dtype=np.uint64)
    a, b = g.a[real], g.b[real]
    np.bitwise_or.at(nbrmask, a, np.left_shift(ONE, b.astype(np.uint64)))
    np.bitwise_or.at(nbrmask, b, np.left_shift(ONE, a.astype(np.uint64)))
    codes, district = np.unique(g.district_array, return_inverse=True)
    labels = search_groupings(
        int(k), float(lo), float(hi), int(budget), g.pop_array, nbrmask, g.area_array,
        g.perim_array, district.astype(np.int64), len(codes), g.a, g.b, g.length,
        objective.kernel_weights(),
    )  # fmt: skip
    return None if labels[0] < 0 else labels


def warm_up() -> None:
    """Compile (or load from numba's cache) the search, before workers fork (see kernels)."""
    edges = np.array([0], dtype=np.int64)
    g = RegionGraph(np.ones(2), np.ones(2), np.full(2, 4.0), np.zeros(2), edges, edges + 1, [1.0])
    best_grouping(g, 2, 0.5, 1.5, Objective(Weights(1.0, 1.0, 1.0), keep_districts=True), 10)
