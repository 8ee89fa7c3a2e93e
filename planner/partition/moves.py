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

from planner.partition.graph import _all_contiguous, _flood, _score, _State
from planner.partition.kernels import improve_pass

# ---------------------------------------------------------------------------------------
# repair


def _repair(st: _State) -> None:
    """Give every stray piece to its best-connected neighbour; fill empty catchments."""
    g = st.g
    for _ in range(4 * st.k + 10):
        changed = False
        for p in range(st.k):
            comps = st.components(p)
            if len(comps) <= 1:
                continue
            comps.sort(key=lambda c: (-sum(g.pop[u] for u in c), min(c)))
            for comp in comps[1:]:
                members = set(comp)
                shared: dict[int, float] = {}
                for u in comp:
                    for v, w in zip(g.nbrs[u], g.lens[u], strict=True):
                        if v not in members and st.lab[v] != p:
                            shared[st.lab[v]] = shared.get(st.lab[v], 0.0) + w + 1e-6
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
        if st.size[p] > 0:
            continue
        filled = True
        donors = [q for q in range(st.k) if st.size[q] > 1]
        big = max(donors, key=lambda q: (st.ppop[q], -q))
        members = [u for u in range(g.n) if st.lab[u] == big]
        half = st.ppop[big] / 2
        queue = deque([members[0]])
        seen = {members[0]}
        taken = 0.0
        order: list[int] = []
        while queue and taken < half and len(order) < len(members) - 1:
            x = queue.popleft()
            order.append(x)
            taken += g.pop[x]
            for y in g.nbrs[x]:
                if st.lab[y] == big and y not in seen:
                    seen.add(y)
                    queue.append(y)
        for u in order:
            st.apply(u, p)
    if any(size == 0 for size in st.size):
        raise AssertionError("repair left an empty catchment")  # pragma: no cover
    if filled:
        _repair(st)  # the donors may now be in pieces; hand those to their neighbours


# ---------------------------------------------------------------------------------------
# balance


def _shift(st: _State, src: int, dst: int, amount: float, slack: float) -> float:
    """Move boundary areas from src to dst totalling about `amount`; returns what moved."""
    g, lab = st.g, st.lab
    labels = np.asarray(lab, dtype=np.int64)
    la, lb = labels[g.a], labels[g.b]
    cand = set(g.a[(la == src) & (lb == dst)].tolist()) | set(
        g.b[(lb == src) & (la == dst)].tolist()
    )
    moved = 0.0
    while moved < amount - slack and cand:
        left = amount - moved
        scored = []
        for u in cand:
            if lab[u] != src:
                continue
            pu = g.pop[u]
            if pu > left + slack:
                continue
            scored.append((st.move_delta(u, dst), u))
        if not scored:
            break
        scored.sort()
        done = False
        for _, u in scored:
            if st.can_remove(u):
                st.apply(u, dst)
                moved += g.pop[u]
                cand.discard(u)
                for v in g.nbrs[u]:
                    if lab[v] == src:
                        cand.add(v)
                done = True
                break
        if not done:
            break
    return moved


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


def _balance(st: _State, lo: float, hi: float, mean: float, rounds: int) -> bool:
    """Push population from catchments outside the window along paths of neighbours.

    An over-full catchment sends areas to the nearest catchment with room (each
    catchment on the path passes the surplus on); an under-full one pulls from
    the nearest with a surplus.  Paths whose borders cannot move are made tabu.
    """
    slack = max((hi - lo) / 4.0, 0.0)
    blocked: set[tuple[int, int]] = set()  # (src, dst) borders where nothing could move
    stuck: set[int] = set()
    for _ in range(rounds):
        devs = [(max(st.ppop[p] - hi, lo - st.ppop[p]), p) for p in range(st.k) if p not in stuck]
        if not devs:
            break
        worst, p = max(devs)
        if worst <= 0:
            break
        adj = st.part_graph()
        over = st.ppop[p] > hi
        sign = 1.0 if over else -1.0
        if over:
            usable = lambda x, y: (x, y) not in blocked  # noqa: E731
        else:
            usable = lambda x, y: (y, x) not in blocked  # noqa: E731
        path = _path(adj, p, lambda q, s=sign: s * (mean - st.ppop[q]) > slack, usable)
        if path is None:
            path = _path(adj, p, lambda q, s=sign: s * (mean - st.ppop[q]) > 0, usable)
        if path is None:
            stuck.add(p)
            continue
        if over:
            for src, dst in itertools.pairwise(path):
                amount = st.ppop[src] - mean
                if amount <= 0:
                    break
                if _shift(st, src, dst, amount, slack) == 0:
                    blocked.add((src, dst))
                    break
        else:
            # path runs p -> ... -> donor; fill p first, then each hop refills the one before.
            for dst, src in itertools.pairwise(path):
                amount = mean - st.ppop[dst]
                if amount <= 0:
                    break
                if _shift(st, src, dst, amount, slack) == 0:
                    blocked.add((src, dst))
                    break
    return all(lo <= st.ppop[q] <= hi for q in range(st.k))


# ---------------------------------------------------------------------------------------
# local search


def _improve(st: _State, lo: float, hi: float, rng: np.random.Generator, passes: int) -> int:
    """Move boundary areas while that improves the score, keeping balance and contiguity.

    Each pass visits the areas in a fresh random order (compiled: kernels.improve_pass).
    """
    g = st.g
    flat = st.flat()
    weights = st.kernel_weights()
    total = 0
    for _ in range(passes):
        order = rng.permutation(g.n)
        moves = improve_pass(
            order,
            lo,
            hi,
            g.indptr,
            g.indices,
            g.weights,
            g.pop_array,
            g.perim_array,
            g.area_array,
            g.district_array,
            flat,
            weights,
        )
        total += moves
        if moves == 0:
            break
    st.load(flat)
    return total


def _borders(st: _State) -> dict[tuple[int, int], set[int]]:
    """(x, y) -> the areas of catchment x with a neighbour in catchment y."""
    g, lab = st.g, st.lab
    out: dict[tuple[int, int], set[int]] = {}
    for u in range(g.n):
        x = lab[u]
        for v in g.nbrs[u]:
            if lab[v] != x:
                out.setdefault((x, lab[v]), set()).add(u)
    return out


def _note_move(st: _State, borders: dict[tuple[int, int], set[int]], u: int) -> None:
    """Add the borders u and its neighbours gained by moving (lost ones are filtered later)."""
    lab, b = st.lab, st.lab[u]
    for v in st.g.nbrs[u]:
        if lab[v] != b:
            borders.setdefault((b, lab[v]), set()).add(u)
            borders.setdefault((lab[v], b), set()).add(v)


def _second_moves(
    st: _State,
    borders: dict[tuple[int, int], set[int]],
    u: int,
    a: int,
    b: int,
    lo: float,
    hi: float,
) -> list[tuple[int, int]]:
    """Moves (v, y) that bring a and b back into [lo, hi] after u moved from a to b.

    Taken before u moves (populations are additive): if b is over, v leaves b
    (for a, or any neighbour with room); if a is under, v joins a.
    """
    g, pop = st.g, st.ppop
    pu = g.pop[u]
    after = {a: pop[a] - pu, b: pop[b] + pu}
    over, under = after[b] > hi, after[a] < lo
    if over:
        pairs = [(b, a)] if under else [key for key in borders if key[0] == b]
    else:
        pairs = [key for key in borders if key[1] == a]
    out = []
    for x, y in sorted(pairs):
        for v in borders.get((x, y), ()):
            if v == u or st.lab[v] != x:
                continue
            final = dict(after)
            final[x] = final.get(x, pop[x]) - g.pop[v]
            final[y] = final.get(y, pop[y]) + g.pop[v]
            if all(lo <= f <= hi for f in final.values()):
                out.append((v, y))
    return out


def _compound(st: _State, lo: float, hi: float, rng: np.random.Generator, passes: int) -> int:
    """Pairs of moves whose first breaks the balance window and second restores it.

    At ±0.5% a catchment has room for less than one area, so single moves
    freeze most boundaries.  An improving move u: a→b that leaves a or b
    outside [lo, hi] is applied, then the best move v that restores the window
    (v: b→a, a swap; v: b→c or c→a, a short chain) is looked for; the pair is
    kept if the two deltas together lower the score, otherwise u goes back.
    """
    g, lab = st.g, st.lab
    total = 0
    for _ in range(passes):
        borders = _borders(st)
        moves = 0
        for u in rng.permutation(g.n).tolist():
            a = lab[u]
            for b in sorted({lab[v] for v in g.nbrs[u]} - {a}):
                if lab[u] != a:
                    break
                pu = g.pop[u]
                if lo <= st.ppop[a] - pu and st.ppop[b] + pu <= hi:
                    continue  # a single move: the plain local search's job
                d1 = st.move_delta(u, b)
                if d1 >= 0:
                    continue
                second = _second_moves(st, borders, u, a, b, lo, hi)
                if not second or not st.can_remove(u):
                    continue
                st.apply(u, b)
                scored = sorted(
                    (st.move_delta(v, y), v, y)
                    for v, y in second
                    if any(lab[w] == y for w in g.nbrs[v])
                )
                done = False
                for d2, v, y in scored:
                    if d1 + d2 >= -1e-9:
                        break
                    if st.can_remove(v):
                        st.apply(v, y)
                        _note_move(st, borders, u)
                        _note_move(st, borders, v)
                        moves += 1
                        done = True
                        break
                if not done:
                    st.apply(u, a)
        total += moves
        if moves == 0:
            break
    return total


# ---------------------------------------------------------------------------------------
# whole district pieces


# Whole-piece moves (aligned preset): pieces up to this share of a catchment are tried.
PIECE_SHARE = 0.5
PIECE_TRIALS = 60


def _district_pieces(st: _State) -> list[tuple[float, int, int, list[int]]]:
    """Connected pieces (pop, district, catchment, areas) of the split districts."""
    g, lab = st.g, st.lab
    split = {d for d, c in st.dparts.items() if c > 1}
    seen: set[int] = set()
    out = []
    for s in range(g.n):
        d = g.district[s]
        if d not in split or s in seen:
            continue
        p = lab[s]
        comp = _flood(g, s, lambda y, p=p, d=d: lab[y] == p and g.district[y] == d, seen)
        out.append((sum(g.pop[u] for u in comp), d, p, comp))
    out.sort(key=lambda t: (t[0], t[3][0]))
    return out


def _piece_moves(st: _State, tolerance: float, seed: int) -> list[int]:
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
    labels = np.asarray(st.lab, dtype=np.int64)
    best_score = _score(st, tolerance)
    tried: set[tuple[int, int, bytes]] = set()
    trials = 0
    improved = True
    while improved and trials < PIECE_TRIALS:
        improved = False
        cur = _State(g, labels, k, st.w_split, st.w_floor, st.w_district)
        for pop, d, p, comp in _district_pieces(cur):
            if pop > PIECE_SHARE * mean or len(comp) >= cur.size[p]:
                continue
            members = set(comp)
            dests = sorted(
                {
                    cur.lab[v]
                    for u in comp
                    for v in g.nbrs[u]
                    if v not in members and cur.lab[v] != p and cur.dcnt.get((d, cur.lab[v]), 0)
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
                tst = _State(g, trial, k, st.w_split, st.w_floor, st.w_district)
                if len(tst.components(p)) != 1:
                    continue
                if not _balance(tst, lo, hi, mean, rounds=20 * k + 20):
                    continue
                _improve(tst, lo, hi, np.random.default_rng([seed, 3000 + trials]), passes=4)
                out = np.asarray(tst.lab, dtype=np.int64)
                score = _score(tst, tolerance)
                if score < best_score - 1e-9 and _all_contiguous(g, out, k):
                    best_score, labels, improved = score, out, True
                    break
            if improved:
                break
    return labels.tolist()
