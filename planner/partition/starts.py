"""Initial labellings: METIS, and searches over groupings of whole districts.

METIS works with population as vertex weights and shared boundary length as
edge weights.  In the local-authority aligned preset a coarse graph, in which
every district piece no bigger than a catchment is one indivisible node, is
searched (or handed to METIS) first, so whole districts stay whole unless they
are too big to.
"""

from __future__ import annotations

import itertools
import math
from collections import deque

import numpy as np
import pymetis
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from planner.partition.graph import Labelling, RegionGraph, contract, subgraph
from planner.partition.grouping import best_grouping
from planner.partition.objective import Objective
from planner.partition.seeds import metis_seed

SEARCH_TOLERANCE = 0.05
SEARCH_BUDGET = 20_000
CUT_CANDIDATES = 8
# Chunk sizes (in catchments) a cut district is divided into; pairs cut among the largest.
# (A middle step of quarter-catchment chunks decided 3 of 108 starts on England, seed 0,
# none of them a winner: the same catchments for seed 0, mean PP over seeds 0-4 within
# 0.00001; it cost about a tenth of the la_aligned time.)
CUT_PARTS = (0.5, 0.125)
CUT_PAIR_CANDIDATES = 5


# ---------------------------------------------------------------------------------------
# METIS


def metis_labels(
    g: RegionGraph, k: int, seed: int, ufactor: int, tpwgts: list[float] | None = None
) -> np.ndarray:
    """METIS labels 0..k-1 (contiguous parts, best of 4 cuts); kept on g for the same call.

    The same call recurs (a district piece cut alike for two starts of one seed),
    and METIS gives the same answer to it; the result is read-only.
    """
    if k == 1:
        return np.zeros(g.n, dtype=np.int64)
    key = (k, metis_seed(seed), ufactor, None if tpwgts is None else tuple(tpwgts))
    done = g.__dict__.setdefault("_metis", {})
    if key not in done:
        done[key] = _metis(g, k, seed, ufactor, tpwgts)
        done[key].flags.writeable = False
    return done[key]


def _metis(g: RegionGraph, k: int, seed: int, ufactor: int, tpwgts: list[float] | None):
    # Integer edge weights: metres of shared boundary (bridges count as 1 m).
    xadj = g.indptr.tolist()
    adjncy = g.indices.tolist()
    ew = np.maximum(1, np.round(g.weights)).astype(np.int64).tolist()
    vw = np.maximum(1, np.round(g.pop_array)).astype(np.int64).tolist()
    opts = pymetis.Options(seed=metis_seed(seed), ufactor=ufactor, contig=1, ncuts=4)
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


def _grow(g: RegionGraph, k: int) -> np.ndarray:
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


# ---------------------------------------------------------------------------------------
# whole districts


def coarsen(
    g: RegionGraph,
    hi: float,
    big_parts: float = 0.0,
    seed: int = 0,
    cut: frozenset[int] = frozenset(),
    remainder: bool = False,
    cut_parts: float = 0.0,
    cache: dict | None = None,
    own: frozenset[int] | None = None,
) -> tuple[RegionGraph, np.ndarray]:
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
    piece, piece_pop, piece_district = g.district_pieces
    big = piece_pop > hi
    if cut:
        big |= np.isin(piece_district, list(cut))
    keys = np.where(big[piece], n + np.arange(n), piece)
    if big_parts > 0:
        for pc in np.flatnonzero(big).tolist():
            rows, sub = g.piece_graph(pc)
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
                lab = metis_labels(sub, c, seed, ufactor=ufactor, tpwgts=weights)
                if cache is not None:
                    cache[ckey] = lab
            keys[rows] = 2 * n + pc * n + lab
    _, node = np.unique(keys, return_inverse=True)
    gkey = ("graph", node.tobytes())
    cg = None if cache is None else cache.get(gkey)
    if cg is None:
        cg = contract(g, node)
        cg.centre = None  # straight cuts are for areas, not for coarse nodes
        if cache is not None:
            cache[gkey] = cg
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


def _grouping(
    cg: RegionGraph, k: int, mean: float, tol: float, objective: Objective
) -> np.ndarray | None:
    """The best grouping of a coarse graph's nodes into k groups of mean ±tol people."""
    return best_grouping(cg, k, (1 - tol) * mean, (1 + tol) * mean, objective, SEARCH_BUDGET)


def whole_district_start(
    g: RegionGraph,
    k: int,
    tolerance: float,
    seed: int,
    objective: Objective,
    cut_candidates: int = CUT_CANDIDATES,
) -> np.ndarray | None:
    """Search groupings of whole districts (big ones pre-cut into half catchments).

    Widens the window twice before giving up, since a grouping a little out of
    balance still needs fewer split districts than cutting along arbitrary lines.
    """
    mean = sum(g.pop) / k
    hi = (1 + tolerance) * mean

    coarse: dict[tuple, tuple[RegionGraph, np.ndarray]] = {}
    chunks: dict = {}
    searched: dict[tuple[bytes, float], tuple[float, np.ndarray] | None] = {}

    def search(
        cut: frozenset[int],
        tol: float,
        remainder: bool = False,
        parts: float = 0.5,
        own: frozenset[int] | None = None,
    ) -> tuple[float, np.ndarray] | None:
        key = (cut, remainder, parts, own)
        if key not in coarse:
            coarse[key] = coarsen(
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
        # Different cuts often give the same coarse graph (a small district makes two
        # chunks whatever the chunk size): its search and score are done once.
        done = (node.tobytes(), tol)
        if done not in searched:
            found = _grouping(cg, k, mean, tol, objective)
            searched[done] = None
            if found is not None:
                labels = found[node]
                searched[done] = (objective.score(Labelling(g, labels, k, objective), tol), labels)
        return searched[done]

    found = [r for r in (search(frozenset(), tolerance, rem) for rem in (False, True)) if r]
    if found:
        return min(found, key=lambda t: t[0])[1]
    # No balanced grouping of whole districts: cut one more district (each tried, in
    # half-catchment chunks, then finer), then two more, before widening the window.
    candidates = [d for d, people in g.districts_by_size if people <= hi][:cut_candidates]
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


def region_components(g: RegionGraph, rows: np.ndarray) -> list[np.ndarray]:
    sub = subgraph(g, rows)
    graph = coo_matrix((np.ones(len(sub.a)), (sub.a, sub.b)), shape=(sub.n, sub.n))
    _, comp = connected_components(graph, directed=False)
    return [rows[comp == c] for c in range(int(comp.max()) + 1)] if sub.n else []


def strip_starts(g: RegionGraph, k: int, angles: int) -> list[np.ndarray]:
    """k strips of equal population across the region, at `angles` directions.

    Areas are ordered by the projection of their centres on each direction and
    cut where the running population passes each 1/k share.  METIS starts of a
    small redraw all fall into the same basin; a straight cut across a coastal
    pair is a different one (Mid and South Essex: worst PP 0.129 → 0.178).
    Empty without centres.
    """
    if g.centre is None:
        return []
    pop = np.asarray(g.pop)
    return [straight_cut(g.centre, pop, k, math.pi * i / angles) for i in range(angles)]


def straight_cut(centre: np.ndarray, pop: np.ndarray, k: int, theta: float) -> np.ndarray:
    """Labels 0..k-1: strips across direction theta (radians) holding 1/k of the people each.

    Areas are ordered by the projection of their (n, 2) centres on the
    direction and cut where the running population passes each 1/k share.
    """
    projection = centre @ np.array([math.cos(theta), math.sin(theta)])
    order = np.argsort(projection, kind="stable")
    share = np.cumsum(pop[order]) / max(pop.sum(), 1e-9)
    labels = np.empty(len(pop), dtype=np.int64)
    labels[order] = np.minimum((share * k - 1e-9).astype(np.int64), k - 1)
    return labels
