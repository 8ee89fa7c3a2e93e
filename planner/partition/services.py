"""Existing services kept whole: fixed parts of one region's partition.

A service area (e.g. the district of a running service) is a set of areas.
One that fits in a catchment (population within the upper limit) is
contracted into a single node before the region is solved, so whichever
catchment takes it takes all of it.  A bigger one is cut on its own into the
whole number n of catchments its population makes within the tolerance;
the rest of the region, in its connected pieces, is then solved on its own
with the catchments left.  A service that cannot be held this way (too big
for one catchment and too small for two, or leaving a rest that cannot be
balanced) is left to the search and reported with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from planner.partition.graph import RegionGraph, contract, subgraph
from planner.partition.objective import Preset
from planner.partition.solve import partition_region
from planner.partition.starts import region_components

# An island holding at least this share of a mean catchment may be a catchment of its own.
ISLAND_SHARE = 0.4
# A rest piece's mean catchment must lie this far inside the window, so that
# single areas can still fill each catchment to it.
MARGIN = 1.001


@dataclass(frozen=True)
class ServiceNote:
    """What became of one service area in one region."""

    service: int  # the caller's code of the service
    population: float
    catchments: float  # population / the region's mean catchment
    wanted: str  # "one catchment", "n catchments inside it", or "" (cannot be held)
    reason: str  # why it is not kept whole, or ""
    kept_whole: bool = False  # in one catchment, or only in catchments wholly inside it


@dataclass(frozen=True)
class ServicePlan:
    """Services held in one catchment (rows) and services cut into their own (rows, n)."""

    whole: list[np.ndarray]
    own: list[tuple[np.ndarray, int]]
    notes: list[ServiceNote]


def _split_rest(
    g: RegionGraph, taken: np.ndarray, k_left: int, mean: float, lo: float, hi: float
) -> tuple[list[tuple[np.ndarray, int, float]], str]:
    """(rows, catchments, tolerance) for each connected piece outside `taken`, and "".

    When the pieces cannot make k_left balanced catchments: no pieces, and what
    stops them, for the run's message.
    """
    free = np.flatnonzero(~taken)
    if len(free) == 0:
        return (
            [],
            "" if k_left == 0 else f"no areas would be left for its other {k_left} catchments",
        )
    pop = np.asarray(g.pop)
    out = []
    for rows in region_components(g, free):
        total = pop[rows].sum()
        n = round(total / mean)
        piece = f"a piece of {total:,.0f} people ({total / mean:.2f} catchments' worth)"
        if n < 1:
            return [], f"{piece} would be cut off from the rest"
        if n > len(rows):
            return [], f"{piece} has only {len(rows)} areas for {n} catchments"
        if not lo * MARGIN <= total / n <= hi / MARGIN:
            return (
                [],
                f"{piece} would need {n} catchments {total / n / mean - 1:+.1%} from the mean",
            )
        out.append((rows, n, min(hi * n / total - 1, 1 - lo * n / total)))
    wanted = sum(n for _, n, _ in out)
    if wanted != k_left:
        return [], f"the rest would make {wanted} catchments, not the {k_left} left"
    return out, ""


def _rest_pieces(
    g: RegionGraph, taken: np.ndarray, k_left: int, mean: float, lo: float, hi: float
) -> list[tuple[np.ndarray, int, float]] | None:
    """The pieces of _split_rest, or None when they cannot be balanced."""
    pieces, problem = _split_rest(g, taken, k_left, mean, lo, hi)
    return None if problem else pieces


def _between_counts(size: float, mean: float, tolerance: float) -> str:
    """Why no whole number of catchments holds `size` people within the tolerance."""
    fewer = max(1, int(size // mean))
    options = [f"{fewer} would be {size / fewer / mean - 1:+.1%}"]
    options.append(f"{fewer + 1} would be {size / (fewer + 1) / mean - 1:+.1%}")
    return f"{' and '.join(options)} from the mean, both outside ±{tolerance:.1%}"


def plan_services(
    g: RegionGraph, service: np.ndarray, k: int, tolerance: float, alone: list[np.ndarray] = ()
) -> ServicePlan:
    """Decide how each service (code ≥ 0 per area, −1 none) is held; biggest first.

    `alone`: islands that already stand as catchments of their own.
    """
    pop = np.asarray(g.pop)
    mean = pop.sum() / k
    lo, hi = (1 - tolerance) * mean, (1 + tolerance) * mean
    codes = [int(c) for c in np.unique(service[service >= 0])]
    sizes = {c: float(pop[service == c].sum()) for c in codes}
    whole: list[np.ndarray] = []
    own: list[tuple[np.ndarray, int]] = []
    notes = []
    taken = np.zeros(g.n, dtype=bool)
    for rows in alone:
        taken[rows] = True
    for code in sorted(codes, key=lambda c: (-sizes[c], c)):
        rows = np.flatnonzero(service == code)
        size = sizes[code]
        note = {"service": code, "population": size, "catchments": size / mean}
        if size <= hi:
            whole.append(rows)
            notes.append(ServiceNote(**note, wanted="one catchment", reason=""))
            continue
        n = round(size / mean)
        fits = n >= 2 and lo <= size / n <= hi
        reason = ""
        k_left = k - len(alone) - n - _owned(own)
        if not fits:
            reason = _between_counts(size, mean, tolerance)
        elif len(region_components(g, rows)) != 1:
            reason = "the area is not connected"
        elif problem := _split_rest(g, taken | _mask(g.n, rows), k_left, mean, lo, hi)[1]:
            reason = (
                f"the rest of the ICB could not then be split into balanced catchments: {problem}"
            )
        if reason:
            notes.append(ServiceNote(**note, wanted="", reason=reason))
            continue
        taken[rows] = True
        own.append((rows, n))
        notes.append(ServiceNote(**note, wanted=f"{n} catchments inside it", reason=""))
    return ServicePlan(whole, own, notes)


def _owned(own: list[tuple[np.ndarray, int]]) -> int:
    return sum(n for _, n in own)


def _mask(n: int, rows: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[rows] = True
    return out


def _held_whole(sub: RegionGraph, service: np.ndarray, cap: float) -> tuple[np.ndarray, set[int]]:
    """Node per area of `sub`: each connected piece of a service no bigger than cap is one node.

    Returns the nodes and the services left loose (a piece above cap).
    """
    node = np.arange(sub.n)
    pop = np.asarray(sub.pop)
    loose = set()
    for code in np.unique(service[service >= 0]).tolist():
        for rows in region_components(sub, np.flatnonzero(service == code)):
            if pop[rows].sum() <= cap:
                node[rows] = rows.min()
            else:
                loose.add(code)
    return np.unique(node, return_inverse=True)[1], loose


def partition_with_services(
    g: RegionGraph,
    service: np.ndarray,
    k: int,
    *,
    tolerance: float,
    seed: int,
    preset: Preset,
    alone: list[np.ndarray] = (),
) -> tuple[np.ndarray, list[ServiceNote]]:
    """Labels 0..k-1 holding each service whole where it can be; a note per service.

    Each island in `alone` (see standalone_islands) is a catchment of its own,
    labelled first.
    """
    plan = plan_services(g, service, k, tolerance, alone)
    pop = np.asarray(g.pop)
    mean = pop.sum() / k
    lo, hi = (1 - tolerance) * mean, (1 + tolerance) * mean
    labels = np.full(g.n, -1, dtype=np.int64)
    taken = np.zeros(g.n, dtype=bool)
    used = 0
    for rows in alone:
        labels[rows] = used
        taken[rows] = True
        used += 1
    for rows, n in plan.own:
        size = pop[rows].sum() / n
        sub_tol = min(hi / size - 1, 1 - lo / size, tolerance)
        labels[rows] = used + partition_region(
            subgraph(g, rows), n, tolerance=sub_tol, seed=seed, preset=preset
        )
        taken[rows] = True
        used += n
    pieces = (
        _rest_pieces(g, taken, k - used, mean, lo, hi) if used else [(np.arange(g.n), k, tolerance)]
    )
    assert pieces is not None  # plan_services kept only services that leave a balanced rest
    loose: set[int] = set()
    for rows, n, piece_tol in pieces:
        piece_tol = min(piece_tol, tolerance)
        sub = subgraph(g, rows)
        cap = (1 + piece_tol) * pop[rows].sum() / n if n > 1 else np.inf
        node, left = _held_whole(sub, service[rows], cap)
        loose |= left
        coarse = contract(sub, node)
        piece = partition_region(coarse, n, tolerance=piece_tol, seed=seed, preset=preset)
        labels[rows] = used + piece[node]
        used += n
    return labels, [_outcome(note, service, labels, loose) for note in plan.notes]


def standalone_islands(
    g: RegionGraph, bridge: np.ndarray, k: int, tolerance: float
) -> list[np.ndarray]:
    """Islands that stand as catchments of their own (largest first).

    An island is a piece of the region joined to the rest only by bridges
    (edges marked in `bridge`).  It stands alone when it holds at least
    ISLAND_SHARE of a mean catchment and no more than a catchment's upper
    limit, and the rest of the region still splits into balanced catchments
    (Isle of Wight: its own council and trust, rather than "Isle of Wight &
    New Forest" across the Solent).
    """
    if k < 2 or not bridge.any():
        return []
    keep = ~bridge
    graph = coo_matrix((np.ones(int(keep.sum())), (g.a[keep], g.b[keep])), shape=(g.n, g.n))
    _, piece = connected_components(graph, directed=False)
    pop = np.asarray(g.pop)
    piece_pop = np.bincount(piece, weights=pop)
    mean = pop.sum() / k
    lo, hi = (1 - tolerance) * mean, (1 + tolerance) * mean
    mainland = int(np.argmax(piece_pop))
    out: list[np.ndarray] = []
    taken = np.zeros(g.n, dtype=bool)
    for p in sorted(range(len(piece_pop)), key=lambda p: (-piece_pop[p], p)):
        if p == mainland or not ISLAND_SHARE * mean <= piece_pop[p] <= hi:
            continue
        rows = np.flatnonzero(piece == p)
        if _rest_pieces(g, taken | _mask(g.n, rows), k - len(out) - 1, mean, lo, hi) is None:
            continue
        out.append(rows)
        taken[rows] = True
    return out


def _outcome(
    note: ServiceNote, service: np.ndarray, labels: np.ndarray, loose: set[int]
) -> ServiceNote:
    """The note with what the labels did: whole, and why not."""
    inside = service == note.service
    held = np.unique(labels[inside])
    kept = len(held) == 1 or not np.isin(labels[~inside], held).any()
    reason = note.reason
    if not kept and not reason:
        reason = (
            "too big for one catchment of its part of the ICB once the rest is balanced"
            if note.service in loose
            else "the area is not connected"
        )
    return replace(note, kept_whole=bool(kept), reason=reason)
