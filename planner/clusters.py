"""Cluster leads: the teams grouped in threes, each group sharing one band 8c lead.

The proposal's staffing has a cluster lead (0.33 WTE a team) "working across
3 teams". A lead can only work across teams that touch, in one NHS region, and
preferably in one ICB (one commissioner). So each region's teams are split
into connected groups of 3 neighbouring catchments, with a 4 or a 2 only
where the numbers force it (an ICB of 4 or 5 teams), and a group crosses an
ICB boundary only where an ICB cannot be split on its own (an ICB of one team,
or a shape that leaves a team with no partner inside its ICB).

The split is a depth-first search over candidate groups, best first: one ICB
before two, no team left alone in its ICB, 3 teams before 4 or 2, then the
smallest extent (largest distance between catchment centres). The first
complete split found is kept, so the result is deterministic.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from planner.config import Scenario
from planner.errors import PlannerError

CLUSTER_COLUMNS = [
    "cluster_id",
    "nhser24cd",
    "icbs",
    "teams",
    "team_ids",
    "lead_wte",
    "extent_km",
]
IDEAL, SIZES = 3, (3, 4, 2)  # sizes in order of preference
SEARCH_LIMIT = 200_000  # candidate groups tried per region before giving up


# team_id -> {neighbouring team_id: shared border length (m)}; every team is a key.
TeamGraph = dict[str, dict[str, float]]


def team_graph(assignment: pd.DataFrame, edges: pd.DataFrame) -> TeamGraph:
    """Catchments as nodes, an edge where two catchments share a border (or a bridge).

    `edges` a, b are row positions in the areas table, which is sorted by
    lsoa21cd; `assignment` must list the same areas in the same order, so row i
    of assignment is area i. Edge weight: total shared border length (m).
    A plain mapping: the search below only walks neighbours, and a graph
    library would cost every `planner plan` its import.
    """
    codes = assignment["lsoa21cd"].astype(str)
    if not (codes.is_monotonic_increasing and codes.is_unique):
        raise PlannerError(
            "the assignment is not in the areas table's order (sorted by lsoa21cd)",
            field="lsoa21cd",
            fix="pass the assignment sorted by lsoa21cd, as the catchments stage writes it",
        )
    team = assignment["team_id"].astype(str).to_numpy()
    a, b = edges["a"].to_numpy(), edges["b"].to_numpy()
    if len(a) and max(a.max(), b.max()) >= len(team):
        raise PlannerError(
            "adjacency edges refer to areas beyond the assignment",
            field="a/b",
            value=int(max(a.max(), b.max())),
            fix="pass the assignment of the same areas table the edges were built from",
        )
    pairs = pd.DataFrame({"u": team[a], "v": team[b], "length": edges["shared_length"]})
    pairs = pairs[pairs["u"] != pairs["v"]]
    lo = np.minimum(pairs["u"].to_numpy(), pairs["v"].to_numpy())
    hi = np.maximum(pairs["u"].to_numpy(), pairs["v"].to_numpy())
    border = pd.DataFrame({"u": lo, "v": hi, "length": pairs["length"].to_numpy()})
    border = border.groupby(["u", "v"], sort=True)["length"].sum()
    graph: TeamGraph = {t: {} for t in sorted(set(team))}
    for (u, v), length in border.items():
        graph[u][v] = graph[v][u] = float(length)
    return graph


def subgraph(graph: TeamGraph, teams: Iterable[str]) -> TeamGraph:
    """The teams given and the borders among them only."""
    keep = set(teams)
    return {t: {n: w for n, w in graph[t].items() if n in keep} for t in sorted(keep)}


def extent_m(points: list[tuple[float, float]]) -> float:
    """The largest distance between any two points (m; 0 for one point)."""
    return max((math.dist(p, q) for p, q in itertools.combinations(points, 2)), default=0.0)


@dataclass
class _Region:
    """One region's teams while they are being grouped."""

    graph: TeamGraph  # the region's teams, region-internal borders only
    icb: Mapping[str, str]
    centre: Mapping[str, tuple[float, float]]

    def extent(self, group: Iterable[str]) -> float:
        return extent_m([self.centre[t] for t in group])

    def lone(self, teams: Iterable[str], free: set[str]) -> int:
        """How many of `teams` have no neighbour in `free` within their own ICB."""
        return sum(
            1
            for t in teams
            if not any(n in free and self.icb[n] == self.icb[t] for n in self.graph[t])
        )

    def around(self, group: frozenset, free: set[str]) -> set[str]:
        """The free teams next to `group`: the only ones whose options it changes."""
        return {n for t in group for n in self.graph[t] if n in free and n not in group}


def _connected_groups(region: _Region, seed: str, free: set[str], size: int) -> set[frozenset]:
    """Every connected set of `size` free teams containing `seed`."""
    frontier = {frozenset([seed])}
    for _ in range(size - 1):
        grown = set()
        for group in frontier:
            for t in group:
                for n in region.graph[t]:
                    if n in free and n not in group:
                        grown.add(group | {n})
        frontier = grown
    return frontier


def _candidates(region: _Region, seed: str, free: set[str]) -> list[frozenset]:
    """Groups containing `seed`, best first (one ICB, no lone team left, size 3, compact)."""
    ranked = []
    for size in SIZES:
        for group in _connected_groups(region, seed, free, size):
            rest = free - group
            around = region.around(group, free)
            if any(not any(n in rest for n in region.graph[t]) for t in around):
                continue  # it would leave a team with no free neighbour at all
            # teams left alone in their ICB by taking this group, and members alone in it
            lone = (
                region.lone(around, rest)
                - region.lone(around, free)
                - region.lone(group, free)
                + region.lone(group, set(group))
            )
            ranked.append(
                (
                    len({region.icb[t] for t in group}) - 1,
                    lone,
                    SIZES.index(size),
                    round(region.extent(group), 3),
                    sorted(group),
                    group,
                )
            )
    return [r[-1] for r in sorted(ranked, key=lambda r: r[:-1])]


def _seed(region: _Region, free: set[str]) -> str:
    """The next team to group: alone in its ICB first, then the fewest free neighbours."""

    def key(t: str) -> tuple[int, int, str]:
        own = sum(1 for n in region.graph[t] if n in free and region.icb[n] == region.icb[t])
        every = sum(1 for n in region.graph[t] if n in free)
        return (own > 0, every, t)

    return min(free, key=key)


def _split_region(region: _Region) -> list[frozenset]:
    """The region's teams as groups (depth-first, best candidate first)."""
    free = set(region.graph)
    groups: list[frozenset] = []
    # a team that touches no other team in its region can only stand alone
    for t in sorted(free):
        if not region.graph[t]:
            groups.append(frozenset([t]))
    free -= {t for g in groups for t in g}
    tried = 0

    def search(free: set[str]) -> list[frozenset] | None:
        nonlocal tried
        if not free:
            return []
        seed = _seed(region, free)
        for group in _candidates(region, seed, free):
            tried += 1
            if tried > SEARCH_LIMIT:
                return None
            rest = search(free - group)
            if rest is not None:
                return [group, *rest]
        return None

    found = search(free)
    if found is None:
        raise PlannerError(
            "cannot group this region's teams into clusters of 2 to 4 neighbouring teams",
            value=sorted(free)[:5],
            fix="check that the catchments are contiguous (catchment_quality.csv)",
        )
    return groups + found


def assign_clusters(
    catchments: gpd.GeoDataFrame, assignment: pd.DataFrame, edges: pd.DataFrame
) -> pd.DataFrame:
    """team_id -> cluster_id: groups of 3 neighbouring teams (2 or 4 where forced).

    A cluster never crosses an NHS region and stays within one ICB where the
    counts allow. cluster_id is "<ICB short code>-C<n>", the ICB of the
    cluster's first team, numbered in order of first team id. Deterministic.
    """
    graph = team_graph(assignment, edges)
    frame = pd.DataFrame(catchments.drop(columns="geometry")).assign(
        team_id=lambda f: f["team_id"].astype(str)
    )
    centres = catchments.geometry.centroid
    centre = {
        str(t): (float(p.x), float(p.y))
        for t, p in zip(catchments["team_id"], centres, strict=True)
    }
    icb = dict(zip(frame["team_id"], frame["icb24cd"].astype(str), strict=True))
    groups: list[frozenset] = []
    for _, teams in frame.groupby("nhser24cd", sort=True)["team_id"]:
        groups += _split_region(_Region(subgraph(graph, teams), icb, centre))
    rows = []
    numbers: dict[str, int] = {}
    for group in sorted(groups, key=lambda g: _team_order(min(g, key=_team_order))):
        first = min(group, key=_team_order)
        prefix = first.rsplit("-", 1)[0]
        numbers[prefix] = numbers.get(prefix, 0) + 1
        rows += [(t, f"{prefix}-C{numbers[prefix]}") for t in sorted(group, key=_team_order)]
    out = pd.DataFrame(rows, columns=["team_id", "cluster_id"])
    return out.sort_values("team_id", key=_team_keys, kind="stable").reset_index(drop=True)


def _team_order(team_id: str) -> tuple[str, int, str]:
    """QOP-2 before QOP-10: the ICB code, then the team's number."""
    prefix, _, number = team_id.rpartition("-")
    return (prefix, int(number), team_id) if number.isdigit() else (team_id, 0, team_id)


def _team_keys(ids: pd.Series) -> pd.Series:
    return ids.map(_team_order)


def lead_wte_per_team(scenario: Scenario) -> float:
    """WTE of the cluster lead post in one team (0.33 in the proposal; 0 without one)."""
    return math.fsum(p.wte for p in scenario.posts if "cluster lead" in p.role.lower())


def cluster_table(
    catchments: gpd.GeoDataFrame, clusters: pd.DataFrame, *, lead_wte_per_team: float
) -> pd.DataFrame:
    """One row per cluster: region, ICBs, teams, lead WTE (per team × teams) and extent (km).

    extent_km: the largest distance between the centres (centroids) of its
    catchments, in km (British National Grid metres / 1000).
    """
    centres = catchments.geometry.centroid
    info = pd.DataFrame(
        {
            "team_id": catchments["team_id"].astype(str).to_numpy(),
            "nhser24cd": catchments["nhser24cd"].astype(str).to_numpy(),
            "icb24cd": catchments["icb24cd"].astype(str).to_numpy(),
            "x": centres.x.to_numpy(),
            "y": centres.y.to_numpy(),
        }
    ).merge(clusters, on="team_id", validate="1:1")
    rows = []
    for cluster_id, g in info.groupby("cluster_id", sort=False):
        extent = extent_m(list(zip(g["x"], g["y"], strict=True)))
        teams = sorted(g["team_id"], key=_team_order)
        rows.append(
            (
                cluster_id,
                ";".join(sorted(set(g["nhser24cd"]))),
                ";".join(sorted(set(g["icb24cd"]))),
                len(teams),
                ";".join(teams),
                round(lead_wte_per_team * len(teams), 6),
                round(extent / 1000, 1),
            )
        )
    out = pd.DataFrame(rows, columns=CLUSTER_COLUMNS)
    return out.sort_values("cluster_id", key=lambda s: s.map(_cluster_order)).reset_index(drop=True)


def _cluster_order(cluster_id: str) -> tuple[str, int]:
    prefix, _, number = cluster_id.rpartition("-C")
    return (prefix, int(number)) if number.isdigit() else (cluster_id, 0)
