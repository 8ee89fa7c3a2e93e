"""Cluster leads on the real plan: groups of 2-4 touching teams, within a region, mostly one ICB."""

from __future__ import annotations

from types import SimpleNamespace

import geopandas as gpd
import networkx as nx
import pandas as pd
import pytest
import shapely
from synthetic import REGIONS, synthetic_country

from planner import clusters
from planner.config import default_scenario
from planner.errors import PlannerError


def borders(plan) -> set[tuple[str, str]]:
    """Pairs of teams whose small areas share an edge, read straight from the adjacency edges."""
    team = plan.assignment["team_id"].astype(str).to_numpy()
    edges = plan.adjacency.edges
    pairs = pd.DataFrame({"u": team[edges["a"]], "v": team[edges["b"]]})
    pairs = pairs[pairs["u"] != pairs["v"]]
    return {tuple(sorted(p)) for p in pairs.itertuples(index=False)}


def check_clusters(plan, catchments, found: pd.DataFrame) -> None:
    """Every team once; 2-4 teams a cluster; connected through shared borders; one region."""
    touching = borders(plan)
    assert sorted(found["team_id"]) == sorted(catchments["team_id"])
    region = dict(zip(catchments["team_id"], catchments["nhser24cd"], strict=True))
    for cluster_id, group in found.groupby("cluster_id"):
        teams = list(group["team_id"])
        assert 2 <= len(teams) <= 4, (cluster_id, teams)
        assert len({region[t] for t in teams}) == 1, cluster_id
        g = nx.Graph()
        g.add_nodes_from(teams)
        g.add_edges_from((u, v) for u in teams for v in teams if (u, v) in touching)
        assert nx.is_connected(g), (cluster_id, teams)


# ----------------------------------------------------------------------------- synthetic country


def line_country(regions=REGIONS):
    """The synthetic country with its small areas on one line per region, 1 km apart.

    Neighbouring areas share a border (so each ICB's teams form a path, and a
    region's two ICBs touch at one point); each team sits at its middle area.
    """
    catchments, areas, assignment = synthetic_country(regions)
    region = areas["nhser24cd"].to_numpy()
    same = region[:-1] == region[1:]
    edges = pd.DataFrame({"a": range(len(areas) - 1), "b": range(1, len(areas))})[same]
    edges = edges.assign(shared_length=100.0).reset_index(drop=True)
    x = pd.Series(range(len(areas)), index=assignment["lsoa21cd"]) * 1000.0
    middle = assignment.groupby("team_id")["lsoa21cd"].agg(lambda c: sorted(c)[len(c) // 2])
    points = [shapely.Point(x[middle[t]], 0.0) for t in catchments["team_id"]]
    return gpd.GeoDataFrame(catchments, geometry=points, crs="EPSG:27700"), assignment, edges


def expected_sizes(k: int) -> list[int]:
    """Threes, with one 4 or one 2 where k is not a multiple of 3 (k >= 2)."""
    return sorted([3] * (k // 3 - 1) + [4] if k % 3 == 1 else [3] * (k // 3) + [2] * (k % 3 == 2))


def test_synthetic_paths_split_into_threes() -> None:
    catchments, assignment, edges = line_country()
    found = clusters.assign_clusters(catchments, assignment, edges)
    table = clusters.cluster_table(catchments, found, lead_wte_per_team=0.33)
    assert not table["icbs"].str.contains(";").any()
    for icb, teams in catchments.groupby("icb24cd")["team_id"]:
        sizes = sorted(table.loc[table["icbs"] == icb, "teams"])
        assert sizes == expected_sizes(len(teams)), icb
    # on a line, a cluster of n neighbours spans (n - 1) × 3 km between team centres
    assert set(table["extent_km"]) <= {3.0, 6.0, 9.0}
    team_ids = table["team_ids"].str.split(";")
    assert all(ids == sorted(ids, key=lambda t: int(t.split("-")[1])) for ids in team_ids)


def test_synthetic_lone_team_crosses_into_the_other_icb() -> None:
    regions = {"E40000003": ("London", 3), "E40000005": ("South East", 5)}
    catchments, assignment, edges = line_country(regions)
    found = clusters.assign_clusters(catchments, assignment, edges)
    table = clusters.cluster_table(catchments, found, lead_wte_per_team=0.33)
    london = table[table["nhser24cd"] == "E40000003"]
    assert list(london["teams"]) == [3] and ";" in london["icbs"].iloc[0]  # ICBs of 1 and 2
    south_east = table[table["nhser24cd"] == "E40000005"]
    assert sorted(south_east["teams"]) == [2, 3] and not south_east["icbs"].str.contains(";").any()
    assert list(table["cluster_id"]) == ["Q00-C1", "Q10-C1", "Q11-C1"]


def line_plan() -> SimpleNamespace:
    """The line country as a plan-like object (assignment and adjacency edges)."""
    _, assignment, edges = line_country()
    return SimpleNamespace(assignment=assignment, adjacency=SimpleNamespace(edges=edges))


# ----------------------------------------------------------------------------- the real plan


@pytest.fixture(scope="module")
def real(national_plan):
    plan = national_plan
    found = clusters.assign_clusters(plan.catchments, plan.assignment, plan.adjacency.edges)
    return plan, found


def test_real_plan_clusters(real) -> None:
    plan, found = real
    check_clusters(plan, plan.catchments, found)
    table = clusters.cluster_table(
        plan.catchments, found, lead_wte_per_team=clusters.lead_wte_per_team(default_scenario())
    )
    assert list(table.columns) == clusters.CLUSTER_COLUMNS
    assert table["teams"].sum() == 202 and table["lead_wte"].sum() == pytest.approx(202 * 0.33)
    assert (table["lead_wte"] == (0.33 * table["teams"]).round(6)).all()
    # every ICB has at least 2 teams here, so no cluster needs to cross an ICB line
    assert not table["icbs"].str.contains(";").any()
    # the numbers force a 4 or a 2 only in ICBs of 2, 4, 5, 7, 10 or 11 teams (17 fours,
    # 10 twos); shapes may force one more of each, never many
    sizes = table["teams"].value_counts()
    assert sizes[3] >= 34 and sizes.get(4, 0) <= 19 and sizes.get(2, 0) <= 12
    assert table["extent_km"].between(0, 150).all() and table["extent_km"].median() < 60
    # a cluster's extent is the largest distance between its catchments' centres
    first = table.iloc[0]
    centres = plan.catchments.set_index("team_id").geometry.centroid
    ids = first["team_ids"].split(";")
    far = max(centres[a].distance(centres[b]) for a in ids for b in ids) / 1000
    assert first["extent_km"] == pytest.approx(far, abs=0.05)


def test_deterministic_whatever_the_row_order(real) -> None:
    plan, found = real
    shuffled = plan.catchments.sample(frac=1, random_state=3)
    again = clusters.assign_clusters(shuffled, plan.assignment, plan.adjacency.edges)
    pd.testing.assert_frame_equal(found, again)
    assert found["cluster_id"].iloc[0].endswith("-C1")


def test_a_lone_team_joins_a_neighbouring_icb(real) -> None:
    """An ICB of one team (here: one of West Yorkshire's split off) must cross an ICB line."""
    plan, _ = real
    catchments = plan.catchments.copy()
    lone = "QWO-1"
    catchments.loc[catchments["team_id"] == lone, "icb24cd"] = "E54999999"
    found = clusters.assign_clusters(catchments, plan.assignment, plan.adjacency.edges)
    check_clusters(plan, catchments, found)
    table = clusters.cluster_table(catchments, found, lead_wte_per_team=0.33)
    crossing = table[table["icbs"].str.contains(";")]
    assert len(crossing) == 1 and lone in crossing["team_ids"].iloc[0].split(";")


def test_edges_must_match_the_assignment() -> None:
    plan = line_plan()
    with pytest.raises(PlannerError, match="beyond the assignment"):
        clusters.team_graph(plan.assignment.iloc[:100], plan.adjacency.edges)
    by_team = plan.assignment.sort_values("team_id", kind="stable")
    with pytest.raises(PlannerError, match="not in the areas table's order"):
        clusters.team_graph(by_team, plan.adjacency.edges)


def test_lead_wte_follows_the_posts() -> None:
    assert clusters.lead_wte_per_team(default_scenario()) == pytest.approx(0.33)
