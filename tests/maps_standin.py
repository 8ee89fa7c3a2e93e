"""STAND-IN plan for the map tests and benchmark -- not the real planner pipeline.

Until planner.areas / partition / phasing / costs are wired together, the map
code is exercised with real geography and a fake plan:

* areas: read straight from the open-data mirror (LSOA BSC boundaries, the
  master lookup, Census 2021 population; under-3s shared from MSOA to LSOA by
  population, IMD decile);
* catchments: one per (ICB, local authority) piece, dissolved from LSOAs;
* plan columns (wave, rank, readiness, costs, babies): filled deterministically
  from under-3 counts and the proposal's cost formula.

Replace `standin_inputs` with the real pipeline's products when they exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

YEARS = ["2022/23", "2023/24", "2024/25", "2025/26"]
VINTAGE = ("STAND-IN plan on Census 2021 population, LSOA 2021 BSC boundaries, "
           "ICB/LAD April 2024 lookups")  # fmt: skip
SALARY = 0.33 * 63_751 + 53_168 + 2 * 40_894 + 33_176 + 0.8 * 24_157


@cache
def _national_areas(mirror: str) -> gpd.GeoDataFrame:
    m = Path(mirror)
    geo = gpd.read_file(m / "boundaries/lsoa21_bsc_england.gpkg")
    lk = pd.read_csv(m / "lookups/lsoa21_msoa21_wd24_lad24_rgn24_sicbl24_icb24_nhser24_england.csv",
                     dtype=str)  # fmt: skip
    pop = pd.read_csv(m / "population/census2021_ts001_usual_residents_lsoa21_england.csv",
                      dtype={"LSOA21CD": str})  # fmt: skip
    kids = pd.read_csv(m / "population/census2021_ts007_age_0_to_4_by_single_year_msoa21_england.csv",
                       dtype={"MSOA21CD": str})  # fmt: skip
    imd = pd.read_csv(
        m / "deprivation/imd2025_lsoa21_england.csv", usecols=["LSOA21CD", "IMD_decile"]
    )
    df = lk.merge(pop[["LSOA21CD", "usual_residents_total"]], on="LSOA21CD").merge(
        imd, on="LSOA21CD", how="left"
    )
    msoa_pop = df.groupby("MSOA21CD")["usual_residents_total"].transform("sum")
    df = df.merge(kids[["MSOA21CD", "age_0_2"]], on="MSOA21CD", how="left")
    df["under3"] = df["age_0_2"].astype(float) * df["usual_residents_total"] / msoa_pop
    areas = pd.DataFrame({
        "lsoa21cd": df["LSOA21CD"], "lsoa21nm": df["LSOA21NM"], "msoa21cd": df["MSOA21CD"],
        "lad24cd": df["LAD24CD"], "lad24nm": df["LAD24NM"], "sicbl24cd": df["SICBL24CD"],
        "icb24cd": df["ICB24CD"], "icb24cdh": df["ICB24CDH"], "icb24nm": df["ICB24NM"],
        "nhser24cd": df["NHSER24CD"], "nhser24nm": df["NHSER24NM"],
        "population": df["usual_residents_total"].astype(int), "under3": df["under3"],
        "imd_decile": df["IMD_decile"].fillna(5).astype(int),
    })  # fmt: skip
    out = areas.merge(geo[["LSOA21CD", "geometry"]].rename(columns={"LSOA21CD": "lsoa21cd"}),
                      on="lsoa21cd")  # fmt: skip
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=geo.crs)
    return out.sort_values("lsoa21cd").reset_index(drop=True)


def standin_inputs(mirror: Path, icbs: Iterable[str] | None = None):
    """(plan, areas, assignment) for the whole of England or only the given ICB codes."""
    areas = _national_areas(str(mirror))
    if icbs is not None:
        areas = areas[areas["icb24cd"].isin(list(icbs))].reset_index(drop=True)
    key = areas["icb24cd"] + "|" + areas["lad24cd"]
    groups = (areas.assign(key=key).groupby("key", sort=True)
              .agg(icb24cd=("icb24cd", "first"), icb24cdh=("icb24cdh", "first"),
                   icb24nm=("icb24nm", "first"), nhser24cd=("nhser24cd", "first"),
                   nhser24nm=("nhser24nm", "first"), lad24nm=("lad24nm", "first"),
                   population=("population", "sum"), under3=("under3", "sum"),
                   lsoa_count=("lsoa21cd", "size"))
              .reset_index())  # fmt: skip
    groups["n"] = groups.groupby("icb24cd").cumcount() + 1
    groups["team_id"] = groups["icb24cdh"] + "-" + groups["n"].astype(str)
    groups["name"] = groups["lad24nm"]
    groups["lads"] = groups["lad24nm"] + " 100%"
    assignment = pd.DataFrame({"lsoa21cd": areas["lsoa21cd"],
                               "team_id": key.map(groups.set_index("key")["team_id"])})  # fmt: skip

    plan = groups.sort_values(["under3", "team_id"], ascending=[False, True]).reset_index(drop=True)
    n = len(plan)
    plan["priority_rank"] = np.arange(1, n + 1)
    cuts = np.cumsum([40, 40, 55, 67]) / 202 * n
    plan["wave"] = 1 + np.searchsorted(cuts, plan["priority_rank"] - 0.5, side="right")
    plan["wave"] = plan["wave"].clip(upper=4).astype(int)
    start = {1: 0, 2: 0, 3: 1, 4: 2}
    plan["operating_from"] = [YEARS[start[w]] for w in plan["wave"]]
    plan["full_from"] = [YEARS[start[w] + (0 if w == 1 else 1)] for w in plan["wave"]]
    plan["readiness"] = np.where(plan["wave"] == 1, "operating", "none")
    plan["readiness_note"] = ""
    plan["need_score"] = (plan["under3"] / 1000).round(3)
    plan["rationale"] = [f"stand-in: rank {r} by under-3s ({u:,.0f})"
                         for r, u in zip(plan["priority_rank"], plan["under3"], strict=True)]  # fmt: skip
    plan["deviation_pct"] = 0.0
    plan["polsby_popper"] = 0.0
    for t, year in enumerate(YEARS):
        unit = SALARY * 1.14 * 1.03**t
        s = pd.Series([YEARS.index(v) for v in plan["operating_from"]])
        f = pd.Series([YEARS.index(v) for v in plan["full_from"]])
        full = (f <= t).to_numpy()
        first = ((s == t) & (f > t)).to_numpy()
        after_first = ((s == t - 1) & (plan["wave"] > 1)).to_numpy()
        plan[f"cost_{year.replace('/', '_')}"] = (
            np.where(full, unit, 0.0) + np.where(first, 0.5 * unit + 11_077.5, 0.0)
            + np.where(after_first, 4_987.5, 0.0))  # fmt: skip
        plan[f"babies_{year.replace('/', '_')}"] = np.where(full, 150, np.where(first, 50, 0))
    plan = plan.drop(columns=["key", "n", "icb24cdh", "lad24nm"])
    return plan, areas, assignment
