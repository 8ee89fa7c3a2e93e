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

from planner.partition.jit import compiled

FOUR_PI = 4.0 * np.pi
TANGENT_X = 3.0  # objective.TANGENT_X


@compiled
def shape_cost(perim: float, area: float, floor_weight: float, floor_x: float) -> float:
    """Objective.shape_cost: linear in PP, plus floor_weight per unit of 1/PP beyond floor_x."""
    if area <= 0:
        return 0.0
    x = perim * perim / (FOUR_PI * area)
    cost = 2.0 * TANGENT_X - TANGENT_X * TANGENT_X / x
    excess = x - floor_x
    return cost + floor_weight * excess if excess > 0 else cost


@compiled
def shared_lengths(u, a, b, indptr, indices, weights, lab) -> tuple[float, float]:
    """Boundary length area u shares with catchment a (its own) and with catchment b."""
    sa = 0.0
    sb = 0.0
    for j in range(indptr[u], indptr[u + 1]):
        lv = lab[indices[j]]
        if lv == a:
            sa += weights[j]
        elif lv == b:
            sb += weights[j]
    return sa, sb


@compiled
def move_delta(
    u, b, indptr, indices, weights, perim, area, district, lab, pperim, parea, dcnt, dparts, w
) -> float:
    """Change of the score if area u moves to catchment b (w: split, floor, district, floor_x)."""
    a = lab[u]
    sa, sb = shared_lengths(u, a, b, indptr, indices, weights, lab)
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


@compiled
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


@compiled
def apply_move(u, b, indptr, indices, weights, pop, perim, area, district, state) -> None:
    """Move area u to catchment b, keeping every total up to date."""
    lab, ppop, parea, pperim, size, dcnt, dparts = state
    a = lab[u]
    sa, sb = shared_lengths(u, a, b, indptr, indices, weights, lab)
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


@compiled
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


@compiled
def shift(src, dst, amount, slack, indptr, indices, weights, pop, perim, area, district, state, w):
    """Move boundary areas from src to dst totalling about `amount`; returns what moved.

    Each step moves the candidate (an area of src next to dst, no bigger than
    what is left plus slack) whose move costs least (ties: lowest number) and
    whose removal keeps src connected.
    """
    lab, _, parea, pperim, size, dcnt, dparts = state
    n = len(lab)
    cand = np.zeros(n, dtype=np.bool_)
    for u in range(n):
        if lab[u] == src:
            for j in range(indptr[u], indptr[u + 1]):
                if lab[indices[j]] == dst:
                    cand[u] = True
                    break
    mark = np.full(n, -1, dtype=np.int64)
    stack = np.empty(n, dtype=np.int64)
    units = np.empty(n, dtype=np.int64)
    deltas = np.empty(n, dtype=np.float64)
    moved = 0.0
    while moved < amount - slack:
        left = amount - moved
        m = 0
        for u in range(n):
            if cand[u] and lab[u] == src and pop[u] <= left + slack:
                units[m] = u
                deltas[m] = move_delta(
                    u, dst, indptr, indices, weights, perim, area, district, lab, pperim, parea,
                    dcnt, dparts, w,
                )  # fmt: skip
                m += 1
        if m == 0:
            break
        order = np.argsort(deltas[:m], kind="mergesort")  # stable: ties by area number
        done = False
        for i in order:
            u = units[i]
            if can_remove(u, indptr, indices, lab, size, mark, stack):
                apply_move(u, dst, indptr, indices, weights, pop, perim, area, district, state)
                moved += pop[u]
                cand[u] = False
                for j in range(indptr[u], indptr[u + 1]):
                    if lab[indices[j]] == src:
                        cand[indices[j]] = True
                done = True
                break
        if not done:
            break
    return moved


@compiled
def note_borders(u, indptr, indices, lab, seen) -> None:
    """Record the borders u and its neighbours have now (seen[v, x, y]: v of x faces y)."""
    b = lab[u]
    for j in range(indptr[u], indptr[u + 1]):
        v = indices[j]
        if lab[v] != b:
            seen[u, b, lab[v]] = True
            seen[v, lab[v], b] = True


@compiled
def compound_pass(order, lo, hi, indptr, indices, weights, pop, perim, area, district, state, w):
    """One pass of compound moves (see moves.compound_moves); returns the number made.

    `seen[v, x, y]` holds every border recorded in the pass (v in catchment x
    next to catchment y), kept as the Python version keeps its border sets:
    all borders at the start, plus those gained by each move.
    """
    lab, ppop, parea, pperim, size, dcnt, dparts = state
    n = len(lab)
    k = len(ppop)
    mark = np.full(n, -1, dtype=np.int64)
    stack = np.empty(n, dtype=np.int64)
    seen = np.zeros((n, k, k), dtype=np.bool_)
    for u in range(n):
        for j in range(indptr[u], indptr[u + 1]):
            if lab[indices[j]] != lab[u]:
                seen[u, lab[u], lab[indices[j]]] = True
    cand_v = np.empty(n * k, dtype=np.int64)
    cand_y = np.empty(n * k, dtype=np.int64)
    after = np.empty(k, dtype=np.float64)
    touched = np.zeros(k, dtype=np.bool_)
    targets = np.empty(k, dtype=np.int64)
    moves = 0
    for u in order:
        a = lab[u]
        # the catchments next to u, in increasing order (fixed before any move)
        m = 0
        for j in range(indptr[u], indptr[u + 1]):
            y = lab[indices[j]]
            if y != a:
                dup = False
                for i in range(m):
                    if targets[i] == y:
                        dup = True
                if not dup:
                    targets[m] = y
                    m += 1
        targets[:m].sort()
        for t in range(m):
            b = targets[t]
            if lab[u] != a:
                break
            pu = pop[u]
            if lo <= ppop[a] - pu and ppop[b] + pu <= hi:
                continue  # a single move: the plain local search's job
            d1 = move_delta(
                u, b, indptr, indices, weights, perim, area, district, lab, pperim, parea, dcnt,
                dparts, w,
            )  # fmt: skip
            if d1 >= 0:
                continue
            # second moves that bring a and b back into [lo, hi], taken before u moves
            over = ppop[b] + pu > hi
            under = ppop[a] - pu < lo
            c = 0
            for v in range(n):
                if v == u:
                    continue
                x = lab[v]
                for y in range(k):
                    if not seen[v, x, y]:
                        continue
                    if over:
                        if under:
                            if x != b or y != a:
                                continue
                        elif x != b:
                            continue
                    elif y != a:
                        continue
                    # populations after both moves, for every catchment they touch
                    after[a] = ppop[a] - pu
                    after[b] = ppop[b] + pu
                    touched[a] = True
                    touched[b] = True
                    if not touched[x]:
                        after[x] = ppop[x]
                        touched[x] = True
                    after[x] -= pop[v]
                    if not touched[y]:
                        after[y] = ppop[y]
                        touched[y] = True
                    after[y] += pop[v]
                    ok = lo <= after[a] <= hi and lo <= after[b] <= hi
                    ok = ok and lo <= after[x] <= hi and lo <= after[y] <= hi
                    touched[a] = False
                    touched[b] = False
                    touched[x] = False
                    touched[y] = False
                    if ok:
                        cand_v[c] = v
                        cand_y[c] = y
                        c += 1
            if c == 0 or not can_remove(u, indptr, indices, lab, size, mark, stack):
                continue
            apply_move(u, b, indptr, indices, weights, pop, perim, area, district, state)
            keep = 0
            for i in range(c):
                v = cand_v[i]
                y = cand_y[i]
                for j in range(indptr[v], indptr[v + 1]):
                    if lab[indices[j]] == y:
                        cand_v[keep] = v
                        cand_y[keep] = y
                        keep += 1
                        break
            deltas = np.empty(keep, dtype=np.float64)
            for i in range(keep):
                deltas[i] = move_delta(
                    cand_v[i], cand_y[i], indptr, indices, weights, perim, area, district, lab,
                    pperim, parea, dcnt, dparts, w,
                )  # fmt: skip
            # order by (delta, v, y): stable sorts, least significant key first
            first = np.argsort(cand_v[:keep] * k + cand_y[:keep], kind="mergesort")
            ranked = first[np.argsort(deltas[first], kind="mergesort")]
            done = False
            for i in ranked:
                if d1 + deltas[i] >= -1e-9:
                    break
                v = cand_v[i]
                if can_remove(v, indptr, indices, lab, size, mark, stack):
                    apply_move(
                        v, cand_y[i], indptr, indices, weights, pop, perim, area, district, state
                    )
                    note_borders(u, indptr, indices, lab, seen)
                    note_borders(v, indptr, indices, lab, seen)
                    moves += 1
                    done = True
                    break
            if not done:
                apply_move(u, a, indptr, indices, weights, pop, perim, area, district, state)
    return moves


@compiled
def catchment_pieces(indptr, indices, lab):
    """Connected piece of its catchment per area: pieces numbered by their lowest area.

    (The numbering scipy's connected_components gives the graph of edges inside catchments.)
    """
    n = len(lab)
    piece = np.full(n, -1, dtype=np.int64)
    stack = np.empty(n, dtype=np.int64)
    count = 0
    for s in range(n):
        if piece[s] >= 0:
            continue
        piece[s] = count
        top = 0
        stack[0] = s
        top = 1
        while top > 0:
            top -= 1
            x = stack[top]
            for j in range(indptr[x], indptr[x + 1]):
                y = indices[j]
                if piece[y] < 0 and lab[y] == lab[x]:
                    piece[y] = count
                    stack[top] = y
                    top += 1
        count += 1
    return piece


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel in this process.

    Called before forking workers, so that they inherit the machine code
    instead of each loading it again for every run.
    """
    indptr = np.array([0, 1, 2], dtype=np.int64)
    indices = np.array([1, 0], dtype=np.int64)
    weights = np.ones(2)
    pop, perim, area = np.ones(2), np.full(2, 4.0), np.ones(2)
    district = np.zeros(2, dtype=np.int64)
    state = (
        np.array([0, 1], dtype=np.int64),
        np.ones(2),
        np.ones(2),
        np.full(2, 4.0),
        np.ones(2, dtype=np.int64),
        np.ones((1, 2), dtype=np.int64),
        np.array([2], dtype=np.int64),
    )
    w = np.array([1.0, 0.0, 0.0, 1.0])
    order = np.arange(2, dtype=np.int64)
    graph = (indptr, indices, weights, pop, perim, area, district, state, w)
    improve_pass(order, 1.0, 1.0, *graph)
    compound_pass(order, 1.0, 1.0, *graph)
    shift(0, 1, 0.0, 0.0, *graph)
    catchment_pieces(indptr, indices, state[0])
