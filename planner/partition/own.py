"""Starts that hold big districts in catchments of their own, then draw the rest.

A district whose population makes a whole number (≥ 2) of balanced
catchments (Leeds: 3.04) can be held by exactly that many catchments of its
own, so no neighbour needs a piece of it.  Local search rarely finds that:
the line between a Leeds remainder and Wakefield would have to move a whole
catchment at once.  So for each subset of such districts (`held`), each is
cut (METIS, equal parts) into its catchments, and the rest of the region is
drawn around them in two ways:

- grouped: the rest's district pieces, as whole nodes (other big districts
  cut into whole catchments plus a remainder that neighbours can share, see
  `starts.coarsen`), are grouped together with the held catchments in a
  window twice as wide as the tolerance.  Pieces cut at fixed places rarely
  group exactly; the caller's balance step finishes the grouping.
- apart: the held catchments are fixed and every connected rest of the
  region is drawn and searched on its own (`draw_rest`, the caller's start
  and local search) into the catchments its population makes, when that is
  balanced.  This reaches rests the wide grouping cannot balance; searched
  with the whole region instead, the balance step pushes people through the
  held catchments (West Yorkshire, seed 2021: score 70.5 against 59.3).

Each drawing is a start; the caller (`solve.partition_region`, once per
region with the region's seed) balances and searches it like any other.
Before, the grouped drawing was redone in every whole-district start with
that start's seed, and the apart drawing once more after them.  Drawn once,
they cost about 0.37 s of England's 4 s (serial, seed 2021, profiled)
instead of 0.45 s, and over seeds 0-4 and 2021 the score of England
(about 2,000) stayed within 1 except at seeds 0 and 1 (+9 and +5, mostly
one ICB, before the la_aligned `solve.Effort` was retuned).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from planner.partition.graph import RegionGraph, subgraph
from planner.partition.grouping import best_grouping
from planner.partition.objective import Objective
from planner.partition.starts import SEARCH_BUDGET, coarsen, region_components

# How a rest of the region is drawn in the apart drawing: (graph, catchments, tolerance) →
# labels 0..n-1 (the caller's whole start and local search).
DrawRest = Callable[[RegionGraph, int, float], np.ndarray]

# Held districts are chosen among this many of the largest candidates (each subset).
OWN_CANDIDATES = 3


def own_district_candidates(g: RegionGraph, k: int, tolerance: float) -> list[int]:
    """The largest few districts whose population makes a whole number (≥ 2) of catchments."""
    mean = sum(g.pop) / k
    hi, lo = (1 + tolerance) * mean, (1 - tolerance) * mean
    return [
        d
        for d, people in g.districts_by_size
        if people > hi and lo * 1.01 <= people / round(people / mean) <= hi / 1.01
    ][:OWN_CANDIDATES]


def own_district_starts(
    g: RegionGraph,
    k: int,
    *,
    tolerance: float,
    seed: int,
    objective: Objective,
    draw_rest: DrawRest,
) -> list[np.ndarray]:
    """Labels 0..k-1 that hold each chosen big district in catchments of its own.

    For each subset of `own_district_candidates` (largest subsets first, the
    empty one last: the other big districts are still cut into whole
    catchments), the grouped drawing and (subset not empty) the apart drawing
    of the module docstring; each distinct labelling once, in that order.
    """
    mean = sum(g.pop) / k
    candidates = own_district_candidates(g, k, tolerance)
    chunks: dict = {}  # METIS cuts and coarse graphs shared by the subsets
    out: list[np.ndarray] = []
    seen: set[bytes] = set()
    for r in range(len(candidates), -1, -1):
        for held in map(frozenset, itertools.combinations(candidates, r)):
            cg, node = coarsen(
                g, (1 + tolerance) * mean, big_parts=mean / 2, seed=seed, cache=chunks, own=held
            )
            drawn = [_grouped(cg, node, k, mean, 2 * tolerance, objective)]
            if held:
                drawn.append(_apart(g, cg, node, k, tolerance, held, draw_rest))
            for labels in drawn:
                if labels is not None and labels.tobytes() not in seen:
                    seen.add(labels.tobytes())
                    out.append(labels)
    return out


def _grouped(
    cg: RegionGraph, node: np.ndarray, k: int, mean: float, wide: float, objective: Objective
) -> np.ndarray | None:
    """All coarse nodes grouped into k catchments of mean ±wide (None if none found)."""
    if cg.n < k:
        return None
    found = best_grouping(cg, k, (1 - wide) * mean, (1 + wide) * mean, objective, SEARCH_BUDGET)
    return None if found is None else found[node]


def _apart(
    g: RegionGraph,
    cg: RegionGraph,
    node: np.ndarray,
    k: int,
    tolerance: float,
    held: frozenset[int],
    draw_rest: DrawRest,
) -> np.ndarray | None:
    """Held catchments fixed (the coarse nodes of `held`), each connected rest drawn alone."""
    mean = sum(g.pop) / k
    hi, lo = (1 + tolerance) * mean, (1 - tolerance) * mean
    held_node = np.isin(cg.district_array, list(held))
    if not ((cg.pop_array[held_node] >= lo) & (cg.pop_array[held_node] <= hi)).all():
        return None  # a held district in pieces, or cut out of balance
    labels = np.full(g.n, -1, dtype=np.int64)
    is_held = held_node[node]
    _, own = np.unique(node[is_held], return_inverse=True)
    labels[is_held] = own
    used = int(own.max()) + 1
    pop = g.pop_array
    for rows in region_components(g, np.flatnonzero(~is_held)):
        total = pop[rows].sum()
        n = round(total / mean)
        if n < 1 or not lo * 1.001 <= total / n <= hi / 1.001 or n > len(rows):
            return None
        if n > 1:
            sub = subgraph(g, rows)
            sub_tol = min(hi * n / total - 1, 1 - lo * n / total, tolerance)
            if pop[rows].max() > (1 + sub_tol) * total / n:
                return None
            labels[rows] = used + draw_rest(sub, n, sub_tol)
        else:
            labels[rows] = used
        used += n
    return labels if used == k else None
