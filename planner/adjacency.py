"""Contiguity graph of small areas, made connected within every ICB.

Catchments must be contiguous, and contiguity is judged on this graph: queen
contiguity (shared edge or corner) between LSOA polygons, plus explicit bridge
edges wherever an ICB's areas would otherwise fall into separate pieces
(islands such as the Isle of Wight or the Isles of Scilly, estuaries, and gaps
left by generalised boundaries). Bridges are listed so users can see them.

The shared boundary length of every edge is kept so that the partitioner can
update Polsby-Popper scores incrementally instead of dissolving polygons.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from planner.errors import PlannerError

EDGE_COLUMNS = ["a", "b", "shared_length", "kind", "distance"]
BRIDGE_COLUMNS = [
    "icb24cd",
    "icb24nm",
    "lsoa_a",
    "lsoa_a_name",
    "lsoa_b",
    "lsoa_b_name",
    "distance_m",
    "reason",
]


@dataclass(frozen=True)
class Adjacency:
    """Edges between row positions of the areas table, plus per-area measurements.

    `offshore` is each area's land (m²) off the largest landmass: Sheppey,
    Walney or Scilly rather than the mainland (see `offshore_area`).
    """

    edges: pd.DataFrame
    bridges: pd.DataFrame
    area: np.ndarray
    perimeter: np.ndarray
    offshore: np.ndarray

    def subgraph(self, rows: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
        """Edges with both ends in `rows`, renumbered to positions within `rows`."""
        rows = np.asarray(rows)
        local = np.full(len(self.area), -1, dtype=np.int64)
        local[rows] = np.arange(len(rows))
        a = local[self.edges["a"].to_numpy()]
        b = local[self.edges["b"].to_numpy()]
        keep = (a >= 0) & (b >= 0)
        sub = self.edges.loc[keep].copy()
        sub["a"] = a[keep]
        sub["b"] = b[keep]
        return rows, sub.reset_index(drop=True)

    def restrict(self, rows: np.ndarray) -> Adjacency:
        """The graph of just `rows` (e.g. one ICB), renumbered 0..len(rows)-1."""
        rows, edges = self.subgraph(rows)
        return Adjacency(
            edges, self.bridges, self.area[rows], self.perimeter[rows], self.offshore[rows]
        )


def queen_edges(geometry: gpd.GeoSeries) -> pd.DataFrame:
    """Pairs of polygons that touch (edge or corner), with their shared boundary length."""
    geoms = geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    # Measure where the outlines meet, so the tiny polygonal slivers of
    # generalised files (≲ 2 m²) do not add their own perimeter.
    outlines = shapely.boundary(geoms)
    length = shapely.length(shapely.intersection(outlines[a], outlines[b]))
    edges = pd.DataFrame(
        {
            "a": a.astype(np.int64),
            "b": b.astype(np.int64),
            "shared_length": length.astype(float),
            "kind": "queen",
            "distance": 0.0,
        }
    )
    return edges.sort_values(["a", "b"], kind="stable").reset_index(drop=True)


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels


def _bridge_group(
    rows: np.ndarray,
    geoms: np.ndarray,
    edges_a: np.ndarray,
    edges_b: np.ndarray,
    all_edges: pd.DataFrame,
) -> list[tuple[int, int, float, str]]:
    """Bridges that join one ICB's pieces: smallest piece to its nearest other piece, repeatedly."""
    local = {int(r): i for i, r in enumerate(rows)}
    la = np.array([local[int(x)] for x in edges_a], dtype=np.int64)
    lb = np.array([local[int(x)] for x in edges_b], dtype=np.int64)
    bridges: list[tuple[int, int, float, str]] = []
    while True:
        labels = _components(len(rows), la, lb)
        pieces = np.unique(labels)
        if len(pieces) <= 1:
            return bridges
        sizes = np.bincount(labels)
        # Join the smallest piece first (ties: the one holding the lowest row), so
        # islands attach to the mainland rather than to each other.
        smallest = min(pieces, key=lambda p: (sizes[p], int(np.flatnonzero(labels == p)[0])))
        inside = np.flatnonzero(labels == smallest)
        outside = np.flatnonzero(labels != smallest)
        tree = shapely.STRtree(geoms[rows[outside]])
        src, dst = tree.query_nearest(geoms[rows[inside]], return_distance=False, all_matches=False)
        dist = shapely.distance(geoms[rows[inside[src]]], geoms[rows[outside[dst]]])
        best = int(np.lexsort((rows[outside[dst]], rows[inside[src]], dist))[0])
        i, j = int(inside[src[best]]), int(outside[dst[best]])
        reason = "gap between generalised boundaries"
        members = rows[inside]
        a_in = np.isin(all_edges["a"].to_numpy(), members)
        b_in = np.isin(all_edges["b"].to_numpy(), members)
        if not (a_in ^ b_in).any():
            reason = "island"
        elif dist[best] == 0:
            reason = "joined only through another ICB"
        bridges.append((int(rows[i]), int(rows[j]), float(dist[best]), reason))
        la = np.append(la, i)
        lb = np.append(lb, j)


def build_adjacency(areas: gpd.GeoDataFrame, group_column: str = "icb24cd") -> Adjacency:
    """Queen contiguity plus the bridges that make every group (ICB) connected."""
    if areas.crs is None or areas.crs.to_epsg() != 27700:
        raise PlannerError(
            f"areas must be in EPSG:27700 (British National Grid) to measure lengths, got {areas.crs}",
            fix="reproject with areas.to_crs(27700)",
        )
    geoms = areas.geometry.to_numpy()
    edges = queen_edges(areas.geometry)
    groups = areas[group_column].to_numpy()
    same_group = groups[edges["a"].to_numpy()] == groups[edges["b"].to_numpy()]
    inner = edges.loc[same_group]
    bridge_rows: list[tuple[int, int, float, str]] = []
    for code in sorted(pd.unique(groups)):
        rows = np.flatnonzero(groups == code)
        mask = np.isin(inner["a"].to_numpy(), rows)
        bridge_rows.extend(
            _bridge_group(
                rows, geoms, inner["a"].to_numpy()[mask], inner["b"].to_numpy()[mask], edges
            )
        )

    bridges = _bridge_table(areas, bridge_rows)
    if bridge_rows:
        lo = np.array([min(r[0], r[1]) for r in bridge_rows], dtype=np.int64)
        hi = np.array([max(r[0], r[1]) for r in bridge_rows], dtype=np.int64)
        extra = pd.DataFrame(
            {
                "a": lo,
                "b": hi,
                "shared_length": 0.0,
                "kind": "bridge",
                "distance": [r[2] for r in bridge_rows],
            }
        )
        # A bridge may join two areas that already touch across another ICB; the
        # queen edge already exists then, and is simply kept.
        known = set(zip(edges["a"].tolist(), edges["b"].tolist(), strict=True))
        extra = extra.loc[[(x, y) not in known for x, y in zip(lo, hi, strict=True)]]
        edges = pd.concat([edges, extra], ignore_index=True)
        edges = edges.sort_values(["a", "b"], kind="stable").reset_index(drop=True)
    return Adjacency(
        edges=edges[EDGE_COLUMNS],
        bridges=bridges,
        area=shapely.area(geoms).astype(float),
        perimeter=shapely.length(geoms).astype(float),
        offshore=offshore_area(geoms),
    )


def offshore_area(geoms: np.ndarray) -> np.ndarray:
    """Area (m²) of each polygon that lies off the largest landmass of their union.

    Polsby-Popper counts an island's coast as perimeter, so catchments that
    serve an island across water are told apart from ones that are merely
    ragged.  Landmasses are the parts of the union of all areas: water between
    them is wider than the boundaries' generalisation closes, so a river that
    land crosses upstream does not make an island.
    """
    out = np.zeros(len(geoms))
    if len(geoms) == 0:
        return out
    land = shapely.get_parts(shapely.union_all(geoms))
    if len(land) < 2:
        return out
    mainland = int(np.argmax(shapely.area(land)))
    tree = shapely.STRtree(geoms)
    for i, mass in enumerate(land):
        if i == mainland:
            continue
        hits = tree.query(mass, predicate="intersects")
        np.add.at(out, hits, shapely.area(shapely.intersection(geoms[hits], mass)))
    return out


def _bridge_table(
    areas: pd.DataFrame, bridge_rows: list[tuple[int, int, float, str]]
) -> pd.DataFrame:
    records = []
    for i, j, dist, reason in bridge_rows:
        records.append(
            {
                "icb24cd": areas["icb24cd"].iat[i],
                "icb24nm": areas["icb24nm"].iat[i] if "icb24nm" in areas else "",
                "lsoa_a": areas["lsoa21cd"].iat[i],
                "lsoa_a_name": areas["lsoa21nm"].iat[i] if "lsoa21nm" in areas else "",
                "lsoa_b": areas["lsoa21cd"].iat[j],
                "lsoa_b_name": areas["lsoa21nm"].iat[j] if "lsoa21nm" in areas else "",
                "distance_m": round(dist, 1),
                "reason": reason,
            }
        )
    return pd.DataFrame(records, columns=BRIDGE_COLUMNS)


def check_connected(
    areas: pd.DataFrame, adjacency: Adjacency, group_column: str = "icb24cd"
) -> None:
    """Raise if any group's subgraph falls apart (a stale or hand-edited cache)."""
    groups = areas[group_column].to_numpy()
    for code in sorted(pd.unique(groups)):
        rows, sub = adjacency.subgraph(np.flatnonzero(groups == code))
        labels = _components(len(rows), sub["a"].to_numpy(), sub["b"].to_numpy())
        if len(rows) and labels.max() > 0:
            raise PlannerError(
                f"the adjacency graph of {group_column} {code} has {labels.max() + 1} pieces",
                fix="delete data/processed and run `planner prepare` again",
            )
