"""Per-area cost and capacity tables and the CSV exports planners open in a spreadsheet.

Building is pure (DataFrames in, DataFrames/strings out) so it can be tested
and checked before anything touches the disk; writing renders every file in
memory first and then writes each one atomically, so a failure leaves the
previous exports as they were. CSVs are deterministic: sorted rows, fixed
decimals (rounded half-up), no index, "\\n" line endings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd

from planner import costs
from planner.config import Scenario, year_suffix
from planner.fsutil import atomic_file

LICENCE = (
    "Contains public sector information licensed under the Open Government Licence v3.0. "
    "Contains OS data © Crown copyright and database right."
)
LEVELS = {
    # table name -> (area code column, area name column) in `areas`
    "icb": ("icb24cd", "icb24nm"),
    "lad": ("lad24cd", "lad24nm"),
    "region": ("nhser24cd", "nhser24nm"),
}
AREA_COLUMNS = [
    "area_code",
    "area_name",
    "year",
    "teams_total",
    "teams_operating",
    "teams_starting",
    "labour",
    "training",
    "cost",
    "babies",
    "population",
    "under3",
    "babies_per_1000_under3",
    "population_per_team",
]
# decimals used when writing float columns (anything not listed: 2; babies_<year> per team: 0)
DECIMALS = {
    "teams_total": 4,
    "teams_operating": 4,
    "teams_starting": 4,
    "babies": 2,
    "under3": 1,
    "babies_per_1000_under3": 2,
    "population_per_team": 0,
    "need_score": 3,
    "polsby_popper": 4,
    "island_km2": 1,
    "mean_polsby_popper": 4,
    "min_polsby_popper": 4,
    "deviation_pct": 2,
    "max_abs_deviation_pct": 2,
    "mean_catchment": 0,
    "distance_m": 1,
}
# First characters that make a spreadsheet treat a cell as a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PRIORITY_COLUMNS = [
    "rank",
    "team_id",
    "name",
    "icb24nm",
    "readiness",
    "need_score",
    "wave",
    "rationale",
]


# ----------------------------------------------------------------------------- build (pure)


def area_shares(
    plan: pd.DataFrame, areas: pd.DataFrame, assignment: pd.DataFrame, level: str
) -> pd.DataFrame:
    """team_id, area_code, share: how each team's costs and capacity split over `level` areas.

    Catchments nest in ICBs and regions (share 1); a catchment spanning
    several districts is split by its population in each.
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
        areas[["lsoa21cd", code, "population"]], on="lsoa21cd", how="left", validate="1:1"
    )
    lsoa["team_id"] = lsoa["team_id"].astype(str)
    pop = lsoa.groupby(["team_id", code], sort=True)["population"].sum().reset_index()
    total = pop.groupby("team_id")["population"].transform("sum")
    return pd.DataFrame(
        {
            "team_id": pop["team_id"],
            "area_code": pop[code].astype(str),
            "share": (pop["population"] / total).astype("float64"),
        }
    )


def area_table(
    plan: pd.DataFrame,
    team_costs: pd.DataFrame,
    areas: pd.DataFrame,
    assignment: pd.DataFrame,
    level: str,
    scenario: Scenario,
) -> pd.DataFrame:
    """Costs and capacity by area and year (unrounded); sums over areas = national minus development."""
    code, name = LEVELS[level]
    shares = area_shares(plan, areas, assignment, level)
    agg = costs.aggregate(team_costs, shares)
    info = (
        pd.DataFrame(areas[[code, name, "population", "under3"]])
        .groupby([code, name], sort=True)[["population", "under3"]]
        .sum()
        .reset_index()
        .rename(columns={code: "area_code", name: "area_name"})
        .astype({"area_code": str, "area_name": str})
    )
    info = info.merge(
        shares.groupby("area_code")["share"].sum().rename("teams_total").reset_index(),
        on="area_code",
        how="left",
    )
    info["teams_total"] = info["teams_total"].fillna(0.0)
    grid = info.merge(pd.DataFrame({"year": list(scenario.years)}), how="cross")
    out = grid.merge(agg, on=["area_code", "year"], how="left")
    value_cols = ["teams_operating", "teams_starting", "labour", "training", "cost", "babies"]
    out[value_cols] = out[value_cols].fillna(0.0)
    out["population"] = out["population"].astype("int64")
    out["babies_per_1000_under3"] = (out["babies"] * 1000 / out["under3"]).where(out["under3"] > 0)
    out["population_per_team"] = (out["population"] / out["teams_total"]).where(
        out["teams_total"] > 0
    )
    order = {y: i for i, y in enumerate(scenario.years)}
    out = out.assign(_y=out["year"].map(order)).sort_values(["area_code", "_y"], kind="stable")
    return out[AREA_COLUMNS].reset_index(drop=True)


def teams_table(plan: pd.DataFrame, team_costs: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """exports/teams.csv: the plan (no geometry) with cost and babies per year."""
    cols = [c for c in plan.columns if c != "geometry"]
    out = pd.DataFrame(plan[cols])
    if f"cost_{year_suffix(scenario.years[0])}" not in out.columns:
        out = costs.attach_costs(out, team_costs, scenario)
    return out.sort_values("team_id", kind="stable").reset_index(drop=True)


def region_priorities(plan: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """NHS region code -> its teams in priority order (the wave-one candidate list)."""
    out = {}
    for region, part in plan.groupby("nhser24cd", sort=True):
        ranked = part.sort_values("priority_rank", kind="stable").reset_index(drop=True)
        ranked.insert(0, "rank", range(1, len(ranked) + 1))
        out[str(region)] = ranked[[c for c in PRIORITY_COLUMNS if c in ranked.columns]]
    return out


def build_tables(
    plan: pd.DataFrame,
    team_costs: pd.DataFrame,
    national: pd.DataFrame,
    areas: pd.DataFrame,
    assignment: pd.DataFrame,
    scenario: Scenario,
) -> dict[str, pd.DataFrame]:
    """Every export as a DataFrame, keyed by file name (unrounded numbers)."""
    tables = {
        "teams.csv": teams_table(plan, team_costs, scenario),
        "national.csv": costs.display_table(national),
        "costs_by_icb.csv": area_table(plan, team_costs, areas, assignment, "icb", scenario),
        "costs_by_lad.csv": area_table(plan, team_costs, areas, assignment, "lad", scenario),
        "costs_by_region.csv": area_table(plan, team_costs, areas, assignment, "region", scenario),
    }
    for region, frame in region_priorities(plan).items():
        tables[f"region_{region}_priorities.csv"] = frame
    return tables


# ----------------------------------------------------------------------------- render / write


def _fixed(value: float, decimals: int) -> str:
    """Half-up fixed-decimal text; NaN -> empty; never '-0'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    q = Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    if q == 0:
        q = abs(q)
    return f"{q:f}"


def neutralise(cell: object) -> object:
    """A text cell a spreadsheet would run as a formula, made inert (OWASP CSV injection).

    Text starting with = + - @, tab or carriage return gets a leading single
    quote, which spreadsheets show as text; anything else (and every
    non-string, so a negative number stays a number) is returned unchanged.
    """
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def to_csv_text(frame: pd.DataFrame) -> str:
    """Deterministic CSV: fixed decimals per column (DECIMALS), no index, '\\n' endings.

    Numeric columns are written as numbers; every text cell goes through
    `neutralise`, so user text (notes, names, codes) can never be a formula.
    """
    out = pd.DataFrame(index=frame.index)
    for col in frame.columns:
        series = frame[col]
        if pd.api.types.is_float_dtype(series):
            d = DECIMALS.get(col, 0 if col.startswith("babies_") else 2)
            out[col] = [_fixed(v, d) for v in series]
        elif pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            out[col] = series
        else:
            out[col] = [neutralise(v) for v in series]
    return out.to_csv(index=False, lineterminator="\n")


def readme_text(tables: Mapping[str, pd.DataFrame], scenario: Scenario) -> str:
    """exports/README.txt: what each file is, how numbers are made, and the licence."""
    lines = [
        f"planner exports — scenario {scenario.name}",
        "",
        LICENCE,
        "Source: Office for National Statistics (Census 2021, boundaries and lookups), "
        "NHS England, MHCLG (English Indices of Deprivation 2025).",
        "",
        "Files",
        "  teams.csv              one row per team: catchment, wave, start year (operating_from),",
        "                         first full year (full_from), readiness, need score, national",
        "                         priority rank, rationale, cost (£, cash) and babies seen per year",
        "  national.csv           England, laid out like the proposal's table; £ rounded half-up",
        "                         to whole pounds; SR total = the Spending Review years",
        "  costs_by_icb.csv       costs and capacity per Integrated Care Board and year",
        "  costs_by_lad.csv       per local authority district and year; a catchment spanning",
        "                         several districts is split by its population in each",
        "  costs_by_region.csv    per NHS England region and year",
        "  region_<code>_priorities.csv  each region's teams in priority order (wave-one candidates)",
        "  lsoa_to_team.csv       every LSOA 2021 and its team (planner run)",
        "  catchments.gpkg        catchment polygons, EPSG:27700, with the teams.csv attributes",
        "  catchment_quality.csv  per catchment: population, deviation from the ICB's mean",
        "                         catchment (%), Polsby-Popper (4πA/P²; 1 = a circle),",
        "                         island_km2 (its land off the mainland: Scilly, Wight, Sheppey;",
        "                         an island's coast lowers Polsby-Popper), contiguous",
        "  icb_quality.csv        per ICB: worst deviation, Polsby-Popper, split districts and",
        "                         district fragments",
        "  bridges.csv            links that join islands and gaps to their ICB's contiguity graph",
        "",
        "Notes",
        "  Area tables exclude the national development programme (national.csv shows it);",
        "  summed over areas they equal the national labour, training and babies lines.",
        "  teams_* columns are team-equivalents (fractions where a team spans districts).",
        "  Under-3s are estimated: each MSOA's Census 2021 count of children aged 0-2 is shared",
        "  across its LSOAs in proportion to population (unless a source gives ages by LSOA).",
        "  Text cells (notes, rationale, names, codes) that begin with = + - @, a tab or a",
        "  carriage return start with a single quote (') so that a spreadsheet shows them as",
        "  text and never runs them as formulas (OWASP CSV injection); numbers are unchanged.",
        "  Money in teams.csv and the per-area files is given to the penny (unrounded sums,",
        "  rounded half-up only when written); national.csv is rounded to whole pounds.",
        "",
        f"Files in this export: {', '.join(sorted(tables))}",
        "",
    ]
    return "\n".join(lines)


def render_exports(tables: Mapping[str, pd.DataFrame], scenario: Scenario) -> dict[str, str]:
    """File name -> text for every export, plus README.txt (pure; nothing written)."""
    files = {name: to_csv_text(frame) for name, frame in sorted(tables.items())}
    files["README.txt"] = readme_text(tables, scenario)
    return files


def write_exports(
    directory: str | Path,
    plan: pd.DataFrame,
    team_costs: pd.DataFrame,
    national: pd.DataFrame,
    areas: pd.DataFrame,
    assignment: pd.DataFrame,
    scenario: Scenario,
) -> list[Path]:
    """Build, render, then write every export atomically into `directory`; returns the paths."""
    files = render_exports(
        build_tables(plan, team_costs, national, areas, assignment, scenario), scenario
    )
    directory = Path(directory)
    written = []
    for name, text in files.items():
        path = directory / name
        with atomic_file(path, "w") as handle:
            handle.write(text)
        written.append(path)
    return written


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
