"""Moves that turn a start into a good labelling: repair, balance, local search, piece moves.

- Repair: METIS may leave stray pieces; each is handed to the neighbouring
  catchment it shares most boundary with.
- Balance: population is pushed along paths of neighbouring catchments, from
  the ones above the tolerance to the nearest with room, one boundary area at
  a time, never breaking contiguity.
- Local search: boundary areas move to a neighbouring catchment when that
  lowers the score, keeping balance and contiguity (articulation check).
- Compound moves: at ±0.5% most single moves break the balance window, so a
  move that does is paired with one that restores it (a swap across the
  border, or a short chain through a third catchment).
- Piece moves (aligned preset): whole district pieces (a leftover 11% of
  Solihull) move at once to a neighbouring catchment that already holds the
  district, then balance and search again; kept only if the score improves.
"""

from __future__ import annotations

import itertools
from collections import deque

import numpy as np

from planner.partition import seeds
from planner.partition.graph import Labelling, all_contiguous, catchment_graph, flood
from planner.partition.kernels import compound_pass, improve_pass, shift

# ---------------------------------------------------------------------------------------
# repair


def repair(st: Labelling) -> None:
    """Give every stray piece to its best-connected neighbour; fill empty catchments."""
    g = st.g
    for _ in range(4 * st.k + 10):
        changed = False
        # Giving pieces away only joins other catchments, so no new catchment falls apart.
        fragmented = st.fragmented()
        for p in range(st.k):
            if p not in fragmented:
                continue
            comps = st.components(p)
            if len(comps) <= 1:
                continue
            comps.sort(key=lambda c: (-sum(g.pop[u] for u in c), min(c)))
            for comp in comps[1:]:
                members = set(comp)
                shared: dict[int, float] = {}
                for u in comp:
                    for v, w in zip(g.nbrs[u], g.lens[u], strict=True):
                        if v not in members and st.labels[v] != p:
                            shared[st.labels[v]] = shared.get(st.labels[v], 0.0) + w + 1e-6
                if not shared:
                    continue
                dest = min(shared, key=lambda q: (-shared[q], q))
                for u in sorted(comp):
                    st.apply(u, dest)
                changed = True
        if not changed:
            break
    # Empty catchments (METIS can return fewer parts): take a piece of the biggest
    # catchment that has more than one area.  Callers guarantee k ≤ number of areas.
    filled = False
    for p in range(st.k):
        if st.sizes[p] > 0:
            continue
        filled = True
        donors = [q for q in range(st.k) if st.sizes[q] > 1]
        big = max(donors, key=lambda q: (st.populations[q], -q))
        members = [u for u in range(g.n) if st.labels[u] == big]
        half = st.populations[big] / 2
        queue = deque([members[0]])
        seen = {members[0]}
        taken = 0.0
        order: list[int] = []
        while queue and taken < half and len(order) < len(members) - 1:
            x = queue.popleft()
            order.append(x)
            taken += g.pop[x]
            for y in g.nbrs[x]:
                if st.labels[y] == big and y not in seen:
                    seen.add(y)
                    queue.append(y)
        for u in order:
            st.apply(u, p)
    if any(size == 0 for size in st.sizes):
        raise AssertionError("repair left an empty catchment")  # pragma: no cover
    if filled:
        repair(st)  # the donors may now be in pieces; hand those to their neighbours


# ---------------------------------------------------------------------------------------
# balance


def _path(adj: list[set[int]], start: int, good, usable) -> list[int] | None:
    """Shortest path of catchments from start to one that is `good`, over usable hops."""
    prev = {start: -1}
    queue = deque([start])
    while queue:
        x = queue.popleft()
        if x != start and good(x):
            path = [x]
            while prev[path[-1]] != -1:
                path.append(prev[path[-1]])
            return path[::-1]
        for y in sorted(adj[x]):
            if y not in prev and usable(x, y):
                prev[y] = x
                queue.append(y)
    return None


def balance(st: Labelling, lo: float, hi: float, mean: float, rounds: int) -> bool:
    """Push population from catchments outside the window along paths of neighbours.

    An over-full catchment sends areas to the nearest catchment with room (each
    catchment on the path passes the surplus on); an under-full one pulls from
    the nearest with a surplus.  Paths whose borders cannot move are made tabu.
    """
    slack = max((hi - lo) / 4.0, 0.0)
    g = st.g
    flat = st.flat()
    labels, ppop = flat[0], flat[1]
    weights = st.objective.kernel_weights()

    def move(src: int, dst: int, amount: float) -> float:
        return shift(
            src,
            dst,
            amount,
            slack,
            *g.kernel_arrays,
            flat,
            weights,
        )

    blocked: set[tuple[int, int]] = set()  # (src, dst) borders where nothing could move
    stuck: set[int] = set()
    for _ in range(rounds):
        devs = [(max(ppop[p] - hi, lo - ppop[p]), p) for p in range(st.k) if p not in stuck]
        if not devs:
            break
        worst, p = max(devs)
        if worst <= 0:
            break
        adj = catchment_graph(labels, g.a, g.b, st.k)
        over = ppop[p] > hi
        sign = 1.0 if over else -1.0
        if over:
            usable = lambda x, y: (x, y) not in blocked  # noqa: E731
        else:
            usable = lambda x, y: (y, x) not in blocked  # noqa: E731
        path = _path(adj, p, lambda q, s=sign: s * (mean - ppop[q]) > slack, usable)
        if path is None:
            path = _path(adj, p, lambda q, s=sign: s * (mean - ppop[q]) > 0, usable)
        if path is None:
            stuck.add(p)
            continue
        if over:
            for src, dst in itertools.pairwise(path):
                amount = ppop[src] - mean
                if amount <= 0:
                    break
                if move(src, dst, amount) == 0:
                    blocked.add((src, dst))
                    break
        else:
            # path runs p -> ... -> donor; fill p first, then each hop refills the one before.
            for dst, src in itertools.pairwise(path):
                amount = mean - ppop[dst]
                if amount <= 0:
                    break
                if move(src, dst, amount) == 0:
                    blocked.add((src, dst))
                    break
    st.load(flat)
    return all(lo <= ppop[q] <= hi for q in range(st.k))


# ---------------------------------------------------------------------------------------
# local search


def improve(st: Labelling, lo: float, hi: float, rng: np.random.Generator, passes: int) -> int:
    """Move boundary areas while that improves the score, keeping balance and contiguity.

    Each pass visits the areas in a fresh random order (compiled: kernels.improve_pass).
    """
    return _passes(improve_pass, st, lo, hi, rng, passes)


def compound_moves(
    st: Labelling, lo: float, hi: float, rng: np.random.Generator, passes: int
) -> int:
    """Pairs of moves whose first breaks the balance window and second restores it.

    At ±0.5% a catchment has room for less than one area, so single moves
    freeze most boundaries.  An improving move u: a→b that leaves a or b
    outside [lo, hi] is applied, then the best move v that restores the window
    (v: b→a, a swap; v: b→c or c→a, a short chain) is looked for; the pair is
    kept if the two deltas together lower the score, otherwise u goes back.
    """
    return _passes(compound_pass, st, lo, hi, rng, passes)


def _passes(
    kernel, st: Labelling, lo: float, hi: float, rng: np.random.Generator, passes: int
) -> int:
    """Run a compiled pass `kernel` over the areas in a fresh random order until nothing moves."""
    g = st.g
    flat = st.flat()
    weights = st.objective.kernel_weights()
    total = 0
    for _ in range(passes):
        order = rng.permutation(g.n)
        moves = kernel(
            order,
            lo,
            hi,
            *g.kernel_arrays,
            flat,
            weights,
        )
        total += moves
        if moves == 0:
            break
    st.load(flat)
    return total


# ---------------------------------------------------------------------------------------
# whole district pieces


# Whole-piece moves (aligned preset): pieces up to this share of a catchment are tried.
PIECE_SHARE = 0.5
PIECE_TRIALS = 60


def _district_pieces(st: Labelling) -> list[tuple[float, int, int, list[int]]]:
    """Connected pieces (pop, district, catchment, areas) of the split districts."""
    g, lab = st.g, st.labels
    split = {d for d, c in st.district_parts.items() if c > 1}
    seen: set[int] = set()
    out = []
    for s in range(g.n):
        d = g.district[s]
        if d not in split or s in seen:
            continue
        p = lab[s]
        comp = flood(g, s, lambda y, p=p, d=d: lab[y] == p and g.district[y] == d, seen)
        out.append((sum(g.pop[u] for u in comp), d, p, comp))
    out.sort(key=lambda t: (t[0], t[3][0]))
    return out


def piece_moves(st: Labelling, tolerance: float, seed: int) -> list[int]:
    """Hand whole district pieces to a neighbouring catchment holding the same district.

    Single-area moves cannot remove a leftover piece of a district (11% of
    Solihull in a Birmingham catchment): every step of the way is worse before
    it is better.  The whole piece moves at once, the balance step restores the
    window, a short local search tidies the shapes, and the result is kept only
    if it is contiguous, within the tolerance and the region's score improves.
    """
    g, k = st.g, st.k
    mean = sum(g.pop) / k
    lo, hi = (1 - tolerance) * mean, (1 + tolerance) * mean
    labels = np.asarray(st.labels, dtype=np.int64)
    best_score = st.objective.score(st, tolerance)
    tried: set[tuple[int, int, bytes]] = set()
    trials = 0
    improved = True
    while improved and trials < PIECE_TRIALS:
        improved = False
        cur = Labelling(g, labels, k, st.objective)
        for pop, d, p, comp in _district_pieces(cur):
            if pop > PIECE_SHARE * mean or len(comp) >= cur.sizes[p]:
                continue
            members = set(comp)
            dests = sorted(
                {
                    cur.labels[v]
                    for u in comp
                    for v in g.nbrs[u]
                    if v not in members
                    and cur.labels[v] != p
                    and cur.district_counts.get((d, cur.labels[v]), 0)
                }
            )
            for q in dests:
                sig = (p, q, np.asarray(sorted(comp)).tobytes())
                if sig in tried or trials >= PIECE_TRIALS:
                    continue
                tried.add(sig)
                trials += 1
                trial = labels.copy()
                trial[comp] = q
                tst = Labelling(g, trial, k, st.objective)
                if len(tst.components(p)) != 1:
                    continue
                if not balance(tst, lo, hi, mean, rounds=20 * k + 20):
                    continue
                improve(tst, lo, hi, seeds.rng(seed, "piece", trials), passes=4)
                out = np.asarray(tst.labels, dtype=np.int64)
                score = st.objective.score(tst, tolerance)
                if score < best_score - 1e-9 and all_contiguous(g, out, k):
                    best_score, labels, improved = score, out, True
                    break
            if improved:
                break
    return labels.tolist()
