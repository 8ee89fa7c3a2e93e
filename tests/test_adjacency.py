"""Contiguity on the real LSOAs, and bridges on small made-up coverages."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from planner.adjacency import build_adjacency, check_connected
from planner.errors import PlannerError


def _squares(cells: list[tuple[int, int, str]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "lsoa21cd": [f"E0100{i:04d}" for i in range(len(cells))],
            "lsoa21nm": [f"area {i}" for i in range(len(cells))],
            "icb24cd": [icb for _, _, icb in cells],
            "icb24nm": [f"ICB {icb}" for _, _, icb in cells],
        },
        geometry=[shapely.box(x * 100, y * 100, x * 100 + 100, y * 100 + 100) for x, y, _ in cells],
        crs=27700,
    )


def test_queen_edges_and_shared_lengths():
    grid = _squares([(x, y, "A") for y in range(2) for x in range(2)])
    adj = build_adjacency(grid)
    pairs = {
        (a, b): length
        for a, b, length in adj.edges[["a", "b", "shared_length"]].itertuples(index=False)
    }
    assert pairs == {
        (0, 1): 100.0,
        (0, 2): 100.0,
        (0, 3): 0.0,
        (1, 2): 0.0,
        (1, 3): 100.0,
        (2, 3): 100.0,
    }
    assert adj.bridges.empty
    assert np.allclose(adj.area, 10_000) and np.allclose(adj.perimeter, 400)


def test_island_gets_one_bridge_to_its_nearest_area():
    cells = [(0, 0, "A"), (1, 0, "A"), (5, 0, "A"), (1, 1, "B")]
    adj = build_adjacency(_squares(cells))
    assert len(adj.bridges) == 1
    bridge = adj.bridges.iloc[0]
    assert (bridge.lsoa_a, bridge.lsoa_b, bridge.reason) == ("E01000002", "E01000001", "island")
    assert bridge.distance_m == pytest.approx(300)
    kinds = adj.edges.set_index(["a", "b"])["kind"]
    assert kinds[(1, 2)] == "bridge"


def test_offshore_area_is_land_off_the_largest_landmass():
    # A 3 x 2 mainland, an island square 300 m out, and a mainland square that owns a
    # 20 x 20 m islet off the coast (like Looe Island in a Looe LSOA).
    frame = _squares([(x, y, "A") for y in range(2) for x in range(3)] + [(6, 0, "A")])
    islet = shapely.box(0, -150, 20, -130)
    frame.loc[0, "geometry"] = shapely.MultiPolygon([frame.geometry[0], islet])
    adj = build_adjacency(frame)
    assert adj.offshore[6] == pytest.approx(10_000)  # all of the island square
    assert adj.offshore[0] == pytest.approx(400)  # just the islet
    assert np.allclose(adj.offshore[1:6], 0)


def test_piece_joined_only_through_another_icb():
    # A's two squares touch only through B's square between them.
    cells = [(0, 0, "A"), (1, 0, "B"), (2, 0, "A")]
    adj = build_adjacency(_squares(cells))
    assert adj.bridges["reason"].tolist() == ["gap between generalised boundaries"]
    check_connected(_squares(cells), adj)


def test_wrong_crs_refused():
    with pytest.raises(PlannerError, match="EPSG:27700"):
        build_adjacency(_squares([(0, 0, "A")]).to_crs(4326))


def test_every_real_icb_is_connected_and_islands_are_listed(prepared):
    _, areas, adjacency = prepared
    check_connected(areas, adjacency)
    names = set(adjacency.bridges["lsoa_a_name"]) | set(adjacency.bridges["lsoa_b_name"])
    assert "Isles of Scilly 001A" in names
    assert any(name.startswith("Isle of Wight") for name in names)
    assert (adjacency.bridges["distance_m"] > 0).all()
    queen = adjacency.edges[adjacency.edges["kind"] == "queen"]
    assert len(queen) > 90_000
    assert (queen["a"] < queen["b"]).all()
    # shared lengths never exceed either polygon's perimeter
    assert (queen["shared_length"] <= adjacency.perimeter[queen["a"]] + 1e-6).all()
    # islands: every Isle of Wight and Sheppey (Swale 001-003) LSOA lies off the mainland
    on_island = adjacency.offshore >= 0.5 * adjacency.area
    names = areas["lsoa21nm"].str
    assert on_island[names.startswith("Isle of Wight").to_numpy()].all()
    assert on_island[names.match(r"Swale 00[1-3]").to_numpy()].all()
    assert not on_island[names.startswith("Leeds").to_numpy()].any()
