"""Cluster leads on the real plan: groups of 2-4 touching teams, within a region, mostly one ICB."""

from __future__ import annotations

import networkx as nx
import pandas as pd
import pytest

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


def test_edges_must_match_the_assignment(real) -> None:
    plan, _ = real
    with pytest.raises(PlannerError, match="beyond the assignment"):
        clusters.team_graph(plan.assignment.iloc[:100], plan.adjacency.edges)


def test_lead_wte_follows_the_posts() -> None:
    assert clusters.lead_wte_per_team(default_scenario()) == pytest.approx(0.33)
