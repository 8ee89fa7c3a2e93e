"""One region (an ICB): several starts, each balanced and searched, and the best kept.

A region whose least compact catchment stays below PP_FLOOR gets more starts,
and then each poor catchment is redrawn together with each neighbour, and each
two neighbours, in turn (`recombine`).  Then every two neighbouring catchments
are redrawn together (`pair_descent`), which moves the local optimum a seed's
start ended in.  Redrawn and final labellings are polished with compound moves.
The la_aligned preset also starts from big districts held in catchments of
their own (planner.partition.own).  How much of each a preset does is its
`Effort`.  All randomness comes from generators seeded from the user's seed
(planner.partition.seeds), so a seed fixes the result.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from planner.errors import PlannerError
from planner.partition import seeds
from planner.partition.graph import (
    Labelling,
    RegionGraph,
    min_pp,
    subgraph,
)
from planner.partition.moves import balance, compound_moves, improve, piece_moves, repair
from planner.partition.objective import (
    FOUR_PI,
    IMBALANCE,
    OBJECTIVES,
    PP_FLOOR,
    Objective,
    Preset,
    objective_of,
)
from planner.partition.own import own_district_starts
from planner.partition.starts import (
    CUT_CANDIDATES,
    SEARCH_TOLERANCE,
    coarsen,
    metis_labels,
    strip_starts,
    whole_district_start,
)

# Balance window (±) of the first local-search stage, tightened to the tolerance after.
LOOSE = 0.03
# Regions whose best start leaves a catchment below PP_FLOOR get `Effort.extra_starts`
# more (METIS starts in the equal-size preset, with a looser first stage every other time).
EXTRA_LOOSE = (LOOSE, 0.08)

RECOMBINE_SEEDS = 3
# A poor pair is also redrawn from straight cuts at this many directions (every 30°).
STRIP_ANGLES = 6
RECOMBINE_ROUNDS = 6
# A pair redraw (la_aligned) tries groupings of whole districts only, then METIS on the
# coarse graph: cutting each of 8 districts in turn took a third of the pair redraws' time,
# and over seeds 0-4 and 2021 changed mean PP by at most 0.0011 either way and split
# districts not at all (benchmarks/partition.py --seeds).
PAIR_CUT_CANDIDATES = 0
# Rounds of compound moves (each followed by single moves) in `_polish`.
COMPOUND_ROUNDS = 3
# A poor catchment is redrawn with each neighbour, and with each two (that can rotate
# three catchments round a coastline, which no pair redraw reaches).
RECOMBINE_GROUP = 3


@dataclass(frozen=True)
class Effort:
    """How hard a preset searches; every start and redraw is seeded from the user's seed.

    Figures over seeds 0-4 and 2021 (benchmarks/partition.py --seeds): without
    `pair_descent` the local optima of different seeds differ by up to 0.7 in Σ PP
    of one ICB, and more starts did not lift the mean PP reliably.  Pair redraws
    do (equal size, mean PP 0.327-0.337 → 0.340-0.349); they are paid for by fewer
    starts, extra starts and recombination rounds: equal size costs about 20% more
    CPU than four starts without them.  In la_aligned, one round of pair redraws
    (whole districts only: PAIR_CUT_CANDIDATES), one recombination round and three
    extra starts give, per seed 0/1/2/3/4/2021, mean PP 0.3245/0.3231/0.3240/0.3248/
    0.3255/0.3271 and 81/82/81/81/81/82 split districts (max dev 9.97%, 202/202
    contiguous, the same 5 coast-bound catchments below PP 0.15), against
    0.3235/0.3221/0.3216/0.3240/0.3236/0.3245 and 80/81/80/82/82/83 with no pair
    redraws, six recombination rounds and four extra starts, for the same CPU time
    within a shared machine's noise (median cpu_s with 2 workers: 4.33 s against
    4.45 s run one after the other, 4.22 s against 4.02 s run side by side; serial,
    the six seeds: 21.5-22.9 s against 22.3-24.8 s).  Recombination rounds after
    the first changed the score of England by less than 0.5 (of about 2,000) per
    seed, for about 15% of the CPU time; with two extra starts a new catchment fell
    below PP 0.15 (seed 2021), with three starts mean PP fell to 0.3225 (seed 3);
    cutting districts in pair redraws (CUT_CANDIDATES) took a third of their time,
    for ±0.0011 mean PP and the same split districts.  Fewer starts cost quality in
    equal size: two extra starts let a new catchment fall below PP 0.15.
    """

    starts: int  # independent starts per region; the best by score wins
    extra_starts: int  # more for a region whose least compact catchment is below PP_FLOOR
    recombine_rounds: int  # rounds of `recombine` (poor catchments) at most
    pair_rounds: int  # rounds of `pair_descent` (every two neighbours) at most


EFFORT: dict[str, Effort] = {
    # aligned starts redo the slower whole-district search, so fewer extra ones
    "la_aligned": Effort(starts=4, extra_starts=3, recombine_rounds=1, pair_rounds=1),
    "equal_size": Effort(starts=3, extra_starts=6, recombine_rounds=3, pair_rounds=2),
}


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


def partition_region(
    graph: RegionGraph,
    k: int,
    *,
    tolerance: float,
    seed: int = 0,
    preset: Preset = "la_aligned",
) -> np.ndarray:
    """Labels 0..k-1 for the areas of one region (e.g. an ICB).

    Each catchment is connected and holds the region's mean population
    ±tolerance; among such labellings, the one with the lowest objective
    (planner.partition.objective, the preset's weights) found from several
    seeded starts is returned.  The la_aligned preset also starts from
    groupings of whole districts, and from starts that hold big districts in
    catchments of their own (`own.own_district_starts`, once per region).
    The same graph, k, tolerance, seed and preset give the same labels.
    """
    keep_districts = OBJECTIVES[preset].keep_districts
    g = graph
    k = int(k)
    _validate(g.pop_array, g.a, g.b, k, tolerance)
    if k == 1:
        return np.zeros(g.n, dtype=np.int64)
    effort = EFFORT[preset]
    best: tuple[float, float, list[int]] | None = None
    for attempt in range(effort.starts + effort.extra_starts):
        if attempt >= effort.starts and best is not None and best[1] >= PP_FLOOR:
            break  # extra starts only for regions whose least compact catchment is poor
        extra = attempt >= effort.starts
        st = _attempt(
            g,
            k,
            tolerance,
            seeds.stream(seed, "start", attempt),
            keep_districts,
            coarse=attempt % 2 == 0 and (keep_districts or not extra),
            loose=EXTRA_LOOSE[attempt % 2] if extra else LOOSE,
        )
        score = st.objective.score(st, tolerance)
        if best is None or score < best[0]:
            best = (score, min_pp(st), list(st.labels))
    assert best is not None
    objective = objective_of(keep_districts)
    if keep_districts:
        owned = own_district_starts(
            g,
            k,
            tolerance=tolerance,
            seed=seed,
            objective=objective,
            draw_rest=lambda sub, n, tol: np.asarray(
                _attempt(sub, n, tol, seed, True, coarse=True).labels, dtype=np.int64
            ),
        )
        for i, init in enumerate(owned):
            rng = seeds.rng(seed, "own_district", i)
            st = _solve(g, k, tolerance, rng, seed, objective, init, _stages(tolerance))
            score = objective.score(st, tolerance)
            if score < best[0]:
                best = (score, min_pp(st), list(st.labels))
    labels = best[2]
    if keep_districts:
        st = Labelling(g, np.asarray(labels), k, objective)
        if st.splits():
            labels = piece_moves(st, tolerance, seed)
            best = (best[0], min_pp(Labelling(g, np.asarray(labels), k, objective)), labels)
    if best[1] < PP_FLOOR:
        _, labels = recombine(
            Labelling(g, np.asarray(labels), k, objective),
            tolerance,
            seed,
            keep_districts,
            rounds=effort.recombine_rounds,
        )
    labels = pair_descent(
        Labelling(g, np.asarray(labels), k, objective),
        tolerance=tolerance,
        seed=seed,
        rounds=effort.pair_rounds,
    )
    st = Labelling(g, np.asarray(labels), k, objective)
    mean = sum(g.pop) / k
    _polish(st, (1 - tolerance) * mean, (1 + tolerance) * mean, seeds.rng(seed, "polish"))
    return np.asarray(st.labels, dtype=np.int64)


def _solve(
    g: RegionGraph,
    k: int,
    tolerance: float,
    rng: np.random.Generator,
    seed: int,
    objective: Objective,
    init: np.ndarray | None,
    stages: list[float],
) -> Labelling:
    total = sum(g.pop)
    mean = total / k
    labels = (
        metis_labels(g, k, seed, ufactor=max(1, round(stages[0] * 1000))) if init is None else init
    )
    st = Labelling(g, labels, k, objective)
    repair(st)
    for tol in stages:
        lo, hi = (1 - tol) * mean, (1 + tol) * mean
        balance(st, lo, hi, mean, rounds=20 * k + 20)
        improve(st, lo, hi, rng, passes=8)
    return st


def _polish(st: Labelling, lo: float, hi: float, rng: np.random.Generator) -> None:
    """Compound moves, then single moves again, while they help.

    At the final window single moves stall; a compound move often frees a few
    single ones.  Used on finished labellings only: run inside every start it
    changed which start won and left Mid and South Essex worse.
    """
    for _ in range(COMPOUND_ROUNDS):
        if not compound_moves(st, lo, hi, rng, passes=4) or not improve(st, lo, hi, rng, passes=8):
            break


def _stages(tolerance: float, loose: float = LOOSE) -> list[float]:
    """Balance windows of the search: from ±loose down to the tolerance."""
    loose = max(tolerance, loose)
    return [loose, (loose + tolerance) / 2, tolerance] if loose > tolerance else [tolerance]


def _redraws(
    sub: RegionGraph, n: int, tolerance: float, seed: int, keep_districts: bool
) -> Iterator[Labelling]:
    """Candidate labellings of a merged group: seeded METIS searches, then straight cuts."""
    for r in range(RECOMBINE_SEEDS):
        yield _attempt(
            sub, n, tolerance, seeds.stream(seed, "redraw", r), keep_districts, coarse=False
        )
    if n == 2:
        objective = objective_of(keep_districts)
        for i, init in enumerate(strip_starts(sub, n, STRIP_ANGLES)):
            rng = seeds.rng(seed, "strip", i)
            yield _solve(sub, n, tolerance, rng, seed, objective, init, _stages(tolerance))


def _attempt(
    g: RegionGraph,
    k: int,
    tolerance: float,
    seed: int,
    keep_districts: bool,
    coarse: bool,
    loose: float = LOOSE,
    cut_candidates: int = CUT_CANDIDATES,
) -> Labelling:
    """One start: METIS (on whole districts if `coarse`), repair, balance, local search.

    The search starts at ±`loose` and tightens to the tolerance in stages, so
    shapes are improved while there is still room to move.  `cut_candidates`:
    districts tried cut when no grouping of whole districts balances (la_aligned).
    """
    rng = seeds.rng(seed, "search")
    mean = sum(g.pop) / k
    objective = objective_of(keep_districts)
    stages = _stages(tolerance, loose)
    init = None
    if coarse:
        init = whole_district_start(
            g,
            k,
            max(tolerance, SEARCH_TOLERANCE),
            seed,
            objective,
            cut_candidates if keep_districts else 0,
        )
    if coarse and init is None:
        cg, node = coarsen(g, (1 + max(tolerance, 0.03)) * mean)
        if cg.n < k:
            return _solve(g, k, tolerance, rng, seed, objective, None, stages)
        cst = _solve(cg, k, tolerance, rng, seed, objective, None, [stages[0]])
        init = np.asarray(cst.labels, dtype=np.int64)[node]
    return _solve(g, k, tolerance, rng, seed, objective, init, stages)


def recombine(
    st: Labelling,
    tolerance: float,
    seed: int,
    keep_districts: bool,
    *,
    rounds: int = RECOMBINE_ROUNDS,
) -> tuple[float, list[int]]:
    """Redraw each catchment below PP_FLOOR together with each neighbour (or two) in turn.

    Single-area moves stall where a coastline makes one catchment poor: the
    line between it and a neighbour has to move a long way at once.  Merging
    the group and splitting it again (a small two- or three-way problem,
    several seeds) makes that move; the result is polished and kept when the
    region's score improves.
    """
    g, k = st.g, st.k
    mean = sum(st.populations) / k
    lo, hi = (1 - tolerance) * mean, (1 + tolerance) * mean
    labels = np.asarray(st.labels, dtype=np.int64)
    best_score = st.objective.score(st, tolerance)
    tried: set[tuple[tuple[int, ...], bytes]] = set()
    for round_ in range(rounds):
        improved = False
        cur = Labelling(g, labels, k, st.objective)
        pps = [FOUR_PI * cur.areas[p] / cur.perimeters[p] ** 2 for p in range(k)]
        poor = sorted((p for p in range(k) if pps[p] < PP_FLOOR), key=lambda p: (pps[p], p))
        for p in poor:
            cur = Labelling(g, labels, k, st.objective)
            adj = cur.part_graph()
            groups = [
                others
                for n in range(1, RECOMBINE_GROUP)
                for others in itertools.combinations(sorted(adj[p]), n)
            ]
            for others in groups:
                group = (p, *others)
                rows = np.flatnonzero(np.isin(labels, group))
                sig = (tuple(sorted(group)), labels[rows].tobytes())
                if sig in tried:
                    continue
                tried.add(sig)
                group_mean = sum(cur.populations[x] for x in group) / len(group)
                sub_tol = min(hi / group_mean - 1, 1 - lo / group_mean)
                if sub_tol < 1e-3:
                    continue
                sub = subgraph(g, rows)
                if max(sub.pop) > (1 + sub_tol) * group_mean:
                    continue
                salt = 31 * others[0] + 997 * sum(q + 1 for q in others[1:])
                base = seeds.stream(seed, "recombine", round_, salt)
                for r, sst in enumerate(_redraws(sub, len(group), sub_tol, base, keep_districts)):
                    trial = labels.copy()
                    trial[rows] = np.asarray(group)[np.asarray(sst.labels)]
                    tst = Labelling(g, trial, k, st.objective)
                    if any(len(tst.components(x)) != 1 for x in group):
                        continue
                    _polish(tst, lo, hi, seeds.rng(seed, "redraw_polish", round_, salt, r))
                    score = st.objective.score(tst, tolerance)
                    if score < best_score - 1e-9:
                        best_score, labels, improved = score, np.asarray(tst.labels), True
        if not improved:
            break
    return best_score, labels.tolist()


def pair_descent(st: Labelling, *, tolerance: float, seed: int, rounds: int) -> list[int]:
    """Redraw every two neighbouring catchments together; keep each redraw that lowers the score.

    A single-area search ends in a local optimum that depends on the start: the
    line between two catchments can only move an area at a time, each step
    keeping both within the tolerance.  Merging two neighbours and splitting
    them again (one seeded start on the pair: METIS, or whole districts in the
    la_aligned preset, then balance and local search) moves the whole line at
    once.  Each round visits the pairs (p < q) that border each other at its
    start, in order, skipping a pair redrawn last round when neither catchment
    has changed since; rounds stop when one keeps nothing.
    """
    g, k = st.g, st.k
    keep_districts = st.objective.keep_districts
    mean = sum(st.populations) / k
    lo, hi = (1 - tolerance) * mean, (1 + tolerance) * mean
    pop = np.asarray(g.pop_array)
    labels = np.asarray(st.labels, dtype=np.int64)
    cur = Labelling(g, labels, k, st.objective)
    changed = np.ones(k, dtype=bool)  # catchments redrawn in the last round (all, at first)
    for round_ in range(rounds):
        adj = cur.part_graph()
        pairs = [(x, y) for x in range(k) for y in sorted(adj[x]) if y > x]
        was_changed, changed = changed, np.zeros(k, dtype=bool)
        for p, q in pairs:
            if not (was_changed[p] or was_changed[q]):
                continue  # redrawn together last round and neither has changed since
            lp, lq = labels[g.a], labels[g.b]
            if not (((lp == p) & (lq == q)) | ((lp == q) & (lq == p))).any():
                continue  # no longer neighbours after an earlier redraw
            rows = np.flatnonzero((labels == p) | (labels == q))
            group_mean = pop[rows].sum() / 2
            sub_tol = min(hi / group_mean - 1, 1 - lo / group_mean)
            if sub_tol < 1e-3 or pop[rows].max() > (1 + sub_tol) * group_mean:
                continue  # no room to redraw, or an area too big for either
            sub = subgraph(g, rows)
            sst = _attempt(
                sub,
                2,
                sub_tol,
                seeds.stream(seed, "pair", round_, p, q),
                keep_districts,
                coarse=keep_districts,
                loose=sub_tol,
                cut_candidates=PAIR_CUT_CANDIDATES,
            )
            if any(len(sst.components(x)) != 1 for x in (0, 1)):
                continue
            old = Labelling(sub, (labels[rows] == q).astype(np.int64), 2, st.objective)
            outside = {d: cur.district_parts[d] - c for d, c in old.district_parts.items()}
            if _pair_score(sst, outside, mean, tolerance) < (
                _pair_score(old, outside, mean, tolerance) - 1e-9
            ):
                labels = labels.copy()
                labels[rows] = np.array([p, q])[np.asarray(sst.labels)]
                cur = Labelling(g, labels, k, st.objective)
                changed[[p, q]] = True
        if not changed.any():
            break
    return labels.tolist()


def _pair_score(pair: Labelling, outside: dict[int, int], mean: float, tolerance: float) -> float:
    """The region's score, up to a constant, as a function of the labels of two catchments.

    `pair` labels the two catchments' areas (a subgraph keeps each area's whole
    perimeter, so their shapes are exact); `outside[d]` counts the other
    catchments holding district d, which decides whether d is split.
    """
    objective = pair.objective
    w = objective.weights
    excess = sum(max(0.0, abs(people / mean - 1) - tolerance) for people in pair.populations)
    shape = sum(objective.shape_cost(pair.perimeters[x], pair.areas[x]) for x in range(pair.k))
    fragments = sum(pair.district_parts.values())
    splits = sum(outside[d] + c > 1 for d, c in pair.district_parts.items())
    return IMBALANCE * excess + shape + w.split * fragments + w.district * splits
