"""A whole `Plan` for the synthetic country (tests of exports and compare; not real data).

The LSOAs of `synthetic.synthetic_country` become 1 km squares in a row, so the
catchments, quality report and GeoPackage are built by the real stages.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
from synthetic import REGIONS, synthetic_country

from planner import catchments, clusters, costs, matching, phasing, tables
from planner.adjacency import build_adjacency
from planner.config import Scenario, default_scenario
from planner.plan import Plan
from planner.provenance import Provenance


def synthetic_plan(
    scenario: Scenario | None = None,
    regions=REGIONS,
    readiness: pd.DataFrame | None = None,
    assignment: pd.DataFrame | None = None,
) -> Plan:
    """The plan of the synthetic country (optionally with another assignment of LSOAs)."""
    s = scenario or default_scenario()
    _, table, default_assignment = synthetic_country(regions)
    assignment = default_assignment if assignment is None else assignment
    n = len(table)
    areas = gpd.GeoDataFrame(
        table.assign(lsoa21nm=[f"{nm} {i:03d}A" for i, nm in enumerate(table["lad24nm"])]),
        geometry=[shapely.box(i * 1000, 0, (i + 1) * 1000, 1000) for i in range(n)],
        crs=27700,
    )
    adjacency = build_adjacency(areas)
    team = areas[["lsoa21cd"]].merge(assignment, on="lsoa21cd", how="left")["team_id"]
    team.index = areas.index
    catch, assign = catchments.catchment_table(areas, adjacency, team)
    quality = catchments.quality_report(catch, areas, team)
    plan = phasing.assign_phasing(catch, areas, assign, readiness, s)
    team_costs = costs.team_year_costs(plan.set_index("team_id")["wave"], s)
    plan = costs.attach_costs(plan, team_costs, s)
    national = costs.national_table(team_costs, s)
    team_clusters = clusters.assign_clusters(catch, assign, adjacency.edges)
    leads = clusters.cluster_table(catch, team_clusters, lead_wte_per_team=0.33)
    plan = plan.merge(team_clusters, on="team_id", how="left")
    return Plan(
        s, areas, adjacency, catch, assign, quality, plan, team_costs, national, leads,
        SYNTHETIC_PROVENANCE,
    )  # fmt: skip


SYNTHETIC_PROVENANCE = Provenance(
    {
        "plan_id": "synthetic0000",
        "planner_version": "test",
        "scenario": {"file": "proposal-2021.toml", "sha256": "0" * 64, "name": "proposal-2021"},
        "readiness": "none",
        "previous": "none",
        "preset": "la_aligned",
        "tolerance": 0.1,
        "seed": 2021,
        "teams": 202,
        "years": ["2022/23", "2023/24", "2024/25", "2025/26"],
        "inputs": {"synthetic": {"file": "-", "sha256": "0" * 64, "vintage": "test"}},
        "defaults": [],
    }
)


def redrawn_assignment() -> pd.DataFrame:
    """The synthetic country redrawn: most ICBs shifted by one LSOA (ids reversed), one scrambled."""
    _, areas, old = synthetic_country()
    rows = []
    for icb, part in areas.merge(old, on="lsoa21cd").groupby("icb24cd", sort=True):
        codes = part.sort_values("lsoa21cd")["lsoa21cd"].tolist()
        prefix = part["team_id"].iloc[0].rpartition("-")[0]
        k = len(codes) // 3
        for i, code in enumerate(codes):
            # Q10 scrambled: every team takes every k-th area; elsewhere shifted by one
            # area and numbered from the other end
            n = i % k if icb == "E54000010" else k - 1 - ((i + 1) // 3) % k
            rows.append((code, f"{prefix}-{n + 1}"))
    return pd.DataFrame(rows, columns=["lsoa21cd", "team_id"]).sort_values("lsoa21cd")


def carried_over(root: Path) -> tuple[Plan, gpd.GeoDataFrame, pd.DataFrame]:
    """The old plan (its exports written to root/old) and the redrawn catchments with the
    old plan's ids carried over: (old plan, catchment table, assignment)."""
    old = synthetic_plan()
    tables.write_plan_exports(root / "old", old, provenance="old")
    redrawn = synthetic_plan(assignment=redrawn_assignment())
    table, assignment = matching.carry_over_ids(
        redrawn.catchments, redrawn.assignment, redrawn.areas, root / "old"
    )
    return old, table, assignment
