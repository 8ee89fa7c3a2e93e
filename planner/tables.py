"""Per-area cost and capacity tables, and `write_plan_exports`: every file in exports/.

Building is pure (the plan in, DataFrames out) so it can be checked before
anything touches the disk. Figures add up as shown: England's money and
babies per year are rounded half-up (the proposal's rule) and then shared out
in whole units by largest remainder — among the NHS regions, each region's
among its ICBs, each ICB's among its teams, and England's among the districts
— so every column of shown cells sums to its shown total. The unrounded
figures are kept in costs_exact.csv. A team's costs split over districts by
population, its babies by under-3s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from planner import costs, exports
from planner.catchments import team_sort_key
from planner.config import Scenario, year_suffix
from planner.plan import Plan

LICENCE = exports.LICENCE
LEVELS = {
    # table name -> (area code column, area name column) in `areas`
    "icb": ("icb24cd", "icb24nm"),
    "lad": ("lad24cd", "lad24nm"),
    "region": ("nhser24cd", "nhser24nm"),
}
ENGLAND = ("E92000001", "England")
TEAM_COUNTS = ["teams_total", "teams_operating", "teams_starting"]
LAD_SHARES = ["team_shares_total", "team_shares_operating", "team_shares_starting"]
FIGURES = ["labour", "training", "cost", "babies"]
AREA_COLUMNS = [
    "area_code",
    "area_name",
    "year",
    *TEAM_COUNTS,
    *FIGURES,
    "population",
    "under3",
    "babies_per_1000_under3",
    "population_per_team",
]
LAD_COLUMNS = [LAD_SHARES[TEAM_COUNTS.index(c)] if c in TEAM_COUNTS else c for c in AREA_COLUMNS]
EXACT_COLUMNS = ["level", "area_code", "area_name", "year", *TEAM_COUNTS, *FIGURES, "under3"]
# Shown in whole units by largest remainder; cost shown = labour shown + training shown.
WHOLE = ["labour", "training", "babies"]
PRIORITY_COLUMNS = [
    "rank",
    "national_rank",
    "team_id",
    "name",
    "icb24nm",
    "nhser24cd",
    "nhser24nm",
    "readiness",
    "wave_basis",
    "need_score",
    "wave",
    "confirm",
    "rationale",
]
TO_CONFIRM = "to confirm"
#: costs_by_year.csv: England and each NHS region per year, summed from the teams as shown.
YEAR_COLUMNS = [
    "level",
    "area_code",
    "area_name",
    "year",
    "teams_operating",
    "teams_starting",
    "cost",
    "babies",
]


# ----------------------------------------------------------------------------- rounding


def largest_remainder(exact: Sequence[float], total: int) -> np.ndarray:
    """Whole numbers close to `exact` that sum to `total` (Hamilton's method).

    Each value is floored, then the units still missing go to the largest
    remainders (ties: the earlier row), or, if the floors overshoot, are taken
    from the smallest.
    """
    values = np.asarray(exact, dtype=float)
    floors = np.floor(values)
    remainder = values - floors
    out = floors.astype(np.int64)
    missing = int(total) - int(out.sum())
    order = np.argsort(-remainder, kind="stable")
    if missing > 0:
        out[order[:missing]] += 1
    elif missing < 0:
        out[order[::-1][:-missing]] -= 1
    return out


def share_out(
    exact: pd.DataFrame, totals: pd.DataFrame, *, keys: list[str], columns: Iterable[str]
) -> pd.DataFrame:
    """`exact` with `columns` in whole units summing, per group of `keys`, to `totals`.

    `totals` is indexed by `keys`. Rows keep their order (ties go to the
    earlier row, so sort `exact` by code first).
    """
    out = exact.copy()
    groups = exact.groupby(keys, sort=True).indices
    for col in columns:
        shown = np.zeros(len(exact), dtype=np.int64)
        values = exact[col].to_numpy(dtype=float)
        wanted = totals[col].to_dict()  # `.at` per group rebuilt the index view each time
        for key, rows in groups.items():
            shown[rows] = largest_remainder(values[rows], int(wanted[key]))
        out[col] = shown
    return out


def england_totals(team_year: pd.DataFrame, years: Sequence[str]) -> pd.DataFrame:
    """England's labour, training and babies per year in whole units (index: year).

    Cost, training and babies are their unrounded sums rounded half-up, as in
    national.csv; labour is cost less training, so England's cost shown here is
    national.csv's Total less the development programme.
    """
    rows = {}
    for year in years:
        part = team_year[team_year["year"] == year]
        whole = {c: costs.round_half_up(math.fsum(part[c])) or 0 for c in (*WHOLE, "cost")}
        rows[year] = {**whole, "labour": whole["cost"] - whole["training"]}
    return pd.DataFrame.from_dict(rows, orient="index")[WHOLE].rename_axis("year")


# ----------------------------------------------------------------------------- exact tables


def area_shares(
    plan: pd.DataFrame,
    areas: pd.DataFrame,
    assignment: pd.DataFrame,
    level: str,
    *,
    base: str = "population",
) -> pd.DataFrame:
    """team_id, area_code, share: how each team splits over `level` areas, by `base`.

    Catchments nest in ICBs and regions (share 1); a catchment spanning
    several districts is split by its `base` (population or under3) in each.
    """
    code, _ = LEVELS[level]
    if level in ("icb", "region") and code in plan.columns:
        return pd.DataFrame(
            {
                "team_id": plan["team_id"].astype(str),
                "area_code": plan[code].astype(str),
                "share": 1.0,
            }
        )
    lsoa = assignment[["lsoa21cd", "team_id"]].merge(
        areas[["lsoa21cd", code, base]], on="lsoa21cd", how="left", validate="1:1"
    )
    lsoa["team_id"] = lsoa["team_id"].astype(str)
    part = lsoa.groupby(["team_id", code], sort=True)[base].sum().reset_index()
    total = part.groupby("team_id")[base].transform("sum")
    return pd.DataFrame(
        {
            "team_id": part["team_id"],
            "area_code": part[code].astype(str),
            "share": (part[base] / total).astype("float64"),
        }
    )


def area_table(
    plan: pd.DataFrame,
    team_costs: pd.DataFrame,
    areas: pd.DataFrame,
    assignment: pd.DataFrame,
    level: str,
    years: Sequence[str],
) -> pd.DataFrame:
    """Unrounded costs and capacity by area and year (sorted by area code, then year).

    Money and team counts split by population; babies by under-3s. Summed over
    areas they equal the national figures less the development programme.
    """
    code, name = LEVELS[level]
    by_people = area_shares(plan, areas, assignment, level)
    by_children = area_shares(plan, areas, assignment, level, base="under3")
    money = costs.aggregate(team_costs, by_people).drop(columns="babies")
    babies = costs.aggregate(team_costs, by_children)[["area_code", "year", "babies"]]
    info = (
        pd.DataFrame(areas[[code, name, "population", "under3"]])
        .groupby([code, name], sort=True)[["population", "under3"]]
        .sum()
        .reset_index()
        .rename(columns={code: "area_code", name: "area_name"})
        .astype({"area_code": str, "area_name": str})
    )
    teams = by_people.groupby("area_code")["share"].sum().rename("teams_total").reset_index()
    info = info.merge(teams, on="area_code", how="left")
    info["teams_total"] = info["teams_total"].fillna(0.0)
    grid = info.merge(pd.DataFrame({"year": list(years)}), how="cross")
    out = grid.merge(money, on=["area_code", "year"], how="left").merge(
        babies, on=["area_code", "year"], how="left"
    )
    value_cols = ["teams_operating", "teams_starting", "labour", "training", "cost", "babies"]
    if "wte" in plan.columns:
        out = out.merge(area_wte(team_costs, by_people), on=["area_code", "year"], how="left")
        value_cols.append("wte")
    out[value_cols] = out[value_cols].fillna(0.0)
    out["population"] = out["population"].astype("int64")
    order = {y: i for i, y in enumerate(years)}
    out = out.assign(_y=out["year"].map(order)).sort_values(["area_code", "_y"], kind="stable")
    return out.drop(columns="_y").reset_index(drop=True)


def area_wte(team_costs: pd.DataFrame, shares: pd.DataFrame) -> pd.DataFrame:
    """area_code, year, wte: staff (WTE) of the teams operating in each area and year.

    Each team-year's own WTE (costs.team_year_costs), since a need-sized team
    may change size once the rollout is complete.
    """
    active = team_costs[["team_id", "year", "wte"]].astype({"team_id": str})
    merged = active.merge(shares, on="team_id")
    merged["wte"] = merged["wte"] * merged["share"]
    return costs.group_fsum(merged, ["area_code", "year"], ["wte"])


def team_year_table(plan: pd.DataFrame, team_costs: pd.DataFrame, years: Sequence[str]):
    """Unrounded labour, training, cost and babies per team and year (0 before a team starts)."""
    grid = pd.DataFrame({"team_id": plan["team_id"].astype(str)}).merge(
        pd.DataFrame({"year": list(years)}), how="cross"
    )
    values = team_costs[["team_id", "year", "status", "labour", "training", "cost", "babies"]]
    out = grid.merge(values.astype({"team_id": str}), on=["team_id", "year"], how="left")
    return out.fillna({"status": "", "labour": 0.0, "training": 0.0, "cost": 0.0, "babies": 0.0})


# ----------------------------------------------------------------------------- shown tables


def _share_england(exact: pd.DataFrame, england: pd.DataFrame) -> pd.DataFrame:
    """England's whole units per year shared out over the rows of `exact`."""
    totals = england.assign(parent="all").reset_index().set_index(["parent", "year"])
    return share_out(exact.assign(parent="all"), totals, keys=["parent", "year"], columns=WHOLE)


def _share_parents(
    exact: pd.DataFrame, key: str, parent_of: pd.Series, parents: pd.DataFrame
) -> pd.DataFrame:
    """Each parent area's shown whole units per year shared out over its children in `exact`."""
    totals = parents.drop(columns="parent", errors="ignore").rename(columns={"area_code": "parent"})
    return share_out(
        exact.assign(parent=exact[key].map(parent_of)),
        totals.set_index(["parent", "year"])[WHOLE],
        keys=["parent", "year"],
        columns=WHOLE,
    )


def _finish(shown: pd.DataFrame, exact: pd.DataFrame, *, counts: Sequence[str]) -> pd.DataFrame:
    """Cost = labour + training as shown; rates from the exact figures; column order."""
    out = shown.copy()
    out["cost"] = out["labour"] + out["training"]
    out["babies_per_1000_under3"] = (exact["babies"] * 1000 / exact["under3"]).where(
        exact["under3"] > 0
    )
    out["population_per_team"] = (exact["population"] / exact["teams_total"]).where(
        exact["teams_total"] > 0
    )
    extra = ["wte"] if "wte" in exact.columns else []
    for c in extra:
        out[c] = exact[c]
    if list(counts) == TEAM_COUNTS:
        for c in TEAM_COUNTS:
            out[c] = exact[c].round().astype("int64")
        return out[AREA_COLUMNS + extra]
    out = out.rename(columns=dict(zip(TEAM_COUNTS, LAD_SHARES, strict=True)))
    return out[LAD_COLUMNS + extra]


def _under3_shown(exact: pd.DataFrame, totals: pd.Series, parent: pd.Series | None) -> pd.Series:
    """Whole under-3s per area (one value per area, repeated over its years)."""
    per_area = exact.drop_duplicates("area_code")[["area_code", "under3"]].reset_index(drop=True)
    per_area["parent"] = "all" if parent is None else parent.reindex(per_area["area_code"]).values
    shown = share_out(
        per_area,
        totals.rename("under3").to_frame().rename_axis("parent"),
        keys=["parent"],
        columns=["under3"],
    )
    return exact["area_code"].map(shown.set_index("area_code")["under3"]).astype("int64")


def shown_tables(plan: Plan) -> dict[str, pd.DataFrame]:
    """The per-area tables and the team figures as shown (whole pounds, whole babies).

    Keys: region (with England rows), icb, lad, team (team_id, year, status,
    labour, training, cost, babies, under3; status "" before the team starts)
    and exact (every level, unrounded).
    """
    p, years = plan.plan, list(plan.scenario.years)
    exact = {
        level: area_table(p, plan.team_costs, plan.areas, plan.assignment, level, years)
        for level in ("region", "icb", "lad")
    }
    team_year = team_year_table(p, plan.team_costs, years)
    england = england_totals(team_year, years)
    under3_total = pd.Series(
        {"all": costs.round_half_up(math.fsum(plan.areas["under3"])) or 0}, name="under3"
    )

    region = _share_england(exact["region"], england)
    region["under3"] = _under3_shown(exact["region"], under3_total, None)
    icb_region = p.drop_duplicates("icb24cd").set_index("icb24cd")["nhser24cd"].astype(str)
    icb = _share_parents(exact["icb"], "area_code", icb_region, region)
    region_under3 = region.drop_duplicates("area_code").set_index("area_code")["under3"]
    icb["under3"] = _under3_shown(exact["icb"], region_under3, icb_region)
    lad = _share_england(exact["lad"], england)
    lad["under3"] = _under3_shown(exact["lad"], under3_total, None)

    team_icb = p.set_index(p["team_id"].astype(str))["icb24cd"].astype(str)
    team = _share_parents(team_year, "team_id", team_icb, icb)
    team = team.drop(columns=["parent"])
    team["cost"] = team["labour"] + team["training"]
    team_under3 = pd.DataFrame({"area_code": p["team_id"].astype(str), "under3": p["under3"]})
    icb_under3 = icb.drop_duplicates("area_code").set_index("area_code")["under3"]
    team_under3["under3"] = _under3_shown(team_under3, icb_under3, team_icb)

    eng_rows = pd.DataFrame(
        {
            "area_code": ENGLAND[0],
            "area_name": ENGLAND[1],
            "year": years,
            **{
                c: [math.fsum(exact["region"].loc[exact["region"]["year"] == y, c]) for y in years]
                for c in [*TEAM_COUNTS, "babies", "population", "under3"]
                + (["wte"] if "wte" in exact["region"].columns else [])
            },
        }
    )
    eng_shown = eng_rows.assign(
        **{c: england.loc[years, c].to_numpy() for c in WHOLE},
        under3=int(under3_total["all"]),
    )
    region_out = pd.concat(
        [
            _finish(region, exact["region"], counts=TEAM_COUNTS),
            _finish(eng_shown, eng_rows, counts=TEAM_COUNTS),
        ],
        ignore_index=True,
    )
    region_out["population"] = region_out["population"].astype("int64")
    exact_all = pd.concat(
        [
            _exact_rows("team", p, team_year),
            *(exact[k].assign(level=k) for k in ("icb", "lad", "region")),
            eng_rows.assign(
                level="england",
                labour=[math.fsum(team_year.loc[team_year["year"] == y, "labour"]) for y in years],
                training=[
                    math.fsum(team_year.loc[team_year["year"] == y, "training"]) for y in years
                ],
            ).assign(cost=lambda f: f["labour"] + f["training"]),
        ],
        ignore_index=True,
    )[EXACT_COLUMNS]
    return {
        "region": region_out,
        "icb": _finish(icb, exact["icb"], counts=TEAM_COUNTS),
        "lad": _finish(lad, exact["lad"], counts=LAD_SHARES),
        "team": team.merge(
            team_under3.rename(columns={"area_code": "team_id"}), on="team_id", how="left"
        ),
        "exact": exact_all,
    }


def _exact_rows(level: str, plan: pd.DataFrame, team_year: pd.DataFrame) -> pd.DataFrame:
    """Team-year rows in the layout of costs_exact.csv, teams in numeric order."""
    info = plan[["team_id", "name", "under3"]].astype({"team_id": str})
    out = team_year.merge(info, on="team_id", how="left").rename(
        columns={"team_id": "area_code", "name": "area_name"}
    )
    out["teams_total"] = 1.0
    out["teams_operating"] = (out["status"] == costs.OPERATING).astype(float)
    out["teams_starting"] = (out["status"] == costs.STARTING).astype(float)
    out = out.assign(level=level, _k=out["area_code"].map(team_sort_key))
    return out.sort_values(["_k"], kind="stable").drop(columns="_k")


# ----------------------------------------------------------------------------- files


def sort_teams(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in team id order, numerically (QOP-2 before QOP-10)."""
    key = frame["team_id"].astype(str).map(team_sort_key)
    return frame.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)


def teams_table(plan: pd.DataFrame, team: pd.DataFrame, years: Sequence[str]) -> pd.DataFrame:
    """exports/teams.csv: every plan column (no geometry), cost and babies per year as shown."""
    out = pd.DataFrame(plan[[c for c in plan.columns if c != "geometry"]]).copy()
    out["team_id"] = out["team_id"].astype(str)
    by_team = team.set_index(["team_id", "year"])
    for year in years:
        suffix = year_suffix(year)
        for value in ("cost", "babies"):
            cells = by_team[value].xs(year, level="year")
            out[f"{value}_{suffix}"] = out["team_id"].map(cells).astype("int64")
    out["under3"] = out["team_id"].map(
        team.drop_duplicates("team_id").set_index("team_id")["under3"]
    )
    return sort_teams(out)


def year_totals(
    team: pd.DataFrame, years: Sequence[str], *, level: str, area_code: str, area_name: str
) -> pd.DataFrame:
    """One area's rows of costs_by_year.csv from its teams' figures as shown.

    `team`: team_id, year, status, cost, babies (whole units, as in teams.csv),
    one row per team and year. Summing the shown team figures makes the area's
    cost and babies equal the sum of its teams' cells in teams.csv (and, for a
    region or England, its row of costs_by_region.csv). The map pages use this
    for their "Cost and capacity by year" tables, so their CSVs equal these rows.
    """
    rows = []
    for year in years:
        part = team[team["year"].astype(str) == year]
        status = part["status"].astype(str)
        rows.append(
            {
                "level": level,
                "area_code": area_code,
                "area_name": area_name,
                "year": year,
                "teams_operating": int((status == costs.OPERATING).sum()),
                "teams_starting": int((status == costs.STARTING).sum()),
                "cost": int(part["cost"].sum()),
                "babies": int(part["babies"].sum()),
            }
        )
    return pd.DataFrame(rows, columns=YEAR_COLUMNS)


def costs_by_year(plan: pd.DataFrame, team: pd.DataFrame, years: Sequence[str]) -> pd.DataFrame:
    """exports/costs_by_year.csv: England's rows, then each NHS region's (by code), per year."""
    team_ids = team["team_id"].astype(str)
    parts = [year_totals(team, years, level="england", area_code=ENGLAND[0], area_name=ENGLAND[1])]
    for code, members in plan.groupby("nhser24cd", sort=True):
        mine = team[team_ids.isin(members["team_id"].astype(str))]
        name = str(members["nhser24nm"].iloc[0])
        parts.append(year_totals(mine, years, level="region", area_code=str(code), area_name=name))
    return pd.concat(parts, ignore_index=True)


def region_priorities(plan: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """NHS region code -> its teams in priority order (the wave-one candidate list).

    `rank` is the rank within the region (the plan's `region_rank` when it has
    one), `national_rank` the plan's national priority rank. A wave-one place
    filled on need alone (wave_basis "need…") is marked "to confirm".
    """
    out = {}
    for region, part in plan.groupby("nhser24cd", sort=True):
        by = "region_rank" if "region_rank" in part.columns else "priority_rank"
        ranked = part.sort_values([by, "priority_rank"], kind="stable").reset_index(drop=True)
        rank = ranked["region_rank"] if by == "region_rank" else range(1, len(ranked) + 1)
        ranked.insert(0, "rank", list(rank))
        ranked["national_rank"] = ranked["priority_rank"]
        if "wave_basis" in ranked.columns:
            need = ranked["wave_basis"].astype(str).str.startswith("need")
            ranked["confirm"] = np.where(need & (ranked["wave"] == 1), TO_CONFIRM, "")
        out[str(region)] = ranked[[c for c in PRIORITY_COLUMNS if c in ranked.columns]]
    return out


def national_csv(national: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """The proposal's table as shown, with a note where a shown figure needs explaining."""
    shown = costs.display_table(national)
    years = list(scenario.years)
    rows = shown.set_index("item")
    parts = [
        costs.ROW_LABOUR_FULL,
        costs.ROW_LABOUR_STARTING,
        costs.ROW_TRAINING,
        costs.ROW_DEVELOPMENT,
    ]
    gaps = []
    for year in [*years, costs.SR_TOTAL]:
        diff = int(rows.at[costs.ROW_TOTAL, year]) - sum(int(rows.at[r, year]) for r in parts)
        if diff:
            gaps.append(f"£{abs(diff):,} in {year}")
    notes = dict.fromkeys(shown["item"], "")
    notes[costs.ROW_TOTAL] = (
        "each figure is the unrounded sum rounded half-up, as in the proposal, so it differs "
        "from the sum of the rounded lines above by " + ", ".join(gaps)
        if gaps
        else "the unrounded sum, rounded half-up"
    )
    notes[costs.ROW_BABIES] = (
        "babies seen in each year; the SR total adds the years' caseloads, so a child seen "
        "in two years counts twice"
    )
    return shown.assign(note=shown["item"].map(notes))


def build_tables(
    plan: Plan, *, shown: dict[str, pd.DataFrame] | None = None
) -> dict[str, pd.DataFrame]:
    """Every CSV export as a DataFrame, keyed by file name.

    `shown`: shown_tables(plan) when the caller has it already (it is the
    slowest part, and the recorded plan needs it too).
    """
    years = list(plan.scenario.years)
    shown = shown_tables(plan) if shown is None else shown
    catchments = pd.DataFrame(plan.catchments.drop(columns="geometry"))
    icb_quality = plan.icb_quality
    if "icb24cd" not in icb_quality.columns:
        icb_quality = icb_quality.reset_index()
    names = plan.plan.set_index(plan.plan["team_id"].astype(str))["name"]
    lsoa = plan.assignment[["lsoa21cd", "team_id"]].astype(str)
    if "lsoa21nm" in plan.areas.columns:
        lsoa = lsoa.merge(plan.areas[["lsoa21cd", "lsoa21nm"]], on="lsoa21cd", how="left")
    lsoa["team_name"] = lsoa["team_id"].map(names)
    tables = {
        "teams.csv": teams_table(plan.plan, shown["team"], years),
        "national.csv": national_csv(plan.national, plan.scenario),
        "costs_by_icb.csv": shown["icb"],
        "costs_by_lad.csv": shown["lad"],
        "costs_by_region.csv": shown["region"],
        "costs_by_year.csv": costs_by_year(plan.plan, shown["team"], years),
        "costs_exact.csv": shown["exact"],
        "lsoa_to_team.csv": lsoa.sort_values("lsoa21cd", kind="stable").reset_index(drop=True),
        "catchment_quality.csv": sort_teams(catchments),
        "icb_quality.csv": icb_quality.sort_values("icb24cd", kind="stable"),
        "bridges.csv": plan.adjacency.bridges,
        "clusters.csv": plan.clusters,
    }
    for region, frame in region_priorities(plan.plan).items():
        tables[f"region_{region}_priorities.csv"] = frame
    return tables


# ----------------------------------------------------------------------------- README and writing

FILES = [
    ("teams.csv", "one row per team: catchment, wave, start year (operating_from),"),
    ("", "first full year (full_from), readiness, need score, ranks,"),
    ("", "rationale, cost (whole £, cash) and babies seen per year, and any"),
    ("", "sizing or cluster columns the plan carries: wte is the team's staff"),
    ("", "once every team operates fully, wte_rollout its staff before that"),
    ("", "(with need sizing the teams starting together then average one"),
    ("", "standard team, which keeps each year's national figures); and"),
    ("", "babies_per_1000_under1 the settled team's babies a year per 1,000"),
    ("", "under-1s"),
    ("national.csv", "England, laid out like the proposal's table (whole £); its note"),
    ("", "column explains the Total line and the children-seen SR total"),
    ("costs_by_region.csv", "per NHS England region and year, with England's total rows"),
    ("costs_by_icb.csv", "per Integrated Care Board and year"),
    ("costs_by_lad.csv", "per local authority district and year"),
    ("costs_by_year.csv", "England (level england) and each NHS region (level region)"),
    ("", "per year: teams_operating (fully) and teams_starting (coming into"),
    ("", "operation during the year), cost and babies: the sums of their"),
    ("", "teams' cells in teams.csv, as the maps' \"Cost and capacity by year\""),
    ("", "tables show them (their CSV buttons give these rows)"),
    ("costs_exact.csv", "the same figures unrounded (to the penny) for teams, ICBs,"),
    ("", "districts, regions and England (level column)"),
    ("region_<code>_priorities.csv", "each region's teams in priority order (wave-one"),
    ("", "candidates); nhser24nm names the region; rank is the rank within"),
    ("", "the region, national_rank the rank in England; confirm says"),
    ("", '"to confirm" for a wave-one place filled on need alone'),
    ("lsoa_to_team.csv", "every LSOA 2021 and its team"),
    ("catchments.gpkg", "catchment polygons, EPSG:27700, with the teams.csv attributes"),
    ("catchment_quality.csv", "per catchment: population, deviation from the ICB's mean"),
    ("", "catchment (%), Polsby-Popper (4πA/P²; 1 = a circle), island_km2"),
    ("", "(its land off the mainland), contiguous"),
    ("icb_quality.csv", "per ICB: worst deviation, Polsby-Popper, split districts, fragments"),
    ("bridges.csv", "links that join islands and gaps to their ICB's contiguity graph"),
    ("clusters.csv", "cluster leads: groups of 3 neighbouring teams (2 or 4 where the"),
    ("", "numbers force it) within one region; the lead's WTE (0.33 a team)"),
    ("", "and the cluster's extent (km between its farthest catchment centres);"),
    ("", "teams.csv gives each team's cluster_id"),
]
NOTES = [
    "Figures add up as shown. England's money and babies per year are rounded half-up to",
    "whole units, then shared out by largest remainder: among regions, each region's among",
    "its ICBs, each ICB's among its teams, and England's among the districts. So each",
    "year's ICB (or district, or region) cells sum to the England row of costs_by_region.csv,",
    "and a team's cells sum to its ICB's. cost = labour + training as shown. England's cost",
    "and training are national.csv's (its Total less the development programme, which the",
    "area tables leave out), and England's labour is cost less training, so it can differ",
    "by £1 from the sum of national.csv's two labour lines (each rounded on its own).",
    "Bases: a team inside one ICB or region counts wholly there. A team spanning districts",
    "is split in costs_by_lad.csv: labour, training, cost and team_shares_* by the",
    "population of each district; babies by its under-3s. team_shares_* are fractions of",
    "teams (one decimal); teams_* elsewhere are whole teams. babies_per_1000_under3 and",
    "population_per_team come from the unrounded figures. wte (when the plan sizes teams)",
    "is the staff of the teams operating that year, split like the money.",
    "Under-3s are estimated: each MSOA's Census 2021 count of children aged 0-2 is shared",
    "across its LSOAs in proportion to population (unless a source gives ages by LSOA).",
    "Text cells (notes, rationale, names, codes) that begin with = + - @, a tab or a",
    "carriage return start with a single quote (') so that a spreadsheet shows them as",
    "text and never runs them as formulas (OWASP CSV injection); numbers are unchanged.",
    "Team ids are <ICB code>-<n>; files list teams in numeric order (QOP-2 before QOP-10).",
]


def readme_text(names: Iterable[str], scenario: Scenario, provenance: str) -> str:
    """exports/README.txt: the provenance line, what each file is, how figures are made."""
    width = max(len(n) for n, _ in FILES) + 2
    lines = [
        f"planner exports — scenario {scenario.name}",
        provenance,
        "",
        LICENCE,
        "Source: Office for National Statistics (Census 2021, boundaries and lookups), "
        "NHS England, MHCLG (English Indices of Deprivation 2025).",
        "",
        "Files",
        *(f"  {n:<{width}}{text}" for n, text in FILES),
        "",
        "Notes",
        *(f"  {line}" for line in NOTES),
        "",
        f"Files in this export: {', '.join(sorted(names))}",
        "",
    ]
    return "\n".join(lines)


def render_exports(
    tables: Mapping[str, pd.DataFrame], scenario: Scenario, *, provenance: str
) -> dict[str, str]:
    """File name -> text for every CSV export and README.txt (pure; nothing written)."""
    files = {name: exports.to_csv_text(frame) for name, frame in sorted(tables.items())}
    files["README.txt"] = readme_text([*files, "catchments.gpkg"], scenario, provenance)
    return files


def geopackage_frame(plan: Plan, teams: pd.DataFrame) -> pd.DataFrame:
    """Catchment polygons with every teams.csv column, teams in numeric order."""
    extra = [c for c in teams.columns if c == "team_id" or c not in plan.catchments.columns]
    return sort_teams(plan.catchments.merge(teams[extra], on="team_id", how="left"))


def write_plan_exports(
    directory: Path,
    plan: Plan,
    *,
    provenance: str,
    shown: dict[str, pd.DataFrame] | None = None,
) -> list[Path]:
    """Every file of exports/ into `directory`, each written atomically; returns the paths.

    `provenance` (the inputs that made the plan) heads README.txt; `shown` as
    in build_tables. Everything is rendered in memory first, so a failure
    while building writes nothing.
    """
    directory = Path(directory)
    tables = build_tables(plan, shown=shown)
    files = render_exports(tables, plan.scenario, provenance=provenance)
    frame = geopackage_frame(plan, tables["teams.csv"])
    written = exports.write_text_files(directory, files)
    written.append(
        exports.write_geopackage(directory / "catchments.gpkg", frame, layer="catchments")
    )
    return sorted(written)


# ----------------------------------------------------------------------------- summary


def summary_text(plan: pd.DataFrame, national: pd.DataFrame, scenario: Scenario) -> str:
    """A few lines for the CLI: teams per wave, national cost per year, match with the proposal."""
    shown = costs.display_table(national).set_index("item")
    waves = plan["wave"].value_counts().sort_index()
    lines = [f"Scenario {scenario.name}: {len(plan)} teams"]
    for w, spec in enumerate(scenario.waves, start=1):
        how = "coming into operation during" if spec.ramp_up else "operating fully from"
        lines.append(f"  wave {w}: {int(waves.get(w, 0))} teams {how} {spec.start_year}")
    lines.append("National cost (£, rounded half-up):")
    for year in [*scenario.years, costs.SR_TOTAL]:
        total = shown.at[costs.ROW_TOTAL, year]
        babies = shown.at[costs.ROW_BABIES, year]
        lines.append(f"  {year:>8}: £{total:>13,}  children seen {babies:>7,}")
    mismatches = costs.proposal_mismatches(national, scenario)
    if not mismatches:
        lines.append("National table matches the proposal's published figures to the pound.")
    else:
        lines.append(f"National table differs from the proposal in {len(mismatches)} cell(s):")
        lines.extend(f"  {m}" for m in mismatches[:8])
        if len(mismatches) > 8:
            lines.append(f"  … and {len(mismatches) - 8} more")
    return "\n".join(lines)
