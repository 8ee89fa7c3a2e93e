"""A whole `Plan` for the synthetic country (tests of exports and compare; not real data).

The LSOAs of `synthetic.synthetic_country` become 1 km squares in a row, so the
catchments, quality report and GeoPackage are built by the real stages.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import shapely
from synthetic import REGIONS, synthetic_country

from planner import catchments, costs, phasing
from planner.adjacency import build_adjacency
from planner.config import Scenario, default_scenario
from planner.plan import Plan


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
    return Plan(s, areas, adjacency, catch, assign, quality, plan, team_costs, national)
