"""The maps' inputs, checked: plan, LSOA coverage and assignment joined in `MapModel`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner.config import year_suffix
from planner.costs import OPERATING, STARTING
from planner.errors import PlannerError
from planner.maps.geometry import box_wgs84, clean_coverage, dissolve_to, geometry_texts, to_web
from planner.maps.text import pounds

PLAN_COLUMNS = (
    "team_id",
    "name",
    "icb24cd",
    "icb24nm",
    "nhser24cd",
    "nhser24nm",
    "lads",
    "population",
    "under3",
    "wave",
    "operating_from",
    "full_from",
    "readiness",
    "readiness_note",
    "need_score",
    "priority_rank",
    "rationale",
)
#: Shown in the details panel when the plan has them (not required yet).
OPTIONAL_COLUMNS = (
    "wte",
    "annual_staff_cost",
    "babies_per_1000_under1",
    "cluster_id",
    "wave_basis",
    "region_rank",
)
AREA_COLUMNS = ("lsoa21cd", "lsoa21nm", "lad24cd", "lad24nm", "icb24cd", "nhser24cd", "under3")
_CODE = re.compile(r"^[A-Za-z0-9]+$")


@dataclass(frozen=True)
class IcbLayers:
    """One ICB's layers, simplified at one tolerance (EPSG:27700 unless said).

    lsoa: the ICB's LSOAs; lsoa_text: each one's WGS84 GeoJSON geometry text;
    teams: the plan's teams with their catchments; lads: local authority parts.
    """

    lsoa: gpd.GeoDataFrame
    lsoa_text: np.ndarray
    teams: gpd.GeoDataFrame
    lads: gpd.GeoDataFrame


@dataclass
class MapModel:
    """Validated inputs plus the cleaned LSOA coverage shared by every page."""

    plan: pd.DataFrame
    lsoa: gpd.GeoDataFrame  # areas + team_id, cleaned coverage, EPSG:27700
    years: list[str]
    vintage: str
    lsoa_boxes: pd.DataFrame  # each LSOA's WGS84 bounding box (s, w, n, e), same index
    names: dict[str, dict[str, str]]  # "icb"/"region"/"icb_region" -> code -> value
    rows: dict[str, dict[str, Any]]  # team_id -> the plan's row as plain values, figures as shown
    cluster_sizes: dict[str, int]  # cluster_id -> its number of teams (empty: no clusters)
    _catchment_cache: dict[float, gpd.GeoDataFrame] = field(default_factory=dict)

    @classmethod
    def build(cls, plan, areas, assignment, years, vintage, team_figures=None) -> MapModel:
        _require(plan, PLAN_COLUMNS, "plan")
        money = [f"cost_{year_suffix(y)}" for y in years] + [
            f"babies_{year_suffix(y)}" for y in years
        ]
        _require(plan, money, "plan")
        _require(areas, AREA_COLUMNS, "areas")
        _require(assignment, ("lsoa21cd", "team_id"), "assignment")
        if not years:
            raise PlannerError("no scenario years given to write_maps", field="years")
        plan = pd.DataFrame(plan.drop(columns="geometry", errors="ignore")).copy()
        plan["team_id"] = plan["team_id"].astype(str)
        if plan["team_id"].duplicated().any():
            dup = sorted(plan.loc[plan["team_id"].duplicated(), "team_id"])[:5]
            raise PlannerError("team ids repeat in the plan", field="team_id", value=dup)
        for col, label in (("icb24cd", "ICB"), ("nhser24cd", "NHS region")):
            bad = sorted({c for c in plan[col].astype(str) if not _CODE.match(c)})
            if bad:
                raise PlannerError(
                    f"{label} codes must be letters and digits (used as file names)",
                    field=col,
                    value=bad[:5],
                )
        if areas.crs is None or areas.crs.to_epsg() != 27700:
            raise PlannerError(
                "areas must be in EPSG:27700", field="geometry", value=str(areas.crs)
            )
        lsoa = areas[[*AREA_COLUMNS, "geometry"]].copy()
        lsoa["lsoa21cd"] = lsoa["lsoa21cd"].astype(str)
        amap = assignment.assign(
            lsoa21cd=assignment["lsoa21cd"].astype(str), team_id=assignment["team_id"].astype(str)
        )
        if amap["lsoa21cd"].duplicated().any():
            raise PlannerError(
                "an LSOA is assigned twice",
                field="lsoa21cd",
                value=sorted(amap.loc[amap["lsoa21cd"].duplicated(), "lsoa21cd"])[:5],
            )
        lsoa = lsoa.merge(amap[["lsoa21cd", "team_id"]], on="lsoa21cd", how="left")
        missing = lsoa.loc[lsoa["team_id"].isna(), "lsoa21cd"]
        if len(missing):
            raise PlannerError(
                f"{len(missing)} LSOAs have no team in the assignment",
                field="lsoa21cd",
                value=sorted(missing)[:5],
            )
        unknown = sorted(set(lsoa["team_id"]) - set(plan["team_id"]))
        empty = sorted(set(plan["team_id"]) - set(lsoa["team_id"]))
        if unknown or empty:
            raise PlannerError(
                "assignment and plan disagree on teams",
                field="team_id",
                value={"not in plan": unknown[:5], "no LSOAs": empty[:5]},
            )
        lsoa = lsoa.sort_values("lsoa21cd", kind="stable").reset_index(drop=True)
        geoms = clean_coverage(shapely.make_valid(lsoa.geometry.values))
        lsoa = gpd.GeoDataFrame(lsoa.drop(columns="geometry"), geometry=geoms, crs=27700)
        plan = plan.sort_values(["priority_rank", "team_id"], kind="stable").reset_index(drop=True)
        firsts = plan.drop_duplicates("icb24cd")
        names = {
            "icb": dict(
                zip(firsts["icb24cd"].astype(str), firsts["icb24nm"].astype(str), strict=True)
            ),
            "icb_region": dict(
                zip(firsts["icb24cd"].astype(str), firsts["nhser24cd"].astype(str), strict=True)
            ),
            "region": dict(
                zip(plan["nhser24cd"].astype(str), plan["nhser24nm"].astype(str), strict=True)
            ),
        }
        return cls(
            plan=plan,
            lsoa=lsoa,
            years=list(years),
            vintage=vintage,
            lsoa_boxes=box_wgs84(lsoa),
            names=names,
            rows=_shown_rows(plan, list(years), team_figures),
            cluster_sizes=(
                {
                    str(k): int(v)
                    for k, v in plan["cluster_id"].dropna().astype(str).value_counts().items()
                }
                if "cluster_id" in plan.columns
                else {}
            ),
        )

    @property
    def region_codes(self) -> list[str]:
        return sorted(self.plan["nhser24cd"].astype(str).unique())

    @property
    def icb_codes(self) -> list[str]:
        return sorted(self.plan["icb24cd"].astype(str).unique())

    def region_name(self, code: str) -> str:
        return self.names["region"][code]

    def icb_name(self, code: str) -> str:
        return self.names["icb"][code]

    def icb_region(self, code: str) -> str:
        return self.names["icb_region"][code]

    def catchments(self, tolerance: float) -> gpd.GeoDataFrame:
        """National catchment coverage simplified at `tolerance` (27700), cached."""
        if tolerance not in self._catchment_cache:
            polys = dissolve_to(self.lsoa, "team_id")
            polys = polys.assign(
                geometry=shapely.coverage_simplify(polys.geometry.values, tolerance)
            )
            merged = self.plan.merge(polys, on="team_id", how="left")
            self._catchment_cache[tolerance] = gpd.GeoDataFrame(
                merged, geometry="geometry", crs=27700
            )
        return self._catchment_cache[tolerance]

    def lad_shapes(self, tolerance: float) -> gpd.GeoDataFrame:
        """Local authority districts (lad24cd order) simplified at `tolerance`, cached."""
        key = -tolerance  # shares the cache with catchments(), keyed apart by sign
        if key not in self._catchment_cache:
            lads = dissolve_to(self.lsoa, "lad24cd")
            lads = lads.assign(geometry=shapely.coverage_simplify(lads.geometry.values, tolerance))
            self._catchment_cache[key] = lads
        return self._catchment_cache[key]

    def icb_layers(self, code: str, tolerance: float, decimals: int) -> IcbLayers:
        """One ICB's LSOAs simplified together (per ICB: coverage_simplify is superlinear)."""
        lsoa = self.lsoa[(self.lsoa["icb24cd"] == code).to_numpy()].reset_index(drop=True)
        lsoa = lsoa.assign(geometry=shapely.coverage_simplify(lsoa.geometry.values, tolerance))
        teams = self.plan[self.plan["icb24cd"] == code]
        teams = teams.merge(dissolve_to(lsoa, "team_id"), on="team_id", how="inner")
        lads = dissolve_to(lsoa, "lad24cd").merge(
            lsoa[["lad24cd", "lad24nm"]].drop_duplicates("lad24cd"), on="lad24cd"
        )
        return IcbLayers(
            lsoa=lsoa,
            lsoa_text=geometry_texts(to_web(lsoa.geometry.values, decimals)),
            teams=gpd.GeoDataFrame(teams, geometry="geometry", crs=27700),
            lads=lads,
        )

    def year_index(self, label: Any) -> int | None:
        label = str(label)
        return self.years.index(label) if label in self.years else None


def _shown_rows(
    plan: pd.DataFrame, years: list[str], figures: pd.DataFrame | None
) -> dict[str, dict[str, Any]]:
    """Plan rows as plain values, with cost_/babies_<year> as whole numbers as shown.

    `figures` (team_id, year, cost, babies, and status when recorded) are the
    exports' shown figures (tables.shown_tables(plan)["team"]), so the pages'
    tables and CSVs equal teams.csv and costs_by_year.csv; without them each
    figure is rounded half-up on its own.  Adds status_<year> to every row.
    """
    rows = {str(r["team_id"]): r for r in plan.to_dict("records")}
    shown = None
    if figures is not None:
        _require(figures, ("team_id", "year", "cost", "babies"), "team figures")
        shown = figures.assign(
            team_id=figures["team_id"].astype(str), year=figures["year"].astype(str)
        )
        shown = shown.drop_duplicates(["team_id", "year"]).set_index(["team_id", "year"])
        missing = [(t, y) for t in rows for y in years if (t, y) not in shown.index]
        if missing:
            raise PlannerError(
                "team figures lack some teams or years",
                field="team_id",
                value=missing[:5],
                fix="pass tables.shown_tables(plan)['team']",
            )
    with_status = shown is not None and "status" in shown.columns
    for tid, row in rows.items():
        for year in years:
            for value in ("cost", "babies"):
                col = f"{value}_{year_suffix(year)}"
                row[col] = (
                    int(shown.at[(tid, year), value]) if shown is not None else pounds(row[col])
                )
            row[f"status_{year_suffix(year)}"] = (
                str(shown.at[(tid, year), "status"]) if with_status else _status(row, year, years)
            )
    return rows


def _status(row: dict[str, Any], year: str, years: list[str]) -> str:
    """A team's costing status in `year` from its start years ("" before it starts).

    Used only without the exports' team figures (which carry the status the
    costs gave each team, also under wave_one_without_service = "new").
    """
    start, full = str(row["operating_from"]), str(row["full_from"])
    if start not in years or years.index(year) < years.index(start):
        return ""
    return STARTING if year == start and full != start else OPERATING


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PlannerError(
            f"{what} lacks columns needed for the maps",
            field=missing[0],
            value=missing,
            fix=f"add {', '.join(missing)} to the {what}",
        )
