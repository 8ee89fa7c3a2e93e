"""The plan: everything the exports and maps are made from, as one object."""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd

from planner import config
from planner.adjacency import Adjacency
from planner.provenance import Provenance


@dataclass(frozen=True)
class Plan:
    """Everything the exports and maps are made from."""

    scenario: config.Scenario
    areas: gpd.GeoDataFrame
    adjacency: Adjacency
    catchments: gpd.GeoDataFrame
    assignment: pd.DataFrame
    icb_quality: pd.DataFrame
    plan: pd.DataFrame
    team_costs: pd.DataFrame
    national: pd.DataFrame
    clusters: pd.DataFrame
    provenance: Provenance
    # islands standing as catchments of their own (icb24cd, team_id, population, share)
    islands: pd.DataFrame = field(default_factory=pd.DataFrame)
