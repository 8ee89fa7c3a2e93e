"""Split each ICB's small areas into k contiguous, compact, balanced catchments.

Shape of the method (each step exists because the one before falls short):

1. Initial solution from METIS (population as vertex weights, shared boundary
   length as edge weights, contiguous parts).  In the local-authority aligned
   preset METIS works on a coarse graph in which every district piece that is
   no bigger than a catchment is one indivisible node, so whole districts stay
   whole unless they are too big to.
2. Repair: METIS may leave stray pieces; each is handed to the neighbouring
   catchment it shares most boundary with.
3. Balance: population is pushed along paths of neighbouring catchments, from
   the ones above the tolerance to the nearest with room, one boundary area at
   a time, never breaking contiguity.
4. Local search: boundary areas move to a neighbouring catchment when that
   lowers Σ 1/Polsby-Popper (+ a penalty per split district), keeping balance and
   contiguity (articulation check).  Perimeters are kept incrementally:
   P = Σ perimeter − 2 Σ shared length of internal edges.  Tolerances shrink in
   stages so shapes are improved while there is still room to move.
5. Aligned preset: whole district pieces (a leftover 11% of Solihull) move at
   once to a neighbouring catchment that already holds the district, then
   balance and search again; kept only if the region's score improves.

ICBs are independent and are solved in parallel worker processes.
All randomness comes from one seeded generator, so a seed fixes the result.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pymetis
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from planner.config import PARTITION_PRESETS  # preset name -> tolerance (one source)
from planner.errors import PlannerError

Preset = Literal["la_aligned", "equal_size"]


@dataclass(frozen=True)
class PartitionSettings:
    """How catchments are drawn: preset (district alignment or equal size), tolerance, seed."""

    preset: Preset = "la_aligned"
    tolerance: float = 0.10
    seed: int = 0

    def __post_init__(self) -> None:
        if self.preset not in PARTITION_PRESETS:
            raise PlannerError(
                f"unknown partition preset {self.preset!r}",
                field="preset",
                value=self.preset,
                fix=f"use one of {sorted(PARTITION_PRESETS)}",
            )
        if not (0 < self.tolerance < 1):
            raise PlannerError(
                "partition tolerance must be a fraction between 0 and 1 (e.g. 0.1 for ±10%)",
                field="tolerance",
                value=self.tolerance,
            )

    @property
    def keep_districts(self) -> bool:
        return self.preset == "la_aligned"


PRESETS = {name: PartitionSettings(name, tol, 0) for name, tol in PARTITION_PRESETS.items()}

# Weight of one extra district split in units of 1/PP (a typical catchment scores 2-5).
SPLIT_WEIGHT = {True: 4.0, False: 1.5}
_FOUR_PI = 4.0 * math.pi
# Catchments less compact than PP_FLOOR pay FLOOR_WEIGHT extra per unit of 1/PP below it,
# so the search trades a little of a compact neighbour's shape for the worst one's
# (keyed like SPLIT_WEIGHT by keep_districts: whole districts matter more there).
PP_FLOOR = 0.155
# Balance window (±) of the first local-search stage, tightened to the tolerance after.
LOOSE = 0.03
# Equal size: 40 lifts Torbay & Teignbridge over the floor at no cost to the national
# mean PP (0.334) or splits (163); 8 left it at 0.1499 (benchmarks/partition.py).
FLOOR_WEIGHT = {True: 2.0, False: 40.0}


def _shape_cost(perim: float, area: float, floor_weight: float) -> float:
    """1/PP, plus a steep penalty once PP falls below PP_FLOOR."""
    if area <= 0:
        return 0.0
    x = perim * perim / (_FOUR_PI * area)
    excess = x - 1.0 / PP_FLOOR
    return x + floor_weight * excess if excess > 0 else x


class _Graph:
    """Plain-python adjacency lists: the local search is a loop over single areas."""

    def __init__(
        self,
        pop: np.ndarray,
        area: np.ndarray,
        perim: np.ndarray,
        district: np.ndarray,
        a: np.ndarray,
        b: np.ndarray,
        length: np.ndarray,
    ) -> None:
        self.n = len(pop)
        self.pop = [float(x) for x in pop]
        self.area = [float(x) for x in area]
        self.perim = [float(x) for x in perim]
        self.district = [int(x) for x in district]
        nbrs: list[list[int]] = [[] for _ in range(self.n)]
        lens: list[list[float]] = [[] for _ in range(self.n)]
        for x, y, w in zip(a.tolist(), b.tolist(), length.tolist(), strict=True):
            if x == y:
                continue
            nbrs[x].append(y)
            lens[x].append(w)
            nbrs[y].append(x)
            lens[y].append(w)
        self.nbrs = nbrs
        self.lens = lens
        self.a, self.b, self.length = a, b, length


class _State:
    """A labelling with per-catchment population, area, perimeter and district counts."""

    def __init__(
        self,
        g: _Graph,
        labels: np.ndarray,
        k: int,
        split_weight: float,
        floor_weight: float = 0.0,
    ) -> None:
        self.g = g
        self.k = k
        self.lab = [int(x) for x in labels]
        self.w_split = split_weight
        self.w_floor = floor_weight
        self.recompute()

    def recompute(self) -> None:
        g, k = self.g, self.k
        self.ppop = [0.0] * k
        self.parea = [0.0] * k
        self.pperim = [0.0] * k
        self.size = [0] * k
        self.dcnt: dict[tuple[int, int], int] = {}
        self.dparts: dict[int, int] = {}
        for u in range(g.n):
            p = self.lab[u]
            self.ppop[p] += g.pop[u]
            self.parea[p] += g.area[u]
            self.pperim[p] += g.perim[u]
            self.size[p] += 1
            key = (g.district[u], p)
            c = self.dcnt.get(key, 0)
            if c == 0:
                self.dparts[g.district[u]] = self.dparts.get(g.district[u], 0) + 1
            self.dcnt[key] = c + 1
        for u in range(g.n):
            p = self.lab[u]
            for v, w in zip(g.nbrs[u], g.lens[u], strict=True):
                if v > u and self.lab[v] == p:
                    self.pperim[p] -= 2.0 * w

    # -- scoring -------------------------------------------------------------------------
    def _f(self, perim: float, area: float) -> float:
        return _shape_cost(perim, area, self.w_floor)

    def move_delta(self, u: int, b: int) -> float:
        """Change in Σ 1/PP + split penalty if u moves to catchment b."""
        g, lab = self.g, self.lab
        a = lab[u]
        sa = sb = 0.0
        for v, w in zip(g.nbrs[u], g.lens[u], strict=True):
            lv = lab[v]
            if lv == a:
                sa += w
            elif lv == b:
                sb += w
        pa = self.pperim[a] - g.perim[u] + 2.0 * sa
        pb = self.pperim[b] + g.perim[u] - 2.0 * sb
        aa = self.parea[a] - g.area[u]
        ab = self.parea[b] + g.area[u]
        delta = (
            self._f(pa, aa)
            + self._f(pb, ab)
            - self._f(self.pperim[a], self.parea[a])
            - self._f(self.pperim[b], self.parea[b])
        )
        d = g.district[u]
        split = 0
        if self.dcnt.get((d, a), 0) == 1:
            split -= 1
        if self.dcnt.get((d, b), 0) == 0:
            split += 1
        return delta + self.w_split * split

    def apply(self, u: int, b: int) -> None:
        g, lab = self.g, self.lab
        a = lab[u]
        sa = sb = 0.0
        for v, w in zip(g.nbrs[u], g.lens[u], strict=True):
            if lab[v] == a:
                sa += w
            elif lab[v] == b:
                sb += w
        self.pperim[a] += -g.perim[u] + 2.0 * sa
        self.pperim[b] += g.perim[u] - 2.0 * sb
        self.parea[a] -= g.area[u]
        self.parea[b] += g.area[u]
        self.ppop[a] -= g.pop[u]
        self.ppop[b] += g.pop[u]
        self.size[a] -= 1
        self.size[b] += 1
        d = g.district[u]
        ca = self.dcnt[(d, a)] - 1
        self.dcnt[(d, a)] = ca
        if ca == 0:
            self.dparts[d] -= 1
        cb = self.dcnt.get((d, b), 0)
        if cb == 0:
            self.dparts[d] += 1
        self.dcnt[(d, b)] = cb + 1
        lab[u] = b

    # -- contiguity ----------------------------------------------------------------------
    def can_remove(self, u: int) -> bool:
        """True if catchment lab[u] stays connected (and non-empty) without u."""
        g, lab = self.g, self.lab
        a = lab[u]
        if self.size[a] <= 1:
            return False
        same = [v for v in g.nbrs[u] if lab[v] == a]
        if len(same) <= 1:
            return len(same) == 1
        # Local test: the neighbours inside the catchment are linked among themselves.
        ring = set(same)
        seen = {same[0]}
        stack = [same[0]]
        while stack:
            x = stack.pop()
            for y in g.nbrs[x]:
                if y in ring and y not in seen:
                    seen.add(y)
                    stack.append(y)
        if len(seen) == len(ring):
            return True
        # Full test: search the catchment without u until every neighbour is reached.
        missing = ring - seen
        seen.add(u)
        stack = list(seen - {u})
        while stack:
            x = stack.pop()
            for y in g.nbrs[x]:
                if y not in seen and lab[y] == a:
                    seen.add(y)
                    missing.discard(y)
                    if not missing:
                        return True
                    stack.append(y)
        return not missing

    def components(self, p: int) -> list[list[int]]:
        g, lab = self.g, self.lab
        seen: set[int] = set()
        comps = []
        for s in range(g.n):
            if lab[s] != p or s in seen:
                continue
            comp = [s]
            seen.add(s)
            stack = [s]
            while stack:
                x = stack.pop()
                for y in g.nbrs[x]:
                    if lab[y] == p and y not in seen:
                        seen.add(y)
                        comp.append(y)
                        stack.append(y)
            comps.append(comp)
        return comps

    def part_graph(self) -> list[set[int]]:
        adj: list[set[int]] = [set() for _ in range(self.k)]
        lab = self.lab
        for x, y in zip(self.g.a.tolist(), self.g.b.tolist(), strict=True):
            lx, ly = lab[x], lab[y]
            if lx != ly:
                adj[lx].add(ly)
                adj[ly].add(lx)
        return adj

    def splits(self) -> int:
        return sum(1 for c in self.dparts.values() if c > 1)


# ---------------------------------------------------------------------------------------
# initial solution and repair


def _metis(
    g: _Graph, k: int, seed: int, ufactor: int, tpwgts: list[float] | None = None
) -> np.ndarray:
    if k == 1:
        return np.zeros(g.n, dtype=np.int64)
    xadj = [0]
    adjncy: list[int] = []
    ew: list[int] = []
    for u in range(g.n):
        adjncy.extend(g.nbrs[u])
        # Integer edge weights: metres of shared boundary (bridges count as 1 m).
        ew.extend(max(1, round(w)) for w in g.lens[u])
        xadj.append(len(adjncy))
    vw = [max(1, round(p)) for p in g.pop]
    opts = pymetis.Options(seed=int(seed) % (2**31), ufactor=ufactor, contig=1, ncuts=4)
    try:
        res = pymetis.part_graph(
            k,
            pymetis.CSRAdjacency(xadj, adjncy),
            vweights=vw,
            eweights=ew,
            tpwgts=tpwgts,
            options=opts,
        )
    except (RuntimeError, ValueError):  # METIS refuses some tiny graphs; grow instead
        return _grow(g, k)
    return np.asarray(res[1], dtype=np.int64)


def _grow(g: _Graph, k: int) -> np.ndarray:
    """Fallback: peel off connected chunks of ~1/k of the population by breadth-first growth."""
    lab = np.full(g.n, -1, dtype=np.int64)
    target = sum(g.pop) / k
    for p in range(k - 1):
        start = next(u for u in range(g.n) if lab[u] < 0)
        total = 0.0
        queue = deque([start])
        lab[start] = p
        total += g.pop[start]
        while queue and total < target:
            x = queue.popleft()
            for y in g.nbrs[x]:
                if lab[y] < 0 and total < target:
                    lab[y] = p
                    total += g.pop[y]
                    queue.append(y)
    lab[lab < 0] = k - 1
    return lab


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
    cand = {u for u in range(g.n) if lab[u] == src and any(lab[v] == dst for v in g.nbrs[u])}
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
    """Move boundary areas while that improves the score, keeping balance and contiguity."""
    g, lab = st.g, st.lab
    total = 0
    for _ in range(passes):
        moves = 0
        for u in rng.permutation(g.n).tolist():
            a = lab[u]
            pu = g.pop[u]
            if st.ppop[a] - pu < lo:
                continue
            best, best_b = -1e-9, -1
            for v in g.nbrs[u]:
                b = lab[v]
                if b in (a, best_b) or st.ppop[b] + pu > hi:
                    continue
                d = st.move_delta(u, b)
                if d < best:
                    best, best_b = d, b
            if best_b >= 0 and st.can_remove(u):
                st.apply(u, best_b)
                moves += 1
        total += moves
        if moves == 0:
            break
    return total


# ---------------------------------------------------------------------------------------
# public entry points


def _validate(
    population: np.ndarray, n_edges_a: np.ndarray, n_edges_b: np.ndarray, k: int, tolerance: float
) -> None:
    n = len(population)
    if k < 1:
        raise PlannerError("number of catchments must be at least 1", field="teams", value=k)
    if n == 0:
        raise PlannerError("no areas to partition", fix="check the areas table")
    if k > n:
        raise PlannerError(
            f"cannot make {k} catchments out of {n} areas",
            field="teams",
            value=k,
            fix="use fewer teams for this ICB",
        )
    if (population < 0).any() or not np.isfinite(population).all():
        raise PlannerError("area populations must be finite and ≥ 0", field="population")
    graph = coo_matrix((np.ones(len(n_edges_a)), (n_edges_a, n_edges_b)), shape=(n, n))
    pieces, _ = connected_components(graph, directed=False)
    if pieces > 1:
        raise PlannerError(
            f"the adjacency graph falls into {pieces} pieces, so catchments cannot be contiguous",
            fix="add bridge edges for islands (planner.adjacency.build_adjacency does this)",
        )
    mean = population.sum() / k
    if mean <= 0:
        raise PlannerError("total population is zero", field="population")
    if k > 1 and population.max() > (1 + tolerance) * mean:
        raise PlannerError(
            f"one area has {population.max():,.0f} people, more than a catchment's upper limit "
            f"{(1 + tolerance) * mean:,.0f}",
            field="population",
            value=float(population.max()),
            fix="use fewer teams or a wider tolerance",
        )


def _coarsen(
    g: _Graph,
    hi: float,
    big_parts: float = 0.0,
    seed: int = 0,
    cut: frozenset[int] = frozenset(),
    remainder: bool = False,
    cut_parts: float = 0.0,
    cache: dict | None = None,
    own: frozenset[int] | None = None,
) -> tuple[_Graph, np.ndarray]:
    """Contract every district piece no bigger than a catchment into one node.

    Bigger pieces (and those of the districts in `cut`) stay as single areas,
    or with big_parts > 0 are cut (METIS) into chunks of about big_parts people
    each, so that a search over whole nodes can still place them.  With
    `remainder`, a big piece is cut instead into whole catchments (2·big_parts
    people) plus one remainder piece, which can join a neighbouring district.
    The districts in `cut` that are no bigger than a catchment are cut into
    chunks of about cut_parts people instead (when given): finer chunks give
    the search more ways to balance, and METIS keeps each chunk compact.
    `cache` (a dict owned by the caller, one per graph and seed) keeps the
    chunks of each piece between calls.

    With `own` (a set of districts, maybe empty) big pieces are cut so that the
    district ends up in as few catchments as possible: a piece of a district in
    `own` into round(pop / catchment) equal catchments of its own; any other
    big piece into whole catchments plus a remainder of at least a tenth of a
    catchment, cut into quarter-catchment chunks, which neighbours can share.
    """
    n = g.n
    a, b = g.a, g.b
    same = np.asarray(g.district)[a] == np.asarray(g.district)[b]
    m = coo_matrix((np.ones(int(same.sum())), (a[same], b[same])), shape=(n, n))
    _, piece = connected_components(m, directed=False)
    pop = np.asarray(g.pop)
    piece_pop = np.bincount(piece, weights=pop)
    piece_district = np.zeros(len(piece_pop), dtype=np.int64)
    piece_district[piece] = np.asarray(g.district)
    big = (piece_pop > hi) | np.isin(piece_district, list(cut))
    keys = np.where(big[piece], n + np.arange(n), piece)
    if big_parts > 0:
        for pc in np.flatnonzero(big).tolist():
            rows = np.flatnonzero(piece == pc)
            parts = big_parts
            if cut_parts > 0 and piece_pop[pc] <= hi:
                parts = cut_parts
            c = max(2, round(piece_pop[pc] / parts))
            weights = None
            ufactor = 50
            if own is not None and parts == big_parts:
                c, weights, ufactor = _own_cut(
                    piece_pop[pc], 2 * big_parts, piece_district[pc] in own
                )
            elif remainder and parts == big_parts:
                full = int(piece_pop[pc] // (2 * big_parts))
                rest = piece_pop[pc] - full * 2 * big_parts
                if full >= 1 and rest > 0.1 * 2 * big_parts:
                    c = full + 1
                    weights = [2 * big_parts / piece_pop[pc]] * full + [rest / piece_pop[pc]]
            if c > len(rows):
                c, weights = len(rows), None
            ckey = (int(rows[0]), len(rows), c, None if weights is None else tuple(weights))
            lab = None if cache is None else cache.get(ckey)
            if lab is None:
                local = np.full(n, -1, dtype=np.int64)
                local[rows] = np.arange(len(rows))
                keep = (local[a] >= 0) & (local[b] >= 0)
                sub = _Graph(
                    pop[rows],
                    np.asarray(g.area)[rows],
                    np.asarray(g.perim)[rows],
                    np.zeros(len(rows), dtype=np.int64),
                    local[a[keep]],
                    local[b[keep]],
                    g.length[keep],
                )
                lab = _metis(sub, c, seed, ufactor=ufactor, tpwgts=weights)
                if cache is not None:
                    cache[ckey] = lab
            keys[rows] = 2 * n + pc * n + lab
    _, node = np.unique(keys, return_inverse=True)
    m_nodes = int(node.max()) + 1
    cpop = np.bincount(node, weights=pop, minlength=m_nodes)
    carea = np.bincount(node, weights=np.asarray(g.area), minlength=m_nodes)
    cperim = np.bincount(node, weights=np.asarray(g.perim), minlength=m_nodes)
    na, nb = node[a], node[b]
    inside = na == nb
    cperim -= 2.0 * np.bincount(na[inside], weights=g.length[inside], minlength=m_nodes)
    cdist = np.zeros(m_nodes, dtype=np.int64)
    cdist[node] = np.asarray(g.district)
    lo_, hi_ = np.minimum(na, nb)[~inside], np.maximum(na, nb)[~inside]
    pair, inverse = np.unique(lo_ * m_nodes + hi_, return_inverse=True)
    weight = np.bincount(inverse, weights=g.length[~inside], minlength=len(pair))
    cg = _Graph(cpop, carea, cperim, cdist, pair // m_nodes, pair % m_nodes, weight)
    return cg, node


def _own_cut(pop: float, catchment: float, own: bool) -> tuple[int, list[float], int]:
    """Parts, METIS target weights and ufactor for a big piece in the `own` cutting mode."""
    if own:
        n = max(1, round(pop / catchment))
        return n, [1.0 / n] * n, 10
    full = int(pop // catchment)
    if pop - full * catchment < 0.1 * catchment:
        full -= 1
    full = max(full, 0)
    rest = pop - full * catchment
    chunks = max(1, round(rest / (0.25 * catchment)))
    weights = [catchment / pop] * full + [rest / chunks / pop] * chunks
    return full + chunks, weights, 30


def _district_search(
    g: _Graph,
    k: int,
    lo: float,
    hi: float,
    split_weight: float,
    budget: int,
    floor_weight: float = 0.0,
) -> np.ndarray | None:
    """Best grouping of a small graph of whole nodes into k connected groups within [lo, hi].

    Depth-first: the lowest unassigned node starts the next group; each
    connected set of unassigned nodes around it with a population in the window
    is tried.  Branches whose leftover pieces cannot form whole groups are cut.
    Scored by split districts and Σ 1/PP; gives up (returns the best so far)
    after `budget` steps.
    """
    n = g.n
    if n > 40:
        return None
    nbrs = [set(x) for x in g.nbrs]
    shared = [dict(zip(g.nbrs[u], g.lens[u], strict=True)) for u in range(n)]
    pop = g.pop
    label = [-1] * n
    best: list = [math.inf, None]
    steps = [0]

    def fits(total: float, groups: int) -> bool:
        return groups * lo - 1e-6 <= total <= groups * hi + 1e-6

    def leftover_ok(groups_left: int) -> bool:
        free = [u for u in range(n) if label[u] < 0]
        if not free:
            return groups_left == 0
        seen: set[int] = set()
        for s in free:
            if s in seen:
                continue
            comp_pop = 0.0
            stack = [s]
            seen.add(s)
            while stack:
                x = stack.pop()
                comp_pop += pop[x]
                for y in nbrs[x]:
                    if label[y] < 0 and y not in seen:
                        seen.add(y)
                        stack.append(y)
            j_min = math.ceil(comp_pop / hi - 1e-9)
            if j_min * lo > comp_pop + 1e-6:
                return False
        return True

    def score() -> float:
        per = [0.0] * k
        area = [0.0] * k
        districts: dict[int, set[int]] = {}
        for u in range(n):
            per[label[u]] += g.perim[u]
            area[label[u]] += g.area[u]
            districts.setdefault(g.district[u], set()).add(label[u])
            for v, w in shared[u].items():
                if label[v] == label[u]:
                    per[label[u]] -= w  # counted from both ends: −2w in total
        shape = sum(_shape_cost(p, a, floor_weight) for p, a in zip(per, area, strict=True))
        return shape + split_weight * sum(len(s) - 1 for s in districts.values())

    def groups_from(root: int):
        """Connected sets of free nodes containing root, population within the window."""
        out = []

        def extend(members: list[int], total: float, frontier: list[int], banned: set[int]) -> None:
            if steps[0] > budget:
                return
            steps[0] += 1
            if total >= lo - 1e-6:
                out.append(list(members))
            for i, v in enumerate(frontier):
                if total + pop[v] > hi + 1e-6:
                    continue
                new_banned = banned | set(frontier[:i])
                nxt = [x for x in frontier[i + 1 :] if x not in new_banned]
                for y in sorted(nbrs[v]):
                    free = label[y] < 0 and y != v and y not in members
                    if free and y not in new_banned and y not in nxt:
                        nxt.append(y)
                members.append(v)
                extend(members, total + pop[v], nxt, new_banned)
                members.pop()

        start = sorted(y for y in nbrs[root] if label[y] < 0)
        extend([root], pop[root], start, set())
        return out

    def dfs(group: int) -> None:
        if steps[0] > budget:
            return
        free = [u for u in range(n) if label[u] < 0]
        if group == k:
            if not free:
                sc = score()
                if sc < best[0]:
                    best[0], best[1] = sc, list(label)
            return
        if not free or not fits(sum(pop[u] for u in free), k - group):
            return
        root = free[0]
        for members in groups_from(root):
            for u in members:
                label[u] = group
            if leftover_ok(k - group - 1):
                dfs(group + 1)
            for u in members:
                label[u] = -1

    dfs(0)
    return None if best[1] is None else np.asarray(best[1], dtype=np.int64)


def _solve(
    g: _Graph,
    k: int,
    tolerance: float,
    rng: np.random.Generator,
    seed: int,
    split_weight: float,
    init: np.ndarray | None,
    stages: list[float],
    floor_weight: float = 0.0,
) -> _State:
    total = sum(g.pop)
    mean = total / k
    labels = _metis(g, k, seed, ufactor=max(1, round(stages[0] * 1000))) if init is None else init
    st = _State(g, labels, k, split_weight, floor_weight)
    _repair(st)
    for tol in stages:
        lo, hi = (1 - tol) * mean, (1 + tol) * mean
        _balance(st, lo, hi, mean, rounds=20 * k + 20)
        _improve(st, lo, hi, rng, passes=8)
    return st


def partition_region(
    population: np.ndarray,
    district: np.ndarray,
    edges: pd.DataFrame,
    area: np.ndarray,
    perimeter: np.ndarray,
    k: int,
    tolerance: float,
    seed: int = 0,
    keep_districts: bool = True,
) -> np.ndarray:
    """Labels 0..k-1 for the areas of one region (e.g. an ICB); edges use positions a, b.

    `district` holds any integer code per area (local authority); with
    keep_districts the method keeps districts whole where balance allows.
    """
    population = np.asarray(population, dtype=float)
    district = np.asarray(district, dtype=np.int64)
    a = edges["a"].to_numpy(dtype=np.int64)
    b = edges["b"].to_numpy(dtype=np.int64)
    length = (
        edges["shared_length"].to_numpy(dtype=float)
        if "shared_length" in edges
        else (np.ones(len(a)))
    )
    k = int(k)
    _validate(population, a, b, k, tolerance)
    if k == 1:
        return np.zeros(len(population), dtype=np.int64)
    g = _Graph(
        population, np.asarray(area, float), np.asarray(perimeter, float), district, a, b, length
    )
    best: tuple[float, float, list[int]] | None = None
    for attempt in range(STARTS + EXTRA_STARTS[keep_districts]):
        if attempt >= STARTS and best is not None and best[1] >= PP_FLOOR:
            break  # extra starts only for regions whose least compact catchment is poor
        extra = attempt >= STARTS
        st = _attempt(
            g,
            k,
            tolerance,
            seed * 7919 + attempt,
            keep_districts,
            coarse=attempt % 2 == 0 and (keep_districts or not extra),
            loose=EXTRA_LOOSE[attempt % 2] if extra else LOOSE,
        )
        score = _score(st, tolerance)
        if best is None or score < best[0]:
            best = (score, _min_pp(st), list(st.lab))
    assert best is not None
    if keep_districts:
        w, fw = SPLIT_WEIGHT[True], FLOOR_WEIGHT[True]
        for i, init in enumerate(_own_district_starts(g, k, tolerance, seed)):
            rng = np.random.default_rng([seed, 1000 + i])
            st = _solve(g, k, tolerance, rng, seed, w, init, [tolerance], fw)
            score = _score(st, tolerance)
            if score < best[0]:
                best = (score, _min_pp(st), list(st.lab))
    labels = best[2]
    if keep_districts:
        w, fw = SPLIT_WEIGHT[True], FLOOR_WEIGHT[True]
        st = _State(g, np.asarray(labels), k, w, fw)
        if st.splits():
            labels = _piece_moves(st, tolerance, seed)
            best = (best[0], _min_pp(_State(g, np.asarray(labels), k, w, fw)), labels)
    if best[1] < PP_FLOOR:
        w, fw = SPLIT_WEIGHT[keep_districts], FLOOR_WEIGHT[keep_districts]
        _, labels = _recombine(
            _State(g, np.asarray(labels), k, w, fw), tolerance, seed, keep_districts
        )
    return np.asarray(labels, dtype=np.int64)


# Independent starts per region; the best by score wins (seeds derived from the user's seed).
STARTS = 4
# Regions whose best start leaves a catchment below PP_FLOOR get up to this many more
# (METIS starts in the equal-size preset, with a looser first stage every other time).
# (keyed by keep_districts: aligned starts redo the slower whole-district search).
EXTRA_STARTS = {True: 4, False: 12}
EXTRA_LOOSE = (LOOSE, 0.08)


RECOMBINE_SEEDS = 3
RECOMBINE_ROUNDS = 6


def _subgraph(g: _Graph, rows: np.ndarray) -> _Graph:
    local = np.full(g.n, -1, dtype=np.int64)
    local[rows] = np.arange(len(rows))
    keep = (local[g.a] >= 0) & (local[g.b] >= 0)
    return _Graph(
        np.asarray(g.pop)[rows],
        np.asarray(g.area)[rows],
        np.asarray(g.perim)[rows],
        np.asarray(g.district)[rows],
        local[g.a[keep]],
        local[g.b[keep]],
        g.length[keep],
    )


def _recombine(
    st: _State, tolerance: float, seed: int, keep_districts: bool
) -> tuple[float, list[int]]:
    """Redraw each catchment below PP_FLOOR together with each neighbour in turn.

    Single-area moves stall where a coastline makes one catchment poor: the
    line between it and a neighbour has to move a long way at once.  Merging
    the pair and splitting it again (a small two-way problem, several seeds)
    makes that move; the result is kept when the region's score improves.
    """
    g, k = st.g, st.k
    mean = sum(st.ppop) / k
    lo, hi = (1 - tolerance) * mean, (1 + tolerance) * mean
    labels = np.asarray(st.lab, dtype=np.int64)
    best_score = _score(st, tolerance)
    tried: set[tuple[int, int, bytes]] = set()
    for round_ in range(RECOMBINE_ROUNDS):
        improved = False
        cur = _State(g, labels, k, st.w_split, st.w_floor)
        pps = [_FOUR_PI * cur.parea[p] / cur.pperim[p] ** 2 for p in range(k)]
        poor = sorted((p for p in range(k) if pps[p] < PP_FLOOR), key=lambda p: (pps[p], p))
        for p in poor:
            cur = _State(g, labels, k, st.w_split, st.w_floor)
            for q in sorted(cur.part_graph()[p]):
                rows = np.flatnonzero((labels == p) | (labels == q))
                sig = (min(p, q), max(p, q), labels[rows].tobytes())
                if sig in tried:
                    continue
                tried.add(sig)
                pair_mean = (cur.ppop[p] + cur.ppop[q]) / 2
                sub_tol = min(hi / pair_mean - 1, 1 - lo / pair_mean)
                if sub_tol < 1e-3:
                    continue
                sub = _subgraph(g, rows)
                if max(sub.pop) > (1 + sub_tol) * pair_mean:
                    continue
                for r in range(RECOMBINE_SEEDS):
                    sst = _attempt(
                        sub,
                        2,
                        sub_tol,
                        seed * 7919 + 104_729 * (round_ + 1) + 31 * q + r,
                        keep_districts,
                        coarse=False,
                    )
                    trial = labels.copy()
                    trial[rows] = np.where(np.asarray(sst.lab) == 0, p, q)
                    tst = _State(g, trial, k, st.w_split, st.w_floor)
                    if len(tst.components(p)) != 1 or len(tst.components(q)) != 1:
                        continue
                    score = _score(tst, tolerance)
                    if score < best_score - 1e-9:
                        best_score, labels, improved = score, trial, True
        if not improved:
            break
    return best_score, labels.tolist()


# Whole-piece moves (aligned preset): pieces up to this share of a catchment are tried.
PIECE_SHARE = 0.5
PIECE_TRIALS = 60


def _all_contiguous(g: _Graph, labels: np.ndarray, k: int) -> bool:
    same = labels[g.a] == labels[g.b]
    graph = coo_matrix((np.ones(int(same.sum())), (g.a[same], g.b[same])), shape=(g.n, g.n))
    n_comp, _ = connected_components(graph, directed=False)
    return n_comp == k and len(np.unique(labels)) == k


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
        comp = [s]
        seen.add(s)
        stack = [s]
        while stack:
            x = stack.pop()
            for y in g.nbrs[x]:
                if y not in seen and lab[y] == p and g.district[y] == d:
                    seen.add(y)
                    comp.append(y)
                    stack.append(y)
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
        cur = _State(g, labels, k, st.w_split, st.w_floor)
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
                tst = _State(g, trial, k, st.w_split, st.w_floor)
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


def _min_pp(st: _State) -> float:
    return min(
        _FOUR_PI * st.parea[p] / st.pperim[p] ** 2 if st.pperim[p] > 0 else 1.0 for p in range(st.k)
    )


def _score(st: _State, tolerance: float) -> float:
    """Lower is better: imbalance first, then Σ 1/PP plus the split penalty."""
    mean = sum(st.ppop) / st.k
    excess = sum(max(0.0, abs(p / mean - 1) - tolerance) for p in st.ppop)
    shape = sum(st._f(st.pperim[p], st.parea[p]) for p in range(st.k))
    return 1e6 * excess + shape + st.w_split * sum(c - 1 for c in st.dparts.values())


SEARCH_TOLERANCE = 0.05
SEARCH_BUDGET = 20_000
CUT_CANDIDATES = 8
# Chunk sizes (in catchments) a cut district is divided into; pairs cut among the largest.
CUT_PARTS = (0.5, 0.25, 0.125)
CUT_PAIR_CANDIDATES = 5
# Big districts whose size makes a whole number of catchments, tried kept in own catchments
# (each subset of the largest few).
OWN_CANDIDATES = 3


def _whole_district_start(
    g: _Graph,
    k: int,
    tolerance: float,
    seed: int,
    split_weight: float,
    cut_candidates: int = CUT_CANDIDATES,
    floor_weight: float = 0.0,
) -> np.ndarray | None:
    """Search groupings of whole districts (big ones pre-cut into half catchments).

    Widens the window twice before giving up, since a grouping a little out of
    balance still needs fewer split districts than cutting along arbitrary lines.
    """
    mean = sum(g.pop) / k
    hi = (1 + tolerance) * mean

    coarse: dict[tuple, tuple[_Graph, np.ndarray]] = {}
    chunks: dict = {}

    def search(
        cut: frozenset[int],
        tol: float,
        remainder: bool = False,
        parts: float = 0.5,
        own: frozenset[int] | None = None,
    ) -> tuple[float, np.ndarray] | None:
        key = (cut, remainder, parts, own)
        if key not in coarse:
            coarse[key] = _coarsen(
                g,
                hi,
                big_parts=mean / 2,
                seed=seed,
                cut=cut,
                remainder=remainder,
                cut_parts=parts * mean,
                cache=chunks,
                own=own,
            )
        cg, node = coarse[key]
        found = _district_search(
            cg,
            k,
            (1 - tol) * mean,
            (1 + tol) * mean,
            split_weight,
            SEARCH_BUDGET,
            floor_weight,
        )
        if found is None:
            return None
        labels = found[node]
        return _score(_State(g, labels, k, split_weight, floor_weight), tol), labels

    found = [r for r in (search(frozenset(), tolerance, rem) for rem in (False, True)) if r]
    if found:
        return min(found, key=lambda t: t[0])[1]
    # No balanced grouping of whole districts: cut one more district (each tried, in
    # half-catchment chunks, then finer), then two more, before widening the window.
    pops = pd.Series(g.pop).groupby(np.asarray(g.district)).sum()
    candidates = [
        int(d) for d in pops.sort_values(ascending=False, kind="stable").index if pops[d] <= hi
    ][:cut_candidates]
    for parts in CUT_PARTS:
        tried = [search(frozenset([d]), tolerance, parts=parts) for d in candidates]
        found = [t for t in tried if t is not None]
        if found:
            return min(found, key=lambda t: t[0])[1]
    pairs = itertools.combinations(candidates[:CUT_PAIR_CANDIDATES], 2)
    tried = [search(frozenset(pair), tolerance, parts=CUT_PARTS[-1]) for pair in pairs]
    found = [t for t in tried if t is not None]
    if found:
        return min(found, key=lambda t: t[0])[1]
    for widen in (1.5, 2.0):
        result = search(frozenset(), tolerance * widen)
        if result is not None:
            return result[1]
    return None


def _own_starts(
    g: _Graph, k: int, tolerance: float, seed: int, split_weight: float, floor_weight: float
) -> list[np.ndarray]:
    """Starts that hold each big district in as few catchments as its size allows.

    Each subset of the big districts whose size makes a whole number of
    balanced catchments is cut into those catchments; the other big districts
    into whole catchments plus a remainder in quarter-catchment chunks (see
    `_coarsen`).  Pieces cut at fixed places rarely group exactly, so the
    grouping is searched in a window twice as wide and the balance step
    finishes it (moving areas across district lines only where it must).
    """
    mean = sum(g.pop) / k
    hi, lo = (1 + tolerance) * mean, (1 - tolerance) * mean
    pops = pd.Series(g.pop).groupby(np.asarray(g.district)).sum()
    balanced = [
        int(d)
        for d in pops.sort_values(ascending=False, kind="stable").index
        if pops[d] > hi and lo * 1.01 <= pops[d] / round(pops[d] / mean) <= hi / 1.01
    ][:OWN_CANDIDATES]
    wide = 2 * tolerance
    chunks: dict = {}
    out: list[np.ndarray] = []
    seen: set[bytes] = set()
    for r in range(len(balanced), -1, -1):
        for own in itertools.combinations(balanced, r):
            cg, node = _coarsen(
                g, hi, big_parts=mean / 2, seed=seed, cache=chunks, own=frozenset(own)
            )
            if cg.n < k:
                continue
            found = _district_search(
                cg,
                k,
                (1 - wide) * mean,
                (1 + wide) * mean,
                split_weight,
                SEARCH_BUDGET,
                floor_weight,
            )
            if found is None:
                continue
            labels = found[node]
            if labels.tobytes() not in seen:
                seen.add(labels.tobytes())
                out.append(labels)
    return out


def _own_district_starts(g: _Graph, k: int, tolerance: float, seed: int) -> list[np.ndarray]:
    """Labellings in which some big districts are exactly their own catchments.

    For each subset of the big districts whose population makes a whole number
    n of balanced catchments (largest few), each such district is cut into n
    equal catchments of its own, and every connected rest of the region is
    partitioned on its own (whole districts where possible) into the number of
    catchments its population makes, when that is balanced.  So Leeds (3.04
    catchments) becomes three Leeds-only catchments and its neighbours share
    the others, instead of a Leeds remainder joining Wakefield.
    """
    mean = sum(g.pop) / k
    hi, lo = (1 + tolerance) * mean, (1 - tolerance) * mean
    district = np.asarray(g.district)
    pop = np.asarray(g.pop)
    pops = pd.Series(pop).groupby(district).sum()
    balanced = [
        int(d)
        for d in pops.sort_values(ascending=False, kind="stable").index
        if pops[d] > hi and lo * 1.01 <= pops[d] / round(pops[d] / mean) <= hi / 1.01
    ][:OWN_CANDIDATES]
    out: list[np.ndarray] = []
    for r in range(len(balanced), 0, -1):
        for own in itertools.combinations(balanced, r):
            labels = _own_district_split(g, k, tolerance, seed, mean, frozenset(own))
            if labels is not None:
                out.append(labels)
    return out


def _region_components(g: _Graph, rows: np.ndarray) -> list[np.ndarray]:
    sub = _subgraph(g, rows)
    graph = coo_matrix((np.ones(len(sub.a)), (sub.a, sub.b)), shape=(sub.n, sub.n))
    _, comp = connected_components(graph, directed=False)
    return [rows[comp == c] for c in range(int(comp.max()) + 1)] if sub.n else []


def _own_district_split(
    g: _Graph, k: int, tolerance: float, seed: int, mean: float, own: frozenset[int]
) -> np.ndarray | None:
    hi, lo = (1 + tolerance) * mean, (1 - tolerance) * mean
    district = np.asarray(g.district)
    pop = np.asarray(g.pop)
    labels = np.full(g.n, -1, dtype=np.int64)
    used = 0
    for d in sorted(own):
        rows = np.flatnonzero(district == d)
        if len(_region_components(g, rows)) != 1:
            return None
        n = round(pop[rows].sum() / mean)
        lab = _metis(_subgraph(g, rows), n, seed, ufactor=10, tpwgts=[1.0 / n] * n)
        sizes = np.bincount(lab, weights=pop[rows], minlength=n)
        if not ((sizes >= lo) & (sizes <= hi)).all():
            return None
        labels[rows] = used + lab
        used += n
    for rows in _region_components(g, np.flatnonzero(~np.isin(district, list(own)))):
        total = pop[rows].sum()
        n = round(total / mean)
        if n < 1 or not lo * 1.001 <= total / n <= hi / 1.001 or n > len(rows):
            return None
        if n == 1:
            labels[rows] = used
        else:
            sub = _subgraph(g, rows)
            sub_tol = min(hi * n / total - 1, 1 - lo * n / total)
            sub_tol = min(sub_tol, tolerance)
            if sub.pop and max(sub.pop) > (1 + sub_tol) * total / n:
                return None
            st = _attempt(sub, n, sub_tol, seed, True, coarse=True, own_starts=False)
            labels[rows] = used + np.asarray(st.lab, dtype=np.int64)
        used += n
    return labels if used == k else None


def _attempt(
    g: _Graph,
    k: int,
    tolerance: float,
    seed: int,
    keep_districts: bool,
    coarse: bool,
    loose: float = LOOSE,
    own_starts: bool = True,
) -> _State:
    """One start: METIS (on whole districts if `coarse`), repair, balance, local search.

    The search starts at ±`loose` and tightens to the tolerance in stages, so
    shapes are improved while there is still room to move.
    """
    rng = np.random.default_rng(seed)
    mean = sum(g.pop) / k
    w = SPLIT_WEIGHT[keep_districts]
    fw = FLOOR_WEIGHT[keep_districts]
    loose = max(tolerance, loose)
    stages = [loose, (loose + tolerance) / 2, tolerance] if loose > tolerance else [tolerance]
    init = None
    if coarse:
        init = _whole_district_start(
            g,
            k,
            max(tolerance, SEARCH_TOLERANCE),
            seed,
            w,
            CUT_CANDIDATES if keep_districts else 0,
            fw,
        )
    if coarse and init is None:
        cg, node = _coarsen(g, (1 + max(tolerance, 0.03)) * mean)
        if cg.n < k:
            return _solve(g, k, tolerance, rng, seed, w, None, stages, fw)
        cst = _solve(cg, k, tolerance, rng, seed, w, None, [stages[0]], fw)
        init = np.asarray(cst.lab, dtype=np.int64)[node]
    best = _solve(g, k, tolerance, rng, seed, w, init, stages, fw)
    if coarse and keep_districts and own_starts:
        for i, labels in enumerate(_own_starts(g, k, tolerance, seed, w, fw)):
            own_rng = np.random.default_rng([seed, i])
            st = _solve(g, k, tolerance, own_rng, seed, w, labels, stages, fw)
            if _score(st, tolerance) < _score(best, tolerance):
                best = st
    return best


def _default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _region_job(job: tuple) -> np.ndarray:
    """One ICB from plain numpy arrays (cheap to send to a worker process)."""
    pop, district, a, b, length, area, perim, k, tolerance, seed, keep = job
    edges = pd.DataFrame({"a": a, "b": b, "shared_length": length})
    return partition_region(pop, district, edges, area, perim, k, tolerance, seed, keep)


def _run_region(code: str, job: tuple | None, future) -> np.ndarray:
    """One ICB's labels, serially or from a worker; user errors name the ICB."""
    try:
        return _region_job(job) if future is None else future.result()
    except PlannerError as err:
        raise PlannerError(f"ICB {code}: {err.detail}", row=code, fix=err.fix) from err


def partition_england(
    areas: pd.DataFrame,
    adjacency,  # planner.adjacency.Adjacency
    teams_per_icb: pd.Series,
    settings: PartitionSettings = PRESETS["la_aligned"],
    workers: int | None = None,
) -> pd.Series:
    """Catchment number (0..k-1 within its ICB) for every area, indexed like `areas`.

    ICBs are independent, so with workers > 1 they are solved in a pool of
    forked processes, largest first for load balance.  Each ICB's result
    depends only on its own arrays and the seed, and results are merged in ICB
    order, so the labels equal a serial run (workers=1: no pool).
    Default: min(2, CPU count).
    """
    icb = areas["icb24cd"].astype(str).to_numpy()
    missing = sorted(set(pd.unique(icb)) - {str(c) for c in teams_per_icb.index})
    if missing:
        raise PlannerError(
            "ICB has no number of teams", row=missing[0], field="teams", fix="apportion teams first"
        )
    workers = _default_workers() if workers is None else int(workers)
    if workers < 1:
        raise PlannerError("workers must be at least 1", field="workers", value=workers)
    district_codes, _ = pd.factorize(areas["lad24cd"].astype(str), sort=True)
    ea = adjacency.edges["a"].to_numpy()
    eb = adjacency.edges["b"].to_numpy()
    elen = adjacency.edges["shared_length"].to_numpy(dtype=float)
    population = areas["population"].to_numpy(dtype=float)
    local = np.full(len(areas), -1, dtype=np.int64)
    jobs: dict[str, tuple] = {}
    region_rows: dict[str, np.ndarray] = {}
    for code in sorted(pd.unique(icb)):
        rows = np.flatnonzero(icb == code)
        local[rows] = np.arange(len(rows))
        keep = (local[ea] >= 0) & (local[eb] >= 0)
        region_rows[code] = rows
        jobs[code] = (
            population[rows],
            district_codes[rows],
            local[ea[keep]],
            local[eb[keep]],
            elen[keep],
            np.asarray(adjacency.area)[rows],
            np.asarray(adjacency.perimeter)[rows],
            int(teams_per_icb[code]),
            settings.tolerance,
            settings.seed,
            settings.keep_districts,
        )
        local[rows] = -1
    fork = "fork" in multiprocessing.get_all_start_methods()
    if workers == 1 or len(jobs) == 1 or not fork:
        results = {code: _run_region(code, job, None) for code, job in jobs.items()}
    else:
        # Largest first: big ICBs dominate the wall time, so they start early.
        order = sorted(jobs, key=lambda c: (-len(region_rows[c]), c))
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as pool:
            futures = {code: pool.submit(_region_job, jobs[code]) for code in order}
            results = {code: _run_region(code, None, futures[code]) for code in jobs}
    out = np.full(len(areas), -1, dtype=np.int64)
    for code in jobs:  # merged in ICB order
        out[region_rows[code]] = results[code]
    return pd.Series(out, index=areas.index, name="catchment")
